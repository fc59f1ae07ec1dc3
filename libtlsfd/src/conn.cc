// tlsfd_conn: reading and writing plaintext on a handed-off connection.

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/errno_status.h"
#include "common/ktls/record_io.h"
#include "libtlsfd/src/control_relay.h"
#include "libtlsfd/src/internal.h"
#include "libtlsfd/src/record_policy.h"

namespace {

using tlsfd::internal::DecideRecord;
using tlsfd::internal::kMaxSkippedAlerts;
using tlsfd::internal::RecordAction;
using tlsfd::internal::RecordDecision;

sockaddr_storage ToSockaddr(const tlsd::WireAddress& a) {
  sockaddr_storage ss{};
  if (a.family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    memcpy(&sin->sin_addr, a.addr.data(), 4);
  } else if (a.family == 6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a.port);
    memcpy(&sin6->sin6_addr, a.addr.data(), 16);
  } else {
    ss.ss_family = AF_UNSPEC;
  }
  return ss;
}

const char* TlsVersionName(uint16_t version) {
  switch (version) {
    case 0x0303:
      return "TLSv1.2";
    case 0x0304:
      return "TLSv1.3";
  }
  return "unknown";
}

}  // namespace

tlsfd_conn::tlsfd_conn(tlsd::UniqueFd fd, tlsd::ConnectionInfo info)
    : fd_(std::move(fd)),
      info_(std::move(info)),
      peer_text_(info_.peer.ToString()),
      local_text_(info_.local.ToString()),
      peer_addr_(ToSockaddr(info_.peer)),
      local_addr_(ToSockaddr(info_.local)),
      sealed_state_(info_.sealed_state) {
  if (info_.has_client_cert) {
    cert_sha256_hex_ = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(info_.client_cert_sha256.data()),
                          info_.client_cert_sha256.size()));
  }
}

ssize_t tlsfd_conn::Fail(int error) {
  read_state_ = ReadState::kFailed;
  read_error_ = error;
  return error;
}

ssize_t tlsfd_conn::Read(uint8_t* buf, size_t len) {
  switch (read_state_) {
    case ReadState::kEof:
      return 0;
    case ReadState::kFailed:
      return read_error_;
    case ReadState::kOpen:
      break;
  }
  if (len == 0) {
    return 0;
  }
  if (ktls()) {
    return ReadKtls(buf, len);
  }

  // Relay: a plain AF_UNIX stream; tlsd turns the TLS peer's close_notify
  // (or its disappearance) into EOF.
  ssize_t n = ::read(fd_.get(), buf, len);
  if (n < 0) {
    int e = errno;
    if (e == EAGAIN || e == EINTR) {
      return -e;
    }
    return Fail(-e);
  }
  if (n == 0) {
    read_state_ = ReadState::kEof;
  }
  return n;
}

