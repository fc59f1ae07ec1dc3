#include "tlsd/handshaker/connector.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "tlsd/control/control_records.h"
#include "tlsd/handshaker/conn_info.h"
#include "tlsd/handshaker/conn_log.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/tls13_tickets.h"

namespace tlsd {
namespace {

// A request's failure: the errno the app gets and why, in words.
struct Failure {
  int code;
  std::string why;
};

// WaitFor polls `fd` for `events` until `deadline`; false on timeout.
bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let the next call report it
  }
}

// ConnectTcp resolves `host` and connects to the first address that answers
// before `deadline`. The socket is non-blocking.
absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, absl::Time deadline,
                                    Failure* failure) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    *failure = {EHOSTUNREACH, absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc))};
    return absl::UnavailableError(failure->why);
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> free_res(res, &freeaddrinfo);
  *failure = {EHOSTUNREACH, absl::StrCat(host, " has no address")};
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) {
      *failure = {errno, absl::StrCat("socket: ", strerror(errno))};
      continue;
    }
    // As on accepted sockets (Engine::StartConnection): no Nagle stall
    // behind the handshake's last flight.
    const int one = 1;
    (void)setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int err = 0;
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        if (!WaitFor(fd.get(), POLLOUT, deadline)) {
          *failure = {ETIMEDOUT, absl::StrCat("connect to ", host, " port ", port, ": timed out")};
          return absl::DeadlineExceededError(failure->why);
        }
        socklen_t len = sizeof(err);
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    if (err == 0) return fd;
    *failure = {err, absl::StrCat("connect to ", host, " port ", port, ": ", strerror(err))};
  }
  return absl::UnavailableError(failure->why);
}

// Handshake drives SSL_connect on the non-blocking socket until `deadline`.
absl::Status Handshake(SSL* ssl, int fd, absl::Time deadline, Failure* failure) {
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(ssl);
    if (r == 1) return absl::OkStatus();
    const int err = SSL_get_error(ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!WaitFor(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        *failure = {ETIMEDOUT, "TLS handshake timed out"};
        return absl::DeadlineExceededError(failure->why);
      }
      continue;
    }
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      // Unknown CA, name mismatch, expired...: the app hears which.
      ERR_clear_error();
      *failure = {EKEYREJECTED, absl::StrCat("server certificate verification failed: ",
                                             X509_verify_cert_error_string(verify))};
    } else {
      *failure = {EPROTO, absl::StrCat("TLS handshake failed: ", OpenSslFailure(err))};
    }
    return absl::PermissionDeniedError(failure->why);
  }
}

}  // namespace

Connector::~Connector() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return in_flight_ == 0; });
}

absl::Status Connector::Start(const ClientTls& profile, ConnectRequest request, Reply reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ >= kMaxInFlight) {
      return absl::ResourceExhaustedError(
          absl::StrCat("more than ", kMaxInFlight, " outgoing connections are being set up"));
    }
    ++in_flight_;
  }
  std::thread([this, &profile, request = std::move(request), reply = std::move(reply)] {
    Run(profile, request, reply);
    std::lock_guard<std::mutex> lock(mu_);
    if (--in_flight_ == 0) idle_.notify_all();
  }).detach();
  return absl::OkStatus();
}

