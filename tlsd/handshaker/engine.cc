#include "tlsd/handshaker/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "common/ktls/record_io.h"
#include "tlsd/handshaker/conn_info.h"
#include "tlsd/handshaker/conn_log.h"
#include "tlsd/handshaker/proxy_protocol.h"
#include "tlsd/handshaker/router.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {

// Conn is one client connection, from accept until it is handed off (kTLS) or
// ends (relay). Owned by the Engine's table; epoll refers to it by id.
struct Conn {
  enum class State { kHandshake, kQueued, kRelay };

  uint64_t id = 0;
  const ServiceRuntime* service = nullptr;  // null for an outgoing relay
  EndpointMetrics* metrics = nullptr;       // the service's or client profile's
  // The TLS contexts this connection started with; a reload swaps the
  // service's, not these (the SSL's callbacks point into them).
  std::shared_ptr<const ServiceTls> tls;
  State state = State::kHandshake;
  // A PROXY protocol service: the header comes first (ssl is null until it
  // has been read); bytes of an incomplete header read so far.
  bool awaiting_proxy = false;
  // Accepted, nothing received yet (Engine::waiting_).
  bool waiting = false;
  // First bytes received while the service was at its bound (Engine::ready_).
  bool parked = false;
  // Holds one of the service's handshake slots (in_handshake_).
  bool counted = false;
  std::vector<uint8_t> proxy_bytes;
  // Counted by the service's SourceLimiter until the handshake ends (under
  // the socket's address, before any PROXY header replaced it).
  bool limited = false;
  WireAddress limited_source;
  UniqueFd tcp;
  SslPtr ssl;  // borrows tcp's fd; declared after tcp so it is freed first
  absl::Time accepted;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration handshake_time;
  ConnectionInfo info;
  Backend* backend = nullptr;
  bool holds_queue_slot = false;

  // What the worker receives: the TCP socket itself (kTLS both ways) or the
  // worker's end of a socketpair (relay).
  UniqueFd handoff_fd;

  // Relay state: `app` is tlsd's end of the socketpair.
  UniqueFd app;
  std::string to_app, to_tls;  // pending bytes in each direction
  size_t to_tls_off = 0, to_app_off = 0;
  bool tls_eof = false, app_eof = false;
  bool app_write_shut = false, tls_write_shut = false;
  uint32_t tcp_events = 0, app_events = 0;  // or kUnwatched
  // Post-handshake handshake messages (KeyUpdates, renegotiation attempts)
  // received while relaying, held to the same limit as on kTLS handoffs.
  ControlRecordWindow control_window;
  bool control_over_limit = false;
  const ControlRecordPolicy* control_policy = nullptr;
};

namespace {

constexpr size_t kRelayChunk = 16 * 1024;  // one TLS record's worth

// A relay socket taken out of the epoll set after its hang-up (Conn's
// tcp_events, app_events).
constexpr uint32_t kUnwatched = ~uint32_t{0};

// OnRelayMessage is OpenSSL's message callback for relayed connections: it
// counts each handshake message the peer sends after the handshake. OpenSSL
// answers them itself (a KeyUpdate costs a key derivation), so a storm would
// otherwise burn tlsd's CPU; PumpRelay ends the connection over the limit.
void OnRelayMessage(int write_p, int /*version*/, int content_type, const void* /*buf*/,
                    size_t /*len*/, SSL* /*ssl*/, void* arg) {
  if (write_p != 0 || content_type != SSL3_RT_HANDSHAKE) return;
  Conn& c = *static_cast<Conn*>(arg);
  if (!c.control_window.Admit(*c.control_policy, NowMs())) c.control_over_limit = true;
}

constexpr int kMaxAcceptsPerWakeup = 64;  // fairness between listeners
// Silent connections closed when accept() runs out of fds.
constexpr int kFdHeadroom = 8;
constexpr absl::Duration kQueueRetryInterval = absl::Milliseconds(20);

}  // namespace

Engine::Engine(Runtime& rt, unsigned index) : rt_(rt), index_(index) {}

Engine::~Engine() = default;