ssize_t tlsfd_conn::ReadKtls(uint8_t* buf, size_t len) {
  for (;;) {
    absl::StatusOr<tlsd::RecordRead> rec =
        tlsd::RecvTlsRecord(fd_.get(), absl::MakeSpan(buf, len), 0);
    if (!rec.ok()) {
      int e = tlsd::StatusToErrno(rec.status());
      if (e == EAGAIN || e == EINTR) {
        return -e;
      }
      // EBADMSG (bad record), ECONNRESET, EKEYEXPIRED (RX paused after a
      // KeyUpdate that tlsd did not answer) ...: the connection is unusable.
      tx_closed_.store(true);
      return Fail(-e);
    }
    if (rec->len == 0 && rec->record_type == tlsd::kRecordApplicationData) {
      // TCP FIN without close_notify: a truncation the application may care
      // about, visible as last_alert() != 0.
      read_state_ = ReadState::kEof;
      return 0;
    }
    if (rec->record_type == tlsd::kRecordApplicationData) {
      skipped_alerts_ = 0;
      return static_cast<ssize_t>(rec->len);
    }

    absl::Span<const uint8_t> payload(buf, rec->len);
    std::array<uint8_t, 2> alert{};
    if (rec->record_type == tlsd::kRecordAlert && rec->len < alert.size()) {
      // A one-byte buffer got the first byte of an alert; the rest of that
      // record is already decrypted and queued, so this does not wait.
      alert[0] = buf[0];
      absl::StatusOr<tlsd::RecordRead> rest =
          tlsd::RecvTlsRecord(fd_.get(), absl::MakeSpan(alert.data() + 1, 1), MSG_DONTWAIT);
      if (!rest.ok() || rest->len != 1 || rest->record_type != tlsd::kRecordAlert) {
        tx_closed_.store(true);
        return Fail(-EPROTO);
      }
      payload = alert;
    }

    RecordDecision d = DecideRecord(rec->record_type, payload, info_.tls_version);
    if (d.alert >= 0) {
      last_alert_.store(d.alert, std::memory_order_relaxed);
    }
    switch (d.action) {
      case RecordAction::kData:
        // DecideRecord only says kData for application data, handled above.
        return Fail(-EPROTO);
      case RecordAction::kEndOfStream:
        read_state_ = ReadState::kEof;
        return 0;
      case RecordAction::kSkip:
        if (++skipped_alerts_ > kMaxSkippedAlerts) {
          if (!tx_closed_.exchange(true)) {
            const uint8_t reply[2] = {tlsd::kAlertLevelFatal, tlsd::kAlertUnexpectedMessage};
            (void)tlsd::SendTlsRecord(fd_.get(), tlsd::kRecordAlert, reply);
          }
          return Fail(-EPROTO);
        }
        continue;
      case RecordAction::kFatalAlert:
        // RFC 8446 6.2: after a fatal alert neither side sends anything more.
        tx_closed_.store(true);
        return Fail(d.error);
      case RecordAction::kHandshake: {
        ssize_t r = OnHandshakeRecord(buf, rec->len, rec->end_of_record);
        if (r == 1) continue;
        return r;
      }
      case RecordAction::kProtocolError:
        if (d.reply_alert >= 0 && !tx_closed_.exchange(true)) {
          const uint8_t reply[2] = {tlsd::kAlertLevelFatal, static_cast<uint8_t>(d.reply_alert)};
          // Best effort: the connection is over whether or not this goes out.
          (void)tlsd::SendTlsRecord(fd_.get(), tlsd::kRecordAlert, reply);
        }
        tx_closed_.store(true);
        return Fail(d.error);
    }
    return Fail(-EPROTO);
  }
}

ssize_t tlsfd_conn::OnHandshakeRecord(uint8_t* buf, size_t n, bool end_of_record) {
  // The whole record goes to tlsd. When it did not fit `buf`, the rest is
  // already decrypted and queued in front of anything else; the kernel marks
  // the record's last piece with MSG_EOR.
  std::string record(reinterpret_cast<const char*>(buf), n);
  while (!end_of_record && record.size() < tlsd::kMaxControlPayloadLen) {
    std::string more(tlsd::kMaxControlPayloadLen - record.size(), '\0');
    absl::StatusOr<tlsd::RecordRead> rest = tlsd::RecvTlsRecord(
        fd_.get(), absl::MakeSpan(reinterpret_cast<uint8_t*>(more.data()), more.size()),
        MSG_DONTWAIT);
    if (!rest.ok() || rest->len == 0 || rest->record_type != tlsd::kRecordHandshake) break;
    record.append(more.data(), rest->len);
    end_of_record = rest->end_of_record;
  }
  auto bytes = [&] {
    return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(record.data()), record.size());
  };
  if (control_socket_.empty() || sealed_state_.empty()) {
    tx_closed_.store(true);
    tlsfd::internal::SetLastError(
        "a TLS handshake message arrived after the handshake and this connection has no "
        "control socket or sealed state to hand it to tlsd");
    return Fail(-EPROTO);
  }
  absl::StatusOr<tlsd::ControlVerdict> verdict;
  {
    std::lock_guard<std::mutex> lock(tx_mu_);
    verdict = tlsfd::internal::AskTlsd(control_socket_, fd_.get(), tlsd::kRecordHandshake, bytes(),
                                       sealed_state_);
  }
  if (!verdict.ok()) {
    // Without tlsd's answer the keys cannot follow the peer's: the
    // connection cannot go on.
    tlsfd::internal::SetLastError(verdict.status().message());
    tx_closed_.store(true);
    return Fail(-EPROTO);
  }
  if (verdict->has_alert) {
    last_alert_.store(verdict->alert, std::memory_order_relaxed);
  }
  switch (verdict->action) {
    case tlsd::ControlAction::kContinue:
      if (!verdict->sealed_state.empty()) sealed_state_ = std::move(verdict->sealed_state);
      return 1;
    case tlsd::ControlAction::kEndOfStream:
      // tlsd ended the connection cleanly (close_notify sent): e.g. a
      // KeyUpdate on a kernel that cannot rekey.
      tlsfd::internal::SetLastError(verdict->message);
      tx_closed_.store(true);
      read_state_ = ReadState::kEof;
      return 0;
    case tlsd::ControlAction::kFailed:
      tlsfd::internal::SetLastError(verdict->message);
      tx_closed_.store(true);
      return Fail(-EPROTO);
  }
  return Fail(-EPROTO);
}