void Connector::Run(const ClientTls& profile, const ConnectRequest& request, const Reply& reply) {
  const ClientProfileConfig& config = profile.config();
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Milliseconds(config.connect_timeout_ms);
  ConnectionInfo info;
  info.connection_id = rt_.next_connection_id.fetch_add(1);
  // Outgoing connections name their client profile where incoming ones name
  // their service and backend.
  info.service = config.name;
  info.backend = config.name;
  info.sni = request.sni.empty() ? request.host : request.sni;

  auto fail = [&](const Failure& f, Outcome outcome) {
    ReportConnOutcome(profile.metrics(),
                      {&info, outcome, absl::StrCat(request.host, ":", request.port, ": ", f.why),
                       absl::Now() - start, true});
    ErrorMsg err{static_cast<uint32_t>(f.code > 0 && f.code < 4096 ? f.code : EIO), f.why};
    (void)reply(MsgType::kError, err.Encode(), -1);
  };

  Failure failure{EIO, ""};
  absl::StatusOr<UniqueFd> tcp = ConnectTcp(request.host, request.port, deadline, &failure);
  if (!tcp.ok()) return fail(failure, Outcome::kConnectFailed);
  info.peer = PeerAddress(tcp->get());
  info.local = LocalAddress(tcp->get());
  absl::StatusOr<SslPtr> ssl =
      profile.NewSsl(tcp->get(), request.host, request.port, request.sni, request.alpn);
  if (!ssl.ok()) return fail({EIO, std::string(ssl.status().message())}, Outcome::kHandshakeFailed);
  if (!Handshake(ssl->get(), tcp->get(), deadline, &failure).ok()) {
    return fail(failure, Outcome::kHandshakeFailed);
  }
  FillNegotiated(ssl->get(), info);
  info.handshake_us = static_cast<uint32_t>(absl::ToInt64Microseconds(absl::Now() - start));
  profile.metrics().Negotiated(info, absl::Now() - start);

  KtlsOptions ktls_options;
  if (config.session_resumption && BIO_get_ktls_send(SSL_get_wbio(ssl->get()))) {
    // TLS 1.3 tickets come after the handshake: let them in before the
    // kernel takes RX too (tls13_tickets.h), so the next request can resume.
    // (Relayed, OpenSSL reads them itself.)
    const absl::Time until = std::min(deadline, absl::Now() + TicketWait(tcp->get()));
    absl::StatusOr<uint64_t> taken = CollectTls13Tickets(ssl->get(), tcp->get(), until);
    if (!taken.ok()) {
      return fail({EPROTO, absl::StrCat("after the handshake: ", taken.status().message())},
                  Outcome::kHandshakeFailed);
    }
    ktls_options.tls13_rx_seq = *taken;
  }
  absl::StatusOr<KtlsOutcome> ktls =
      CompleteKtls(ssl->get(), tcp->get(), /*is_server=*/false, ktls_options);
  KtlsOutcome outcome;
  if (ktls.ok()) {
    outcome = *ktls;
  } else {
    outcome.reason = std::string(ktls.status().message());
  }
  info.tx_path = PathFor(outcome.tx);
  info.rx_path = PathFor(outcome.rx);
  info.path_reason = outcome.reason.substr(0, 1024);
  if (outcome.tx != KtlsMode::kNone && outcome.rx != KtlsMode::kNone) {
    const Tls13TrafficSecrets* secrets = CapturedTrafficSecrets(ssl->get());
    const SecretBytes none;
    // A client receives what the server sends: RX is the server's secret.
    absl::StatusOr<std::string> sealed = SealForHandoff(
        *rt_.sealer, tcp->get(), /*is_server=*/false, info.connection_id, info.tls_version,
        info.cipher_suite, secrets != nullptr ? secrets->server : none,
        secrets != nullptr ? secrets->client : none);
    ForgetTrafficSecrets(ssl->get());
    if (!sealed.ok()) {
      return fail({EIO, absl::StrCat("sealing state: ", sealed.status().message())},
                  Outcome::kRefused);
    }
    info.sealed_state = std::move(*sealed);
    if (absl::Status s = reply(MsgType::kConnectReply, info.Encode(), tcp->get()); !s.ok()) {
      ReportConnOutcome(
          profile.metrics(),
          {&info, Outcome::kClosed, absl::StrCat("app gone before the reply: ", s.message()),
           absl::Now() - start, true});
      return;
    }
    profile.metrics().DataPaths(info.tx_path, info.rx_path);
    ReportConnOutcome(profile.metrics(),
                      {&info, Outcome::kHandedOff, "", absl::Now() - start, false});
    // The connection lives on in the app: tell OpenSSL it ended cleanly, or
    // SSL_free would mark its session not resumable.
    SSL_set_shutdown(ssl->get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    return;  // the app holds the socket; ours closes here
  }
  if (config.ktls == KtlsPolicy::kRequire) {
    return fail({EPROTONOSUPPORT, absl::StrCat("ktls = require: ", outcome.reason)},
                Outcome::kRefused);
  }
  adopt_relay_(Engine::OutgoingRelay{*std::move(ssl), *std::move(tcp), info, start,
                                     &profile.metrics(), [reply](const ConnectionInfo& i, int fd) {
                                       return reply(MsgType::kConnectReply, i.Encode(), fd);
                                     }});
}

}  // namespace tlsd