absl::Status Engine::Init() {
  epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return ErrnoToStatus(errno, "epoll_create1");
  in_handshake_.assign(rt_.services.size(), 0);
  ready_.resize(rt_.services.size());
  // Silent connections may use this thread's share of the fd limit, less a
  // reserve for backends, the control socket and relays' socketpairs.
  const uint64_t usable = rt_.fd_limit > 1024 ? rt_.fd_limit - 512 : rt_.fd_limit / 2;
  max_waiting_ = std::max<size_t>(64, usable / std::max(1u, rt_.num_threads));
  handshake_limit_.resize(rt_.services.size());
  for (const auto& s : rt_.services) {
    // Each thread takes its share of the service's bound, at least one.
    handshake_limit_[s->index] =
        std::max<size_t>(1, s->config->max_handshakes / std::max(1u, rt_.num_threads));
  }
  inbox_event_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!inbox_event_.valid()) return ErrnoToStatus(errno, "eventfd");
  if (absl::Status s = AddExternal(inbox_event_.get(), [this] { DrainInbox(); }); !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < rt_.listeners.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = Key(Kind::kListener, i);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, rt_.listeners[i].fd.get(), &ev) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("epoll add ", rt_.listeners[i].description));
    }
  }
  return absl::OkStatus();
}

absl::Status Engine::AddExternal(int fd, std::function<void()> on_ready) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Key(Kind::kExternal, externals_.size());
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoToStatus(errno, "epoll add external");
  }
  externals_.push_back(std::move(on_ready));
  return absl::OkStatus();
}

void Engine::AdoptRelay(OutgoingRelay relay) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.push_back(std::move(relay));
  }
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow; the loop drains on any value.
  (void)!write(inbox_event_.get(), &one, sizeof(one));
}

void Engine::DrainInbox() {
  uint64_t count = 0;
  (void)!read(inbox_event_.get(), &count, sizeof(count));
  std::vector<OutgoingRelay> relays;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    relays.swap(inbox_);
  }
  for (OutgoingRelay& r : relays) StartRelay(std::move(r));
}

void Engine::StartRelay(OutgoingRelay r) {
  auto c = std::make_unique<Conn>();
  c->id = r.info.connection_id;
  c->accepted = r.started;
  c->metrics = r.metrics;
  c->info = std::move(r.info);
  c->tcp = std::move(r.tcp);
  c->ssl = std::move(r.ssl);
  int pair[2];
  if (!RelayPair(pair)) {
    ReportConnOutcome(*c->metrics, {&c->info, Outcome::kRelayFailed, strerror(errno),
                                    absl::Now() - c->accepted, true});
    return;
  }
  c->app = UniqueFd(pair[0]);
  UniqueFd worker_end(pair[1]);
  // The app's end blocks like a normal socket would.
  fcntl(pair[1], F_SETFL, fcntl(pair[1], F_GETFL) & ~O_NONBLOCK);
  if (absl::Status s = r.deliver(c->info, worker_end.get()); !s.ok()) {
    ReportConnOutcome(*c->metrics, {&c->info, Outcome::kClosed,
                                    absl::StrCat("app gone before the reply: ", s.message()),
                                    absl::Now() - c->accepted, true});
    return;
  }
  worker_end.Reset();
  c->metrics->DataPaths(c->info.tx_path, c->info.rx_path);
  ReportConnOutcome(*c->metrics, {&c->info, Outcome::kRelay, c->info.path_reason,
                                  absl::Now() - c->accepted, false});
  Conn& ref = *c;
  conns_.emplace(c->id, std::move(c));
  ref.state = Conn::State::kRelay;
  ref.control_policy = &rt_.control_policy;
  SSL_set_msg_callback_arg(ref.ssl.get(), &ref);
  SSL_set_msg_callback(ref.ssl.get(), &OnRelayMessage);
  for (auto [fd, kind, events] :
       {std::tuple<int, Kind, uint32_t*>{ref.tcp.get(), Kind::kTcp, &ref.tcp_events},
        std::tuple<int, Kind, uint32_t*>{ref.app.get(), Kind::kApp, &ref.app_events}}) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = Key(kind, ref.id);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      return Finish(ref, Outcome::kRelayError, strerror(errno), true);
    }
    *events = ev.events;
  }
  PumpRelay(ref);
}

