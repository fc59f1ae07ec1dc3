// tlsfd_server: where connections come from (pull subscription or push
// listener), and turning CONNECTION frames into tlsfd_conn objects.

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/ipc/seqpacket.h"
#include "common/wire/frame.h"
#include "common/wire/messages.h"
#include "libtlsfd/src/internal.h"

namespace tlsfd::internal {
namespace {

using tlsd::ConnectionInfo;
using tlsd::DataPath;
using tlsd::Frame;
using tlsd::MsgType;
using tlsd::UniqueFd;

// How long tlsfd_server_subscribe waits for HELLO_OK: tlsd answers at once,
// so this only guards against a wedged or impostor peer.
constexpr int kHelloTimeoutMs = 10'000;
// Push links open at once. tlsd opens one per handshake thread and replaces
// broken ones, so a few are normal; a bound keeps a confused or hostile
// local peer from using up our fds.
constexpr size_t kMaxPushLinks = 64;
constexpr int kMaxEvents = 16;

int GetSockInt(int fd, int level, int opt, int* out) {
  socklen_t len = sizeof(*out);
  if (getsockopt(fd, level, opt, out, &len) != 0) {
    return errno;
  }
  return 0;
}

absl::Status SetNonBlocking(int fd, bool nonblock) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    return tlsd::ErrnoToStatus(errno, "fcntl(F_GETFL)");
  }
  int want = nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (want != fl && fcntl(fd, F_SETFL, want) != 0) {
    return tlsd::ErrnoToStatus(errno, "fcntl(F_SETFL)");
  }
  return absl::OkStatus();
}

bool IsKtls(DataPath p) { return p == DataPath::kKernelSoftware || p == DataPath::kKernelDevice; }

// CheckConnectionSocket makes sure the fd is what the metadata says, so that
// a mistaken (or forged) frame cannot make the application write plaintext
// onto a bare TCP connection: kTLS means a TCP socket with the "tls" ULP,
// relay means an AF_UNIX stream socket.
absl::Status CheckConnectionSocket(int fd, const ConnectionInfo& info) {
  if (IsKtls(info.tx_path) != IsKtls(info.rx_path)) {
    return absl::InvalidArgumentError(absl::StrCat("CONNECTION: mixed data paths ",
                                                   tlsd::DataPathName(info.tx_path), "/",
                                                   tlsd::DataPathName(info.rx_path)));
  }
  int domain = 0, type = 0, protocol = 0;
  if (int e = GetSockInt(fd, SOL_SOCKET, SO_DOMAIN, &domain); e != 0) {
    return tlsd::ErrnoToStatus(e, "CONNECTION: fd is not a socket");
  }
  if (int e = GetSockInt(fd, SOL_SOCKET, SO_TYPE, &type); e != 0) {
    return tlsd::ErrnoToStatus(e, "CONNECTION: SO_TYPE");
  }
  if (int e = GetSockInt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol); e != 0) {
    return tlsd::ErrnoToStatus(e, "CONNECTION: SO_PROTOCOL");
  }
  if (!IsKtls(info.rx_path)) {
    if (domain != AF_UNIX || type != SOCK_STREAM) {
      return absl::InvalidArgumentError("CONNECTION: relay fd is not an AF_UNIX stream socket");
    }
    return absl::OkStatus();
  }
  if ((domain != AF_INET && domain != AF_INET6) || type != SOCK_STREAM || protocol != IPPROTO_TCP) {
    return absl::InvalidArgumentError("CONNECTION: kTLS fd is not a TCP socket");
  }
  char ulp[16] = {};
  socklen_t ulp_len = sizeof(ulp);
  if (getsockopt(fd, SOL_TCP, TCP_ULP, ulp, &ulp_len) != 0) {
    return tlsd::ErrnoToStatus(errno, "CONNECTION: TCP_ULP");
  }
  if (strncmp(ulp, "tls", sizeof(ulp)) != 0) {
    return absl::InvalidArgumentError("CONNECTION: kTLS fd has no kernel TLS installed");
  }
  return absl::OkStatus();
}

// Drop records why a frame or link was discarded; nothing is logged
// (STYLE.md 2.4: libraries return, callers log).
void Drop(tlsfd_server& server, const absl::Status& why) {
  ++server.stats.frames_dropped;
  SetLastError(absl::StrCat("dropped a frame from tlsd: ", why.message()));
}

