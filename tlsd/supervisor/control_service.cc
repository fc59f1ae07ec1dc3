#include "tlsd/supervisor/control_service.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "common/ipc/seqpacket.h"
#include "common/wire/messages.h"

namespace tlsd {

absl::StatusOr<std::unique_ptr<ControlService>> ControlService::Create(
    UniqueFd listener, Backends& backends, const Sealer& sealer, const ControlRecordPolicy& policy,
    const ClientProfiles& profiles, Connector& connector, Admin& admin,
    std::optional<uint32_t> admin_gid, GlobalMetrics& metrics) {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoToStatus(errno, "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // id 0 is the listener
  if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0) {
    return ErrnoToStatus(errno, "epoll add control socket");
  }
  return std::unique_ptr<ControlService>(new ControlService(std::move(listener), std::move(epoll),
                                                            backends, sealer, policy, profiles,
                                                            connector, admin, admin_gid, metrics));
}

void ControlService::OnReady() {
  epoll_event events[32];
  int n = epoll_wait(epoll_.get(), events, 32, 0);
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == 0) {
      Accept();
    } else {
      OnPeer(events[i].data.u64);
    }
  }
}

void ControlService::Accept() {
  for (;;) {
    UniqueFd sock(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!sock.valid()) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        TLSD_LOG(Warning) << "control socket accept: " << strerror(errno);
      }
      return;
    }
    absl::StatusOr<struct ucred> cred = PeerCredentials(sock.get());
    if (!cred.ok()) continue;  // closes the peer
    const uint64_t id = next_id_++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, sock.get(), &ev) != 0) continue;
    auto link = std::make_shared<WorkerLink>();
    link->sock = std::move(sock);
    link->cred = *cred;
    peers_.emplace(id, Peer{std::move(link), nullptr});
  }
}

void ControlService::OnPeer(uint64_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  Peer& peer = it->second;
  absl::StatusOr<Frame> frame = RecvFrame(peer.link->sock.get(), MSG_DONTWAIT);
  if (!frame.ok()) {
    if (IsErrno(frame.status(), EAGAIN)) return;
    if (!IsErrno(frame.status(), ECONNRESET)) {
      TLSD_LOG(Warning) << "control peer pid " << peer.link->cred.pid << ": "
                        << frame.status().message();
    }
    return Close(id);
  }
  if (peer.subscribed != nullptr) {
    return Refuse(
        id, EPROTO,
        absl::StrCat("unexpected ", MsgTypeName(frame->header.type), " from a subscribed worker"));
  }
  if (frame->header.type == MsgType::kControlRecord) return OnControlRecord(id, *frame);
  if (frame->header.type == MsgType::kAdminRequest && !frame->fd.valid()) {
    return OnAdmin(id, *frame);
  }
  if (frame->header.type == MsgType::kConnect && !frame->fd.valid()) return OnConnect(id, *frame);
  if (frame->header.type != MsgType::kHello || frame->fd.valid()) {
    return Refuse(id, EPROTO,
                  "expected HELLO or CONNECT without an fd, or CONTROL_RECORD with one");
  }
  OnHello(id, *frame);
}

void ControlService::OnControlRecord(uint64_t id, Frame& frame) {
  Peer& peer = peers_.find(id)->second;
  if (!frame.fd.valid()) return Refuse(id, EPROTO, "CONTROL_RECORD without the connection's fd");
  absl::StatusOr<ControlRecord> record = ControlRecord::Decode(frame.payload);
  if (!record.ok()) return Refuse(id, EINVAL, std::string(record.status().message()));
  absl::StatusOr<ControlVerdict> verdict =
      AnswerControlRecord(sealer_, policy_, *record, frame.fd.get());
  metrics_.ControlRecord(record->record_type,
                         verdict.ok() ? static_cast<int>(verdict->action) - 1 : 3);
  if (!verdict.ok()) {
    TLSD_LOG(Warning) << "control record from pid " << peer.link->cred.pid << " uid "
                      << peer.link->cred.uid << " refused: " << verdict.status().message();
    ErrorMsg err{static_cast<uint32_t>(absl::IsPermissionDenied(verdict.status()) ? EPERM : EINVAL),
                 std::string(verdict.status().message())};
    (void)SendFrame(peer.link->sock.get(), MsgType::kError, frame.header.request_id, err.Encode(),
                    -1, MSG_DONTWAIT);
    return;  // the fd (frame.fd) is closed; the peer may send more
  }
  if (!SendFrame(peer.link->sock.get(), MsgType::kControlVerdict, frame.header.request_id,
                 verdict->Encode(), -1, MSG_DONTWAIT)
           .ok()) {
    Close(id);
  }
}

void ControlService::OnAdmin(uint64_t id, Frame& frame) {
  Peer& peer = peers_.find(id)->second;
  absl::StatusOr<AdminRequest> request = AdminRequest::Decode(frame.payload);
  if (!request.ok()) return Refuse(id, EINVAL, std::string(request.status().message()));
  const struct ucred& cred = peer.link->cred;
  const int sock = peer.link->sock.get();
  const uint32_t request_id = frame.header.request_id;
  if (!AdminAllowed(sock, cred, admin_gid_)) {
    TLSD_LOG(Warning) << "refused admin command '" << AdminCommandName(request->command)
                      << "' from pid " << cred.pid << " uid " << cred.uid
                      << ": neither root nor in admin_group";
    ErrorMsg err{EACCES, absl::StrCat("uid ", cred.uid,
                                      " may not use admin commands: root or [global] "
                                      "admin_group only")};
    (void)SendFrame(sock, MsgType::kError, request_id, err.Encode(), -1, MSG_DONTWAIT);
    return;
  }
  TLSD_LOG(Info) << "admin command '" << AdminCommandName(request->command) << "' from pid "
                 << cred.pid << " uid " << cred.uid;
  const std::string answer = admin_.Handle(request->command);
  // Admins are trusted not to stall us on purpose; a reader that stops
  // reading for a second is dropped rather than buffered for.
  for (size_t off = 0; off == 0 || off < answer.size();) {
    AdminReplyChunk chunk;
    chunk.data = answer.substr(off, kMaxAdminChunk);
    off += chunk.data.size();
    chunk.last = off >= answer.size();
    absl::Status sent;
    for (int tries = 0; tries < 2; ++tries) {
      sent = SendFrame(sock, MsgType::kAdminReply, request_id, chunk.Encode(), -1, MSG_DONTWAIT);
      if (!IsErrno(sent, EAGAIN)) break;
      pollfd pfd{sock, POLLOUT, 0};
      poll(&pfd, 1, 1000);
    }
    if (!sent.ok()) return Close(id);
    if (chunk.last) break;
  }
}