void Engine::Run(const std::atomic<bool>& stop) {
  epoll_event events[64];
  while (!stop.load(std::memory_order_relaxed)) {
    absl::Time now = absl::Now();
    last_loop_ns_.store(absl::ToUnixNanos(now), std::memory_order_relaxed);
    absl::Duration wait = absl::Milliseconds(500);  // notice `stop` promptly
    if (!deadlines_.empty()) wait = std::min(wait, deadlines_.begin()->first - now);
    if (!queued_.empty()) wait = std::min(wait, kQueueRetryInterval);
    if (accept_backoff_until_ > now) wait = std::min(wait, accept_backoff_until_ - now);
    int timeout_ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(wait) + 1);
    int n = epoll_wait(epoll_.get(), events, 64, timeout_ms);
    if (n < 0 && errno != EINTR) {
      TLSD_LOG(Error) << "epoll_wait: " << strerror(errno);
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t key = events[i].data.u64;
      const auto kind = static_cast<Kind>(key >> 56);
      const uint64_t value = key & ((uint64_t{1} << 56) - 1);
      if (kind == Kind::kListener) {
        OnListener(value);
        continue;
      }
      if (kind == Kind::kExternal) {
        externals_[value]();
        continue;
      }
      auto it = conns_.find(value);
      if (it == conns_.end()) continue;  // finished earlier in this batch
      Conn& c = *it->second;
      if (c.state == Conn::State::kHandshake) {
        if (c.waiting) {
          OnFirstBytes(c);
        } else if (c.parked) {
          // No interest is set while parked: a hang-up or an error.
          Finish(c, Outcome::kClosed, "client left while waiting for a handshake slot", true);
        } else if (c.awaiting_proxy) {
          ReadProxyHeader(c);
        } else {
          DriveHandshake(c);
        }
      } else if (c.state == Conn::State::kRelay) {
        if (events[i].events & EPOLLHUP) StopWatching(c, kind);
        PumpRelay(c);
      } else if (events[i].events & (EPOLLHUP | EPOLLERR)) {
        // Queued with no interest set: only a hang-up or error is reported.
        // The client left while we waited for a worker.
        Finish(c, Outcome::kClosed, "client left while waiting for a worker", true);
      }
    }
    if (!queued_.empty()) RetryQueued();
    ExpireDeadlines(absl::Now());
    AdmitReady();
    if (draining_.load() && !accepting_stopped_) {
      // The listening sockets stay open (systemd or the next process has
      // them); the kernel queues new clients while this one winds down.
      for (const Listener& l : rt_.listeners) {
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
      }
      accepting_stopped_ = true;
    }
    if (accepting_stopped_) {
      // (queued_ may still hold ids of connections that have finished.)
      bool busy = false;
      for (const auto& [id, conn] : conns_) {
        if (conn->state != Conn::State::kRelay) busy = true;
      }
      drained_.store(!busy);
      // Relayed connections may live for hours: they get what the caller
      // allows (a short grace) and are closed when `stop` comes.
      if (conns_.empty()) {
        idle_.store(true);
        break;
      }
    } else {
      UpdateListenerInterest();
    }
  }
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) ids.push_back(id);
  for (uint64_t id : ids) Finish(*conns_[id], Outcome::kShutdown, "tlsd is stopping", false);
}

void Engine::OnListener(size_t index) {
  const Listener& l = rt_.listeners[index];
  for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
    if (in_handshake_[l.service->index] >= handshake_limit_[l.service->index]) return;
    if (num_waiting_ >= max_waiting_) EvictOldestWaiting();
    int fd = accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of fds: silent connections make room, with some to spare for
        // the relay's socketpair and backend links.
        bool evicted = false;
        for (int k = 0; k < kFdHeadroom; ++k) evicted = EvictOldestWaiting() || evicted;
        if (evicted) continue;
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The connection stays in the backlog; stop the level-triggered
        // listener from waking us in a loop until something frees up.
        accept_backoff_until_ = absl::Now() + absl::Milliseconds(100);
      }
      // EMFILE/ENFILE/ENOBUFS: the connection waits in the backlog; say so.
      TLSD_LOG(Warning) << "accept on " << l.description << ": " << strerror(errno);
      return;
    }
    l.service->metrics.Accepted();
    StartConnection(index, UniqueFd(fd));
  }
}