// IsMalformed tells a frame that arrived but cannot be used (RecvFrame's
// decoding errors carry no errno) from a failing socket.
bool IsMalformed(const absl::Status& s) { return !tlsd::HasErrno(s); }

// HandleFrame is the part of accept shared by both modes: a CONNECTION frame
// becomes a connection; anything unusable is dropped (fd closed with it).
// Returns null when the frame was dropped.
std::unique_ptr<tlsfd_conn> HandleFrame(tlsfd_server& server, Frame frame, bool conn_nonblock) {
  absl::StatusOr<std::unique_ptr<tlsfd_conn>> conn =
      ConnFromFrame(std::move(frame), conn_nonblock, MsgType::kConnection);
  if (!conn.ok()) {
    Drop(server, conn.status());
    return nullptr;
  }
  ++server.stats.connections_accepted;
  (*conn)->set_control_socket(server.control_socket);
  return std::move(*conn);
}

absl::StatusOr<std::unique_ptr<tlsfd_conn>> AcceptPull(tlsfd_server& server, int flags) {
  const bool nonblock = flags & TLSFD_NONBLOCK;
  for (;;) {
    if (!server.ended.ok()) {
      return server.ended;
    }
    if (!nonblock) {
      // poll rather than a blocking recvmsg, which RecvFrame restarts on
      // EINTR: a signal must be able to interrupt tlsfd_accept.
      absl::Status waited = WaitReadable(server.sock.get(), -1, "wait for tlsd");
      if (!waited.ok()) {
        return waited;
      }
    }
    absl::StatusOr<Frame> frame = tlsd::RecvFrame(server.sock.get(), MSG_DONTWAIT);
    if (!frame.ok()) {
      if (tlsd::IsErrno(frame.status(), EAGAIN)) {
        if (nonblock) {
          return frame.status();
        }
        continue;
      }
      if (IsMalformed(frame.status())) {
        Drop(server, frame.status());
        continue;
      }
      int e = tlsd::StatusToErrno(frame.status());
      if (e == ECONNRESET || e == ENOTCONN || e == EPIPE) {
        server.ended = tlsd::ErrnoToStatus(ECONNRESET, "tlsd closed the subscription");
        return server.ended;
      }
      return frame.status();
    }
    if (frame->header.type == MsgType::kError) {
      absl::StatusOr<tlsd::ErrorMsg> err = tlsd::ErrorMsg::Decode(frame->payload);
      if (!err.ok()) {
        Drop(server, err.status());
        continue;
      }
      server.ended = tlsd::ErrnoToStatus(
          static_cast<int>(err->code), absl::StrCat("tlsd ended the subscription: ", err->message));
      return server.ended;
    }
    std::unique_ptr<tlsfd_conn> conn =
        HandleFrame(server, std::move(*frame), flags & TLSFD_CONN_NONBLOCK);
    if (conn != nullptr) {
      return conn;
    }
  }
}

void CloseLink(tlsfd_server& server, int fd) {
  auto it = std::find_if(server.links.begin(), server.links.end(),
                         [fd](const UniqueFd& l) { return l.get() == fd; });
  if (it == server.links.end()) {
    return;
  }
  // Closing the fd removes it from the epoll set.
  server.links.erase(it);
  ++server.stats.links_closed;
}

