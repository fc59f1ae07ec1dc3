#include "tlsd/keyholder/client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/secret_bytes.h"
#include "tlsd/keyholder/holder.h"
#include "tlsd/keyholder/remote_key.h"
#include "tlsd/keyholder/remote_tickets.h"

namespace tlsd::keyholder {
namespace {

constexpr int kReplyTimeoutMs = 5000;

absl::StatusOr<std::pair<UniqueFd, UniqueFd>> SeqpacketPair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoToStatus(errno, "key holder socketpair");
  }
  return std::make_pair(UniqueFd(sv[0]), UniqueFd(sv[1]));
}

// In the child: everything but `keep` (and stdio) is closed, so the holder
// has no listening socket, no systemd fd, nothing of the engine's.
void CloseAllBut(const std::vector<int>& keep) {
  const int max = static_cast<int>(sysconf(_SC_OPEN_MAX));
  for (int fd = 3; fd < max && fd < 65536; ++fd) {
    if (std::find(keep.begin(), keep.end(), fd) == keep.end()) close(fd);
  }
}

absl::StatusOr<std::vector<uint8_t>> Exchange(int fd, const std::vector<uint8_t>& request,
                                              size_t reply_max) {
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return ErrnoToStatus(errno, "key holder: send");
  }
  pollfd p{fd, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, kReplyTimeoutMs)) < 0 && errno == EINTR) {
  }
  if (r == 0) return absl::DeadlineExceededError("key holder: no reply within 5 s");
  std::vector<uint8_t> reply(reply_max + 1);
  ssize_t n;
  while ((n = recv(fd, reply.data(), reply.size(), 0)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return absl::UnavailableError("key holder: gone");
  reply.resize(static_cast<size_t>(n));
  return reply;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyHolder>> KeyHolder::Spawn(size_t channels) {
  std::unique_ptr<KeyHolder> h(new KeyHolder());
  absl::StatusOr<std::pair<UniqueFd, UniqueFd>> setup = SeqpacketPair();
  if (!setup.ok()) return setup.status();
  std::vector<UniqueFd> theirs;
  for (size_t i = 0; i < std::max<size_t>(channels, 1); ++i) {
    absl::StatusOr<std::pair<UniqueFd, UniqueFd>> p = SeqpacketPair();
    if (!p.ok()) return p.status();
    h->channels_.push_back(std::move(p->first));
    theirs.push_back(std::move(p->second));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return ErrnoToStatus(errno, "fork key holder");
  if (pid == 0) {
    // The holder dies with tlsd, and takes SIGTERM (tlsd blocks it for
    // sigwait).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    prctl(PR_SET_NAME, "tlsd-keyholder");
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, nullptr);
    std::vector<int> keep = {setup->second.get()};
    std::vector<int> fds;
    for (const UniqueFd& fd : theirs) {
      keep.push_back(fd.get());
      fds.push_back(fd.get());
    }
    CloseAllBut(keep);
    _exit(RunKeyHolder(setup->second.get(), fds));
  }
  h->pid_ = pid;
  h->setup_ = std::move(setup->first);
  for (const UniqueFd& fd : h->channels_) h->free_.push_back(fd.get());
  return h;
}

bool KeyHolder::Alive() {
  if (reaped_) return false;
  int status = 0;
  if (pid_ <= 0 || waitpid(pid_, &status, WNOHANG) != pid_) return true;
  reaped_ = true;
  death_ = WIFSIGNALED(status) ? absl::StrCat("was killed by signal ", WTERMSIG(status))
                               : absl::StrCat("exited with status ", WEXITSTATUS(status));
  return false;
}

KeyHolder::~KeyHolder() {
  setup_.Reset();
  channels_.clear();
  if (pid_ > 0 && !reaped_) {
    // It exits when its channels close; do not wait long for it.
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(10000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

absl::StatusOr<SetupReply> KeyHolder::Setup(const std::vector<uint8_t>& request) {
  // One request at a time (start-up, or a reload from the main thread).
  std::lock_guard<std::mutex> lock(setup_mu_);
  if (!setup_.valid()) return absl::FailedPreconditionError("key holder: gone");
  absl::StatusOr<std::vector<uint8_t>> reply = Exchange(setup_.get(), request, kMaxSetupMessage);
  if (!reply.ok()) return reply.status();
  return DecodeSetupReply(*reply);
}

absl::StatusOr<EvpPkeyPtr> KeyHolder::Key(const std::string& cert_path, X509* leaf,
                                          const std::string& key_path) {
  absl::StatusOr<SetupReply> reply = Setup(EncodeLoad({cert_path, key_path}));
  if (!reply.ok()) return reply.status();
  if (reply->code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->code), reply->message);
  }
  return MakeRemoteKey(X509_get0_pubkey(leaf), this, reply->key_id);
}

absl::StatusOr<std::shared_ptr<TicketKeys>> KeyHolder::Tickets(const std::string& key_file,
                                                               absl::Duration rotate) {
  const int64_t seconds = absl::ToInt64Seconds(rotate);
  absl::StatusOr<SetupReply> reply = Setup(EncodeLoadTickets(
      {key_file, static_cast<uint32_t>(std::clamp<int64_t>(seconds, 1, UINT32_MAX))}));
  if (!reply.ok()) return reply.status();
  if (reply->code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->code), reply->message);
  }
  return MakeRemoteTicketKeys(this, reply->key_id);
}

absl::Status KeyHolder::Seal(const std::string& user) {
  absl::StatusOr<SetupReply> reply = Setup(EncodeSeal({user}));
  if (!reply.ok()) return reply.status();
  if (reply->code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->code),
                        absl::StrCat("key holder: ", reply->message));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> KeyHolder::Sign(uint32_t key_id, SignOp op,
                                                     absl::Span<const uint8_t> input) {
  if (input.size() > kMaxSignInput) return absl::InvalidArgumentError("sign input too long");
  int fd;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!freed_.wait_for(lock, std::chrono::milliseconds(kReplyTimeoutMs),
                         [this] { return !free_.empty(); })) {
      return absl::DeadlineExceededError("key holder: no free channel within 5 s");
    }
    fd = free_.back();
    free_.pop_back();
  }
  absl::StatusOr<std::vector<uint8_t>> raw = Exchange(
      fd, EncodeSignRequest({op, key_id, std::vector<uint8_t>(input.begin(), input.end())}),
      kSignReplySize);
  // A channel whose reply did not come (or came wrong) is retired: a late
  // reply must not answer the next request.
  if (!raw.ok()) return raw.status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(fd);
  }
  freed_.notify_one();
  absl::StatusOr<SignReply> reply = DecodeSignReply(*raw);
  SecureZero(raw->data(), raw->size());  // it may carry a ticket's keys
  if (!reply.ok()) return reply.status();
  if (!reply->ok) return absl::PermissionDeniedError("key holder refused the operation");
  return std::move(reply->output);
}

}  // namespace tlsd::keyholder