void Engine::StartConnection(size_t listener_index, UniqueFd sock) {
  const Listener& l = rt_.listeners[listener_index];
  // Without TCP_NODELAY a small response written right after the handshake
  // waits behind the unacknowledged session tickets until the client's
  // delayed ACK (40 ms): Nagle's rule. Set before the handshake, it stays on
  // the socket a worker gets (which may clear it).
  const int one = 1;
  (void)setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto c = std::make_unique<Conn>();
  c->id = rt_.next_connection_id.fetch_add(1);
  c->service = l.service;
  c->metrics = &l.service->metrics;
  c->accepted = absl::Now();
  c->info.connection_id = c->id;
  c->info.service = l.service->config->name;
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  getpeername(sock.get(), reinterpret_cast<sockaddr*>(&peer), &len);
  c->info.peer = WireAddressFromSockaddr(peer);
  c->info.local = LocalAddress(sock.get());
  // Per-source limits, before any work is spent on the connection (closing
  // `sock` is the whole cost of a refusal).
  if (l.service->limiter->enabled()) {
    const std::string refused = l.service->limiter->Admit(c->info.peer, c->accepted);
    if (!refused.empty()) {
      ReportConnOutcome(*c->metrics, {&c->info, Outcome::kRefusedLimit, refused,
                                      absl::Now() - c->accepted, true});
      return;
    }
    c->limited_source = c->info.peer;
    c->limited = true;
  }
  c->tcp = std::move(sock);
  c->tls = l.service->Tls();
  Conn& ref = *c;
  conns_.emplace(c->id, std::move(c));
  ArmDeadline(ref, ref.accepted + absl::Milliseconds(ref.service->config->handshake_timeout_ms));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Key(Kind::kTcp, ref.id);
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, ref.tcp.get(), &ev) != 0) {
    Finish(ref, Outcome::kHandshakeFailed, strerror(errno), true);
    return;
  }
  ref.tcp_events = EPOLLIN;
  ref.waiting = true;
  waiting_.push_back(ref.id);
  ++num_waiting_;
  ref.metrics->WaitingStarted();
  if (waiting_.size() > 2 * num_waiting_ + 64) {
    // Drop the ids of connections that moved on, keeping the order.
    std::deque<uint64_t> still;
    for (uint64_t id : waiting_) {
      auto it = conns_.find(id);
      if (it != conns_.end() && it->second->waiting) still.push_back(id);
    }
    waiting_.swap(still);
  }
  OnFirstBytes(ref);  // the ClientHello (or PROXY header) is often already there
}

void Engine::OnFirstBytes(Conn& c) {
  char byte;
  const ssize_t n = recv(c.tcp.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    Finish(c, Outcome::kClosed,
           n == 0 ? "the client closed without sending anything" : strerror(errno), true);
    return;
  }
  StopWaiting(c);
  const size_t s = c.service->index;
  if (in_handshake_[s] >= handshake_limit_[s]) {
    c.parked = true;
    SetInterest(c.tcp.get(), Key(Kind::kTcp, c.id), 0);
    c.tcp_events = 0;
    ready_[s].push_back(c.id);
    return;
  }
  Admit(c);
}

void Engine::Admit(Conn& c) {
  c.counted = true;
  ++in_handshake_[c.service->index];
  c.metrics->HandshakeStarted();
  if (c.service->config->proxy_protocol) {
    c.awaiting_proxy = true;
    ReadProxyHeader(c);
    return;
  }
  BeginTls(c);
}

void Engine::AdmitReady() {
  for (size_t s = 0; s < ready_.size(); ++s) {
    while (!ready_[s].empty() && in_handshake_[s] < handshake_limit_[s]) {
      const uint64_t id = ready_[s].front();
      ready_[s].pop_front();
      auto it = conns_.find(id);
      if (it == conns_.end() || !it->second->parked) continue;
      Conn& c = *it->second;
      c.parked = false;
      SetInterest(c.tcp.get(), Key(Kind::kTcp, c.id), EPOLLIN);
      c.tcp_events = EPOLLIN;
      Admit(c);
    }
  }
}

void Engine::StopWaiting(Conn& c) {
  if (!c.waiting) return;
  c.waiting = false;
  --num_waiting_;
  c.metrics->WaitingEnded();
}

void Engine::ReleaseSlot(Conn& c) {
  if (!c.counted) return;
  c.counted = false;
  --in_handshake_[c.service->index];
  c.metrics->HandshakeEnded();
}

bool Engine::RelayPair(int pair[2]) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) == 0) return true;
    if ((errno != EMFILE && errno != ENFILE) || !EvictOldestWaiting()) return false;
  }
  return false;
}

bool Engine::EvictOldestWaiting() {
  while (!waiting_.empty()) {
    const uint64_t id = waiting_.front();
    waiting_.pop_front();
    auto it = conns_.find(id);
    if (it == conns_.end() || !it->second->waiting) continue;
    Finish(*it->second, Outcome::kEvicted,
           "sent nothing yet; closed to make room for a new connection", true);
    return true;
  }
  return false;
}

void Engine::BeginTls(Conn& c) {
  absl::StatusOr<SslPtr> ssl = c.tls->NewSsl(c.tcp.get());
  if (!ssl.ok()) {
    Finish(c, Outcome::kHandshakeFailed, ssl.status().message(), true);
    return;
  }
  c.ssl = std::move(*ssl);
  DriveHandshake(c);  // the ClientHello is often already there
}