void ControlService::OnConnect(uint64_t id, Frame& frame) {
  Peer& peer = peers_.find(id)->second;
  absl::StatusOr<ConnectRequest> request = ConnectRequest::Decode(frame.payload);
  if (!request.ok()) return Refuse(id, EINVAL, std::string(request.status().message()));
  const struct ucred& cred = peer.link->cred;
  const std::shared_ptr<WorkerLink> link = peer.link;
  const uint32_t request_id = frame.header.request_id;
  auto refuse = [&](int code, const std::string& why) {
    ErrorMsg err{static_cast<uint32_t>(code), why};
    (void)SendFrame(link->sock.get(), MsgType::kError, request_id, err.Encode(), -1, MSG_DONTWAIT);
  };
  const ClientTls* profile = nullptr;
  for (const auto& p : profiles_) {
    if (p->config().name == request->profile) profile = p.get();
  }
  if (profile == nullptr) {
    return refuse(ENOENT, absl::StrCat("no client profile named '", request->profile, "'"));
  }
  const ClientProfileConfig& config = profile->config();
  if (!PeerAllowed(cred, config.allow_uids, config.allow_gids)) {
    TLSD_LOG(Warning) << "refused CONNECT from pid " << cred.pid << " uid " << cred.uid << " gid "
                      << cred.gid << ": not allowed to use client profile '" << config.name << "'";
    return refuse(EACCES, absl::StrCat("uid ", cred.uid, " gid ", cred.gid,
                                       " may not use client profile '", config.name, "'"));
  }
  bool destination_ok = false;
  for (const DestinationPattern& d : config.destinations) {
    destination_ok = destination_ok || d.Matches(request->host, request->port);
  }
  if (!destination_ok) {
    TLSD_LOG(Warning) << "refused CONNECT from pid " << cred.pid << " uid " << cred.uid << " to "
                      << request->host << ":" << request->port << ": not a destination of client "
                      << "profile '" << config.name << "'";
    return refuse(EACCES,
                  absl::StrCat(request->host, ":", request->port,
                               " is not a destination of client profile '", config.name, "'"));
  }
  absl::Status started = connector_.Start(
      *profile, *std::move(request),
      [link, request_id](MsgType type, const std::vector<uint8_t>& payload, int fd) {
        return SendFrame(link->sock.get(), type, request_id, payload, fd, MSG_DONTWAIT);
      });
  if (!started.ok()) refuse(EAGAIN, std::string(started.message()));
}

void ControlService::OnHello(uint64_t id, Frame& frame_ref) {
  Peer& peer = peers_.find(id)->second;
  const Frame* frame = &frame_ref;
  absl::StatusOr<Hello> hello = Hello::Decode(frame->payload);
  if (!hello.ok()) return Refuse(id, EINVAL, std::string(hello.status().message()));
  Backend* backend = backends_.Find(hello->backend);
  if (backend == nullptr) {
    return Refuse(id, ECONNREFUSED, absl::StrCat("no backend named '", hello->backend, "'"));
  }
  if (backend->config().mode != BackendMode::kPull) {
    return Refuse(
        id, EINVAL,
        absl::StrCat("backend '", hello->backend, "' is a push backend: tlsd connects to it"));
  }
  const struct ucred& cred = peer.link->cred;
  if (!backend->Allowed(cred)) {
    TLSD_LOG(Warning) << "refused subscriber pid " << cred.pid << " uid " << cred.uid << " gid "
                      << cred.gid << " for backend '" << hello->backend << "'";
    return Refuse(id, EACCES,
                  absl::StrCat("uid ", cred.uid, " gid ", cred.gid, " may not serve backend '",
                               hello->backend, "'"));
  }
  absl::Status ok = SendFrame(peer.link->sock.get(), MsgType::kHelloOk, frame->header.request_id,
                              {}, -1, MSG_DONTWAIT);
  if (!ok.ok()) return Close(id);
  peer.subscribed = backend;
  backend->AddSubscriber(peer.link);
  TLSD_LOG(Info) << "worker pid " << cred.pid << " uid " << cred.uid << " subscribed to backend '"
                 << hello->backend << "'";
}

void ControlService::Refuse(uint64_t id, int code, const std::string& why) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  ErrorMsg err{static_cast<uint32_t>(code), why};
  (void)SendFrame(it->second.link->sock.get(), MsgType::kError, 0, err.Encode(), -1, MSG_DONTWAIT);
  Close(id);
}

void ControlService::Close(uint64_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  if (it->second.subscribed != nullptr) {
    it->second.subscribed->RemoveSubscriber(it->second.link.get());
  }
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.link->sock.get(), nullptr);
  peers_.erase(it);  // the last shared_ptr may be in a handoff; it closes then
}

}  // namespace tlsd