// AcceptLinks takes every pending link from the listening socket.
absl::Status AcceptLinks(tlsfd_server& server) {
  for (;;) {
    UniqueFd link(::accept4(server.sock.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!link.valid()) {
      switch (errno) {
        case EAGAIN:
          return absl::OkStatus();
        case EINTR:
        case ECONNABORTED:
          continue;
        default:
          return tlsd::ErrnoToStatus(errno, "accept a link from tlsd");
      }
    }
    ++server.stats.links_accepted;
    if (server.required_uid.has_value()) {
      absl::StatusOr<struct ucred> cred = tlsd::PeerCredentials(link.get());
      if (!cred.ok() || cred->uid != *server.required_uid) {
        ++server.stats.links_refused;
        SetLastError(cred.ok() ? absl::StrCat("refused a link from uid ", cred->uid, " (want ",
                                              *server.required_uid, ")")
                               : std::string(cred.status().message()));
        continue;
      }
    }
    if (server.links.size() >= kMaxPushLinks) {
      ++server.stats.links_refused;
      SetLastError(absl::StrCat("refused a link: already ", kMaxPushLinks, " open"));
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = link.get();
    if (epoll_ctl(server.epoll.get(), EPOLL_CTL_ADD, link.get(), &ev) != 0) {
      return tlsd::ErrnoToStatus(errno, "epoll_ctl(ADD) a link from tlsd");
    }
    server.links.push_back(std::move(link));
  }
}

// ReadLink receives one frame from a push link. Returns a connection, or null
// when there was none (a dropped frame, nothing yet, or a link that died).
std::unique_ptr<tlsfd_conn> ReadLink(tlsfd_server& server, int fd, uint32_t events,
                                     bool conn_nonblock) {
  absl::StatusOr<Frame> frame = tlsd::RecvFrame(fd, MSG_DONTWAIT);
  if (frame.ok()) {
    if (frame->header.type != MsgType::kConnection) {
      // ERROR included: on a push link tlsd has nothing to refuse.
      Drop(server, absl::InvalidArgumentError(absl::StrCat(
                       "unexpected ", tlsd::MsgTypeName(frame->header.type), " frame")));
      return nullptr;
    }
    return HandleFrame(server, std::move(*frame), conn_nonblock);
  }
  if (tlsd::IsErrno(frame.status(), EAGAIN)) {
    if (events & (EPOLLHUP | EPOLLERR)) {
      CloseLink(server, fd);
    }
    return nullptr;
  }
  if (IsMalformed(frame.status())) {
    Drop(server, frame.status());
    return nullptr;
  }
  // The link is gone (tlsd closed it: ECONNRESET) or broken: drop it quietly;
  // tlsd opens a new one when it needs one.
  CloseLink(server, fd);
  return nullptr;
}

absl::StatusOr<std::unique_ptr<tlsfd_conn>> AcceptPush(tlsfd_server& server, int flags) {
  const bool nonblock = flags & TLSFD_NONBLOCK;
  bool wait = false;
  for (;;) {
    epoll_event events[kMaxEvents];
    int n = epoll_wait(server.epoll.get(), events, kMaxEvents, wait ? -1 : 0);
    if (n < 0) {
      return tlsd::ErrnoToStatus(errno, "wait for tlsd");
    }
    if (n == 0) {
      if (nonblock) {
        return tlsd::ErrnoToStatus(EAGAIN, "no connection ready");
      }
      wait = true;
      continue;
    }
    wait = false;
    absl::Status link_error;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == server.sock.get()) {
        absl::Status accepted = AcceptLinks(server);
        if (!accepted.ok()) {
          link_error = accepted;
        }
        continue;
      }
      // Level-triggered: events not handled now are reported again.
      std::unique_ptr<tlsfd_conn> conn =
          ReadLink(server, events[i].data.fd, events[i].events, flags & TLSFD_CONN_NONBLOCK);
      if (conn != nullptr) {
        return conn;
      }
    }
    if (!link_error.ok()) {
      return link_error;
    }
  }
}

// NewPushServer makes a push server around `listening_fd` without taking it:
// the caller moves it into `sock` once nothing else can fail.
absl::StatusOr<std::unique_ptr<tlsfd_server>> NewPushServer(int listening_fd) {
  auto server = std::make_unique<tlsfd_server>(tlsfd_server::Mode::kPush);
  server->control_socket = DefaultControlSocket();
  server->epoll = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!server->epoll.valid()) {
    return tlsd::ErrnoToStatus(errno, "epoll_create1");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listening_fd;
  if (epoll_ctl(server->epoll.get(), EPOLL_CTL_ADD, listening_fd, &ev) != 0) {
    return tlsd::ErrnoToStatus(errno, "epoll_ctl(ADD) the listening socket");
  }
  return server;
}