void Engine::ReadProxyHeader(Conn& c) {
  // Peek, so that nothing after the header (the ClientHello) is taken; bytes
  // that are certainly header (an incomplete one) are consumed, so that a
  // level-triggered epoll does not report them again.
  std::array<uint8_t, kMaxProxyHeader> buf;
  const size_t have = c.proxy_bytes.size();
  const ssize_t n = recv(c.tcp.get(), buf.data(), kMaxProxyHeader - have, MSG_PEEK);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    Finish(c, Outcome::kProxyError, strerror(errno), true);
    return;
  }
  if (n == 0) {
    Finish(c, Outcome::kProxyError, "the client closed before the PROXY header was complete", true);
    return;
  }
  std::vector<uint8_t> seen = c.proxy_bytes;
  seen.insert(seen.end(), buf.begin(), buf.begin() + n);
  const ProxyHeader h = ParseProxyHeader(seen);
  switch (h.result) {
    case ProxyHeader::Result::kInvalid:
      Finish(c, Outcome::kProxyError, h.error, true);
      return;
    case ProxyHeader::Result::kIncomplete:
      if (seen.size() >= kMaxProxyHeader ||
          recv(c.tcp.get(), buf.data(), static_cast<size_t>(n), 0) != n) {
        Finish(c, Outcome::kProxyError, "PROXY header too long or unreadable", true);
        return;
      }
      c.proxy_bytes = std::move(seen);
      return;
    case ProxyHeader::Result::kOk: {
      const size_t rest = h.length - have;
      if (recv(c.tcp.get(), buf.data(), rest, 0) != static_cast<ssize_t>(rest)) {
        Finish(c, Outcome::kProxyError, "PROXY header unreadable", true);
        return;
      }
      if (h.has_addresses) {
        c.info.peer = h.source;
        c.info.local = h.destination;
      }
      c.awaiting_proxy = false;
      c.proxy_bytes.clear();
      BeginTls(c);
      return;
    }
  }
}

void Engine::DriveHandshake(Conn& c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c.ssl.get());
  if (r == 1) {
    OnHandshakeDone(c);
    return;
  }
  int err = SSL_get_error(c.ssl.get(), r);
  if (err == SSL_ERROR_WANT_READ) {
    SetInterest(c.tcp.get(), Key(Kind::kTcp, c.id), EPOLLIN);
    return;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    SetInterest(c.tcp.get(), Key(Kind::kTcp, c.id), EPOLLOUT);
    return;
  }
  // OpenSSL has already sent the alert it chose (if it could). Record what
  // we know (SNI may be set) for the log line.
  if (const char* sni = SSL_get_servername(c.ssl.get(), TLSEXT_NAMETYPE_host_name)) {
    c.info.sni = sni;
  }
  std::string why = OpenSslFailure(err);
  // "certificate verify failed" alone does not say why a client certificate
  // was refused (revoked, expired, unknown CA): the verifier does.
  if (const long v = SSL_get_verify_result(c.ssl.get()); v != X509_V_OK) {
    absl::StrAppend(&why, ": client certificate: ", X509_verify_cert_error_string(v));
  }
  Finish(c, Outcome::kHandshakeFailed, why, true);
}