ssize_t tlsfd_conn::Write(const uint8_t* buf, size_t len) {
  if (tx_closed_.load()) {
    return -EPIPE;
  }
  if (ktls()) {
    std::lock_guard<std::mutex> lock(tx_mu_);
    if (tx_closed_.load()) return -EPIPE;
    ssize_t n = ::send(fd_.get(), buf, len, MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
  }
  ssize_t n = ::send(fd_.get(), buf, len, MSG_NOSIGNAL);
  if (n < 0) {
    return -errno;
  }
  return n;
}

int tlsfd_conn::Shutdown() {
  if (tx_closed_.exchange(true)) {
    return 0;
  }
  if (ktls()) {
    const uint8_t close_notify[2] = {tlsd::kAlertLevelWarning, tlsd::kAlertCloseNotify};
    std::lock_guard<std::mutex> lock(tx_mu_);
    absl::Status sent = tlsd::SendTlsRecord(fd_.get(), tlsd::kRecordAlert, close_notify);
    if (!sent.ok()) {
      int e = tlsd::StatusToErrno(sent);
      // Nothing went out: let a later call try again.
      if (e == EAGAIN || e == EINTR) {
        tx_closed_.store(false);
      }
      return -e;
    }
  }
  // kTLS: FIN after close_notify. Relay: tlsd sees EOF and sends close_notify.
  if (::shutdown(fd_.get(), SHUT_WR) != 0 && errno != ENOTCONN) {
    return -errno;
  }
  return 0;
}

// close() on a TCP socket with unread input sends a reset, and a reset
// throws away whatever is still queued to go out: the app's last writes and
// the alert that ended the connection (tlsd's answer to a KeyUpdate storm,
// say, which is exactly when the peer's records are still arriving). The
// unread input cannot always be read off first (on a kernel that rekeys, RX
// stops at a KeyUpdate tlsd refused), so instead: push out what Nagle holds
// back and give the peer a short while to acknowledge it; the reset that
// follows then costs nothing already written. Only kTLS sockets: a relayed
// connection is a socketpair, and tlsd finishes it.
void tlsfd_conn::FlushBeforeClose() {
  if (!ktls()) return;
  int unread = 0;
  if (read_state_ != ReadState::kFailed &&
      (ioctl(fd_.get(), SIOCINQ, &unread) != 0 || unread == 0)) {
    return;  // close() sends FIN, and the kernel delivers the rest on its own
  }
  const int one = 1;
  (void)setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const absl::Time until = absl::Now() + kCloseLinger;
  int queued = 0;
  while (ioctl(fd_.get(), SIOCOUTQ, &queued) == 0 && queued > 0 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
}

void tlsfd_conn::FillInfo(tlsfd_info* out) const {
  out->connection_id = info_.connection_id;
  out->service = info_.service.c_str();
  out->backend = info_.backend.c_str();
  out->sni = info_.sni.c_str();
  out->alpn = info_.alpn.c_str();
  out->tls_version = info_.tls_version;
  out->cipher_suite = info_.cipher_suite;
  out->tls_version_name = TlsVersionName(info_.tls_version);
  out->cipher_name = info_.cipher_name.c_str();
  out->tx_path = static_cast<int>(info_.tx_path);
  out->rx_path = static_cast<int>(info_.rx_path);
  out->tx_path_name = tlsd::DataPathName(info_.tx_path);
  out->rx_path_name = tlsd::DataPathName(info_.rx_path);
  out->path_reason = info_.path_reason.c_str();
  out->peer = peer_text_.c_str();
  out->local = local_text_.c_str();
  out->peer_addr = peer_addr_;
  out->local_addr = local_addr_;
  out->has_client_cert = info_.has_client_cert ? 1 : 0;
  out->client_cert_subject = info_.client_cert_subject.c_str();
  memcpy(out->client_cert_sha256, info_.client_cert_sha256.data(), sizeof(out->client_cert_sha256));
  out->client_cert_sha256_hex = cert_sha256_hex_.c_str();
  out->resumed = info_.resumed ? 1 : 0;
  out->handshake_us = info_.handshake_us;
}