// CheckListeningSeqpacket is sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, ...)
// with a distinct error for each mismatch.
absl::Status CheckListeningSeqpacket(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return tlsd::ErrnoToStatus(errno, "listening fd");
  }
  if (!S_ISSOCK(st.st_mode)) {
    return tlsd::ErrnoToStatus(ENOTSOCK, "listening fd");
  }
  int domain = 0, type = 0, listening = 0;
  if (int e = GetSockInt(fd, SOL_SOCKET, SO_DOMAIN, &domain); e != 0) {
    return tlsd::ErrnoToStatus(e, "listening fd: SO_DOMAIN");
  }
  if (domain != AF_UNIX) {
    return tlsd::ErrnoToStatus(EAFNOSUPPORT, "listening fd is not AF_UNIX");
  }
  if (int e = GetSockInt(fd, SOL_SOCKET, SO_TYPE, &type); e != 0) {
    return tlsd::ErrnoToStatus(e, "listening fd: SO_TYPE");
  }
  if (type != SOCK_SEQPACKET) {
    return tlsd::ErrnoToStatus(EPROTOTYPE, "listening fd is not SOCK_SEQPACKET");
  }
  if (int e = GetSockInt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening); e != 0) {
    return tlsd::ErrnoToStatus(e, "listening fd: SO_ACCEPTCONN");
  }
  if (!listening) {
    return tlsd::ErrnoToStatus(EINVAL, "listening fd is not listening");
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultControlSocket() {
  const char* env = getenv("TLSFD_CONTROL_SOCKET");
  return env != nullptr && env[0] == '/' ? env : "/run/tlsd/control.sock";
}

absl::Status WaitReadable(int fd, int timeout_ms, absl::string_view what) {
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  if (r < 0) {
    return tlsd::ErrnoToStatus(errno, what);
  }
  if (r == 0) {
    return tlsd::ErrnoToStatus(ETIMEDOUT, what);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<tlsfd_conn>> ConnFromFrame(Frame frame, bool conn_nonblock,
                                                          MsgType expected) {
  if (frame.header.type != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected ", tlsd::MsgTypeName(frame.header.type), " frame"));
  }
  if (!frame.fd.valid()) {
    return absl::InvalidArgumentError("CONNECTION without an fd");
  }
  absl::StatusOr<ConnectionInfo> info = ConnectionInfo::Decode(frame.payload);
  if (!info.ok()) {
    return info.status();
  }
  absl::Status checked = CheckConnectionSocket(frame.fd.get(), *info);
  if (!checked.ok()) {
    return checked;
  }
  absl::Status mode = SetNonBlocking(frame.fd.get(), conn_nonblock);
  if (!mode.ok()) {
    return mode;
  }
  return std::make_unique<tlsfd_conn>(std::move(frame.fd), *std::move(info));
}

absl::StatusOr<std::unique_ptr<tlsfd_server>> Subscribe(absl::string_view control_socket,
                                                        absl::string_view backend) {
  if (!tlsd::IsValidServiceName(backend)) {
    return tlsd::ErrnoToStatus(
        EINVAL, absl::StrCat("backend name '", backend, "' is not 1..64 of [A-Za-z0-9_.-]"));
  }
  absl::StatusOr<UniqueFd> sock = tlsd::ConnectSeqpacket(control_socket, /*nonblock=*/false);
  if (!sock.ok()) {
    return sock.status();
  }
  absl::Status sent = tlsd::SendFrame(sock->get(), MsgType::kHello, /*request_id=*/1,
                                      tlsd::Hello{std::string(backend)}.Encode());
  if (!sent.ok()) {
    return sent;
  }

  absl::Status waited = WaitReadable(sock->get(), kHelloTimeoutMs,
                                     absl::StrCat("wait for tlsd's answer on ", control_socket));
  if (!waited.ok()) {
    return waited;
  }
  absl::StatusOr<Frame> reply = tlsd::RecvFrame(sock->get(), MSG_DONTWAIT);
  if (!reply.ok()) {
    if (IsMalformed(reply.status())) {
      return tlsd::ErrnoToStatus(
          EPROTO, absl::StrCat("tlsd's answer to HELLO: ", reply.status().message()));
    }
    return reply.status();
  }
  switch (reply->header.type) {
    case MsgType::kHelloOk:
      break;
    case MsgType::kError: {
      absl::StatusOr<tlsd::ErrorMsg> err = tlsd::ErrorMsg::Decode(reply->payload);
      if (!err.ok()) {
        return tlsd::ErrnoToStatus(
            EPROTO, absl::StrCat("tlsd's answer to HELLO: ", err.status().message()));
      }
      return tlsd::ErrnoToStatus(static_cast<int>(err->code),
                                 absl::StrCat("HELLO refused by tlsd: ", err->message));
    }
    default:
      return tlsd::ErrnoToStatus(
          EPROTO, absl::StrCat("tlsd answered HELLO with ", tlsd::MsgTypeName(reply->header.type)));
  }
  auto server = std::make_unique<tlsfd_server>(tlsfd_server::Mode::kPull);
  server->sock = *std::move(sock);
  server->control_socket = std::string(control_socket);
  return server;
}

absl::StatusOr<std::unique_ptr<tlsfd_server>> Listen(absl::string_view path, mode_t mode) {
  absl::StatusOr<UniqueFd> listener = tlsd::ListenSeqpacket(path, mode);
  if (!listener.ok()) {
    return listener.status();
  }
  struct stat st;
  std::string path_str(path);
  if (stat(path_str.c_str(), &st) != 0) {
    return tlsd::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  }
  absl::StatusOr<std::unique_ptr<tlsfd_server>> server = NewPushServer(listener->get());
  if (!server.ok()) {
    unlink(path_str.c_str());
    return server.status();
  }
  (*server)->sock = *std::move(listener);
  (*server)->bound_path = std::move(path_str);
  (*server)->bound_dev = st.st_dev;
  (*server)->bound_ino = st.st_ino;
  return server;
}

absl::StatusOr<std::unique_ptr<tlsfd_server>> FromFd(int listening_fd) {
  if (listening_fd < 0) {
    return tlsd::ErrnoToStatus(EBADF, "listening fd");
  }
  absl::Status checked = CheckListeningSeqpacket(listening_fd);
  if (!checked.ok()) {
    return checked;
  }
  int fdflags = fcntl(listening_fd, F_GETFD);
  if (fdflags < 0 || fcntl(listening_fd, F_SETFD, fdflags | FD_CLOEXEC) != 0) {
    return tlsd::ErrnoToStatus(errno, "fcntl(FD_CLOEXEC) on the listening fd");
  }
  absl::Status nb = SetNonBlocking(listening_fd, true);
  if (!nb.ok()) {
    return nb;
  }
  absl::StatusOr<std::unique_ptr<tlsfd_server>> server = NewPushServer(listening_fd);
  if (!server.ok()) {
    return server.status();
  }
  // The fd becomes ours only now that nothing can fail any more.
  (*server)->sock = UniqueFd(listening_fd);
  return server;
}

absl::StatusOr<std::unique_ptr<tlsfd_server>> FromSystemd(const char* fdname) {
  char** names = nullptr;
  int n = sd_listen_fds_with_names(/*unset_environment=*/0, &names);
  // sd_listen_fds_with_names allocates a NULL-terminated strv.
  auto free_names = [&names]() {
    if (names == nullptr) {
      return;
    }
    for (char** p = names; *p != nullptr; ++p) {
      free(*p);
    }
    free(names);
    names = nullptr;
  };
  if (n < 0) {
    free_names();
    return tlsd::ErrnoToStatus(-n, "sd_listen_fds_with_names");
  }
  if (n == 0) {
    free_names();
    return tlsd::ErrnoToStatus(ENOENT, "no fds passed by systemd ($LISTEN_FDS)");
  }
  int found = -1;
  int matches = 0;
  for (int i = 0; i < n; ++i) {
    if (fdname == nullptr ||
        (names != nullptr && names[i] != nullptr && strcmp(names[i], fdname) == 0)) {
      found = SD_LISTEN_FDS_START + i;
      ++matches;
    }
  }
  free_names();
  if (matches == 0) {
    return tlsd::ErrnoToStatus(
        ENOENT, absl::StrCat("no fd named '", fdname, "' passed by systemd ($LISTEN_FDNAMES)"));
  }
  if (matches > 1) {
    return tlsd::ErrnoToStatus(ENOTUNIQ, fdname == nullptr
                                             ? std::string("systemd passed several fds; name one")
                                             : absl::StrCat("several fds named '", fdname, "'"));
  }
  return FromFd(found);
}

absl::Status RequirePeerUid(tlsfd_server& server, uid_t uid) {
  server.required_uid = uid;
  if (server.mode == tlsfd_server::Mode::kPull) {
    absl::StatusOr<struct ucred> cred = tlsd::PeerCredentials(server.sock.get());
    if (!cred.ok()) {
      return cred.status();
    }
    if (cred->uid != uid) {
      return tlsd::ErrnoToStatus(
          EPERM, absl::StrCat("control socket peer is uid ", cred->uid, ", not ", uid));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<tlsfd_conn>> Accept(tlsfd_server& server, int flags) {
  return server.mode == tlsfd_server::Mode::kPull ? AcceptPull(server, flags)
                                                  : AcceptPush(server, flags);
}

}  // namespace tlsfd::internal

tlsfd_server::~tlsfd_server() {
  if (bound_path.empty()) {
    return;
  }
  struct stat st;
  // Remove the socket file only if it is still ours: another process may
  // have bound a new socket at the same path since.
  if (lstat(bound_path.c_str(), &st) == 0 && st.st_dev == bound_dev && st.st_ino == bound_ino) {
    unlink(bound_path.c_str());
  }
}