void Engine::OnHandshakeDone(Conn& c) {
  SSL* ssl = c.ssl.get();
  c.handshake_time = absl::Now() - c.accepted;
  ReleaseSlot(c);
  ReleaseLimit(c);
  deadlines_.erase({c.deadline, c.id});
  c.deadline = absl::InfiniteFuture();

  ConnectionInfo& info = c.info;
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) info.sni = sni;
  FillNegotiated(ssl, info);
  info.handshake_us = static_cast<uint32_t>(absl::ToInt64Microseconds(c.handshake_time));
  FillPeerCertificate(ssl, info);
  c.metrics->Negotiated(info, c.handshake_time);

  const ServiceConfig& svc = *c.service->config;
  info.backend = RouteBackend(svc, info.sni, info.alpn);
  c.backend = rt_.backends->Find(info.backend);
  if (c.backend == nullptr) {
    FailAfterHandshake(c, Outcome::kNoBackend, "no route or default backend matches");
    return;
  }

  KtlsOptions options;
  options.rx_expect_no_pad = svc.rx_expect_no_pad;
  options.tx_zerocopy_ro = svc.tx_zerocopy_ro;
  absl::StatusOr<KtlsOutcome> ktls = CompleteKtls(ssl, c.tcp.get(), /*is_server=*/true, options);
  KtlsOutcome outcome;
  if (ktls.ok()) {
    outcome = *ktls;
  } else {
    outcome.reason = std::string(ktls.status().message());
  }
  info.tx_path = PathFor(outcome.tx);
  info.rx_path = PathFor(outcome.rx);
  info.path_reason = outcome.reason.substr(0, 1024);  // CONNECTION's field limit
  const bool in_kernel = outcome.tx != KtlsMode::kNone && outcome.rx != KtlsMode::kNone;
  if (svc.offload == OffloadPolicy::kRequire &&
      (outcome.tx != KtlsMode::kDevice || outcome.rx != KtlsMode::kDevice)) {
    FailAfterHandshake(c, Outcome::kRefused,
                       "offload = require but the NIC did not take the session");
    return;
  }
  if (in_kernel) {
    // What tlsd needs to answer this connection's control records later
    // travels with it, sealed; the traffic secrets then leave our memory.
    const Tls13TrafficSecrets* secrets = CapturedTrafficSecrets(ssl);
    const SecretBytes none;
    absl::StatusOr<std::string> sealed = SealForHandoff(
        *rt_.sealer, c.tcp.get(), /*is_server=*/true, info.connection_id, info.tls_version,
        info.cipher_suite, secrets != nullptr ? secrets->client : none,
        secrets != nullptr ? secrets->server : none);
    ForgetTrafficSecrets(ssl);
    if (!sealed.ok()) {
      FailAfterHandshake(c, Outcome::kRefused,
                         absl::StrCat("sealing state: ", sealed.status().message()));
      return;
    }
    info.sealed_state = std::move(*sealed);
    c.handoff_fd = std::move(c.tcp);  // ssl still borrows it until handoff
  } else if (svc.ktls == KtlsPolicy::kRequire) {
    FailAfterHandshake(c, Outcome::kRefused, absl::StrCat("ktls = require: ", outcome.reason));
    return;
  } else {
    int pair[2];
    if (!RelayPair(pair)) {
      FailAfterHandshake(c, Outcome::kRelayFailed, strerror(errno));
      return;
    }
    c.app = UniqueFd(pair[0]);
    c.handoff_fd = UniqueFd(pair[1]);
    // The worker's end blocks like a normal socket would.
    int flags = fcntl(pair[1], F_GETFL);
    fcntl(pair[1], F_SETFL, flags & ~O_NONBLOCK);
  }
  TryHandoff(c);
}

void Engine::TryHandoff(Conn& c) {
  absl::Status sent = c.backend->Handoff(c.info, c.handoff_fd.get());
  if (!sent.ok()) {
    if (c.state != Conn::State::kQueued) {
      if (!c.backend->TryReserveQueueSlot()) {
        FailAfterHandshake(c, Outcome::kNoBackend, absl::StrCat(sent.message(), "; queue full"));
        return;
      }
      c.holds_queue_slot = true;
      c.state = Conn::State::kQueued;
      queued_.push_back(c.id);
      ArmDeadline(c, absl::Now() + absl::Milliseconds(c.backend->config().queue_timeout_ms));
      SetInterest(c.tcp.valid() ? c.tcp.get() : c.handoff_fd.get(), Key(Kind::kTcp, c.id), 0);
      // Recorded, so that a relay started after the wait sets its interest
      // again (it compares against this).
      c.tcp_events = 0;
    }
    return;
  }
  if (c.holds_queue_slot) {
    c.backend->ReleaseQueueSlot();
    c.holds_queue_slot = false;
  }
  deadlines_.erase({c.deadline, c.id});
  c.deadline = absl::InfiniteFuture();
  c.handoff_fd.Reset();  // the worker holds the connection now
  if (c.app.valid()) {
    c.metrics->Handoff(absl::Now() - c.accepted - c.handshake_time);
    c.metrics->DataPaths(c.info.tx_path, c.info.rx_path);
    ReportConnOutcome(*c.metrics,
                      {&c.info, Outcome::kRelay, c.info.path_reason, c.handshake_time, false});
    c.state = Conn::State::kRelay;
    c.control_policy = &rt_.control_policy;
    SSL_set_msg_callback_arg(c.ssl.get(), &c);
    SSL_set_msg_callback(c.ssl.get(), &OnRelayMessage);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = Key(Kind::kApp, c.id);
    epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.app.get(), &ev);
    c.app_events = ev.events;
    PumpRelay(c);
    return;
  }
  c.metrics->Handoff(absl::Now() - c.accepted - c.handshake_time);
  c.metrics->DataPaths(c.info.tx_path, c.info.rx_path);
  // The connection lives on in the worker: tell OpenSSL it ended cleanly, or
  // SSL_free would drop its session from the cache as a failed one.
  SSL_set_shutdown(c.ssl.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  Finish(c, Outcome::kHandedOff, "", false);
}

void Engine::RetryQueued() {
  std::vector<uint64_t> pending;
  pending.swap(queued_);
  for (uint64_t id : pending) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second->state != Conn::State::kQueued) continue;
    Conn& c = *it->second;
    TryHandoff(c);
    if (conns_.contains(id) && c.state == Conn::State::kQueued) queued_.push_back(id);
  }
}

void Engine::FailAfterHandshake(Conn& c, Outcome outcome, absl::string_view detail) {
  // Tell the client with an alert rather than a bare reset. With kTLS TX the
  // kernel encrypts it; in user space OpenSSL can only send close_notify.
  const int fd = c.tcp.valid() ? c.tcp.get() : c.handoff_fd.get();
  if (c.info.tx_path != DataPath::kRelay && c.info.tls_version != 0) {
    const uint8_t alert[2] = {kAlertLevelFatal, kAlertInternalError};
    (void)SendTlsRecord(fd, kRecordAlert, alert);
  } else if (c.ssl) {
    SSL_shutdown(c.ssl.get());
  }
  Finish(c, outcome, detail, true);
}

void Engine::Finish(Conn& c, Outcome outcome, absl::string_view detail, bool failure) {
  StopWaiting(c);
  ReleaseSlot(c);
  ReleaseLimit(c);
  if (c.holds_queue_slot) c.backend->ReleaseQueueSlot();
  if (c.state != Conn::State::kRelay) {
    ReportConnOutcome(*c.metrics,
                      {&c.info, outcome, std::string(detail), absl::Now() - c.accepted, failure});
  } else if (failure) {
    ReportConnOutcome(*c.metrics,
                      {&c.info, outcome, std::string(detail), absl::Now() - c.accepted, true});
  }
  Destroy(c.id);
}

void Engine::ReleaseLimit(Conn& c) {
  if (!c.limited) return;
  c.service->limiter->Release(c.limited_source);
  c.limited = false;
}

void Engine::Destroy(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  deadlines_.erase({c.deadline, c.id});
  // Closing an fd removes it from the epoll set; nothing else refers to it.
  conns_.erase(it);
}

void Engine::SetInterest(int fd, uint64_t key, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void Engine::ArmDeadline(Conn& c, absl::Time deadline) {
  deadlines_.erase({c.deadline, c.id});
  c.deadline = deadline;
  deadlines_.insert({deadline, c.id});
}

void Engine::ExpireDeadlines(absl::Time now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    uint64_t id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    if (c.state == Conn::State::kHandshake) {
      // Mid-handshake there are no keys to send an alert under; just close.
      Finish(c, Outcome::kHandshakeTimeout,
             absl::StrCat("no handshake within ", c.service->config->handshake_timeout_ms, " ms"),
             true);
    } else if (c.state == Conn::State::kQueued) {
      FailAfterHandshake(c, Outcome::kNoBackend,
                         absl::StrCat("no worker of backend '", c.info.backend, "' took it within ",
                                      c.backend->config().queue_timeout_ms, " ms"));
    }
  }
}

void Engine::UpdateListenerInterest() {
  // Pause accepting on a service at its handshake bound (the kernel's backlog
  // holds further clients instead of us taking work we cannot do), and on
  // every listener for a moment after EMFILE.
  const bool backoff = absl::Now() < accept_backoff_until_;
  listener_paused_.resize(rt_.listeners.size(), false);
  for (size_t i = 0; i < rt_.listeners.size(); ++i) {
    const size_t s = rt_.listeners[i].service->index;
    const bool pause = backoff || in_handshake_[s] >= handshake_limit_[s];
    if (pause == listener_paused_[i]) continue;
    listener_paused_[i] = pause;
    // EPOLLEXCLUSIVE registrations cannot be modified: remove and re-add.
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, rt_.listeners[i].fd.get(), nullptr);
    if (!pause) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLEXCLUSIVE;
      ev.data.u64 = Key(Kind::kListener, i);
      epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, rt_.listeners[i].fd.get(), &ev);
    }
  }
}

void Engine::StopWatching(Conn& c, Kind kind) {
  // A hang-up means both directions of that socket are done (the peer
  // closed, or each side shut its writing): nothing will ever be written to
  // it, and what is left to read is there without waiting. epoll reports a
  // hang-up whatever the interest, so a socket left in the set would make
  // every epoll_wait return at once until the other side is done too.
  uint32_t& events = kind == Kind::kApp ? c.app_events : c.tcp_events;
  if (events == kUnwatched) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, kind == Kind::kApp ? c.app.get() : c.tcp.get(), nullptr);
  events = kUnwatched;
}

void Engine::PumpRelay(Conn& c) {
  SSL* ssl = c.ssl.get();
  uint32_t tcp_want = 0, app_want = 0;
  bool progress = true;
  auto fail = [&](absl::string_view why) { Finish(c, Outcome::kRelayError, why, true); };
  while (progress) {
    progress = false;
    // TLS -> worker.
    if (!c.tls_eof && c.to_app_off == c.to_app.size()) {
      c.to_app.resize(kRelayChunk);
      ERR_clear_error();
      int n = SSL_read(ssl, c.to_app.data(), static_cast<int>(c.to_app.size()));
      if (c.control_over_limit) {
        LogControlRecordLimit(c.info.connection_id, *c.control_policy);
        return fail("too many control records: connection ended");
      }
      if (n > 0) {
        c.to_app.resize(n);
        c.to_app_off = 0;
        rt_.metrics.relay_bytes_from_client.fetch_add(n, std::memory_order_relaxed);
        progress = true;
      } else {
        c.to_app.clear();
        c.to_app_off = 0;
        int err = SSL_get_error(ssl, n);
        if (err == SSL_ERROR_WANT_READ) {
          tcp_want |= EPOLLIN;
        } else if (err == SSL_ERROR_WANT_WRITE) {
          tcp_want |= EPOLLOUT;
        } else if (err == SSL_ERROR_ZERO_RETURN ||
                   (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
          // close_notify, or a TCP FIN without it (truncation): either way
          // the worker sees end-of-stream.
          c.tls_eof = true;
          ERR_clear_error();
          progress = true;
        } else {
          return fail(OpenSslFailure(err));
        }
      }
    }
    if (c.to_app_off < c.to_app.size()) {
      ssize_t n =
          write(c.app.get(), c.to_app.data() + c.to_app_off, c.to_app.size() - c.to_app_off);
      if (n > 0) {
        c.to_app_off += n;
        progress = true;
      } else if (n < 0 && errno == EAGAIN) {
        app_want |= EPOLLOUT;
      } else {
        return Finish(c, Outcome::kClosed, "worker closed its end", false);
      }
    }
    if (c.tls_eof && c.to_app_off == c.to_app.size() && !c.app_write_shut) {
      shutdown(c.app.get(), SHUT_WR);
      c.app_write_shut = true;
    }
    // Worker -> TLS.
    if (!c.app_eof && c.to_tls_off == c.to_tls.size()) {
      c.to_tls.resize(kRelayChunk);
      ssize_t n = read(c.app.get(), c.to_tls.data(), c.to_tls.size());
      if (n > 0) {
        c.to_tls.resize(n);
        c.to_tls_off = 0;
        progress = true;
      } else {
        c.to_tls.clear();
        c.to_tls_off = 0;
        if (n == 0) {
          c.app_eof = true;
          progress = true;
        } else if (errno == EAGAIN) {
          app_want |= EPOLLIN;
        } else {
          c.app_eof = true;  // ECONNRESET from the worker: treat as its close
          progress = true;
        }
      }
    }
    if (c.to_tls_off < c.to_tls.size()) {
      ERR_clear_error();
      int n = SSL_write(ssl, c.to_tls.data() + c.to_tls_off,
                        static_cast<int>(c.to_tls.size() - c.to_tls_off));
      if (n > 0) {
        c.to_tls_off += n;
        rt_.metrics.relay_bytes_to_client.fetch_add(n, std::memory_order_relaxed);
        progress = true;
      } else {
        int err = SSL_get_error(ssl, n);
        if (err == SSL_ERROR_WANT_WRITE) {
          tcp_want |= EPOLLOUT;
        } else if (err == SSL_ERROR_WANT_READ) {
          tcp_want |= EPOLLIN;
        } else {
          return fail(OpenSslFailure(err));
        }
      }
    }
    if (c.app_eof && c.to_tls_off == c.to_tls.size() && !c.tls_write_shut) {
      // The worker finished writing: send close_notify, then FIN.
      ERR_clear_error();
      SSL_shutdown(ssl);
      shutdown(c.tcp.get(), SHUT_WR);
      c.tls_write_shut = true;
    }
  }
  if (c.tls_write_shut && c.app_write_shut) {
    return Finish(c, Outcome::kClosed, "", false);
  }
  if (c.tcp_events != kUnwatched && tcp_want != c.tcp_events) {
    SetInterest(c.tcp.get(), Key(Kind::kTcp, c.id), tcp_want);
    c.tcp_events = tcp_want;
  }
  if (c.app_events != kUnwatched && app_want != c.app_events) {
    SetInterest(c.app.get(), Key(Kind::kApp, c.id), app_want);
    c.app_events = app_want;
  }
}

}  // namespace tlsd
