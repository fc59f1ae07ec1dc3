#include "tlsd/control/control_records.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/ktls/record_io.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/tls13_kdf.h"

namespace tlsd {
namespace {

// Handshake message types that can follow a finished handshake.
constexpr uint8_t kHelloRequest = 0;      // TLS 1.2, server -> client
constexpr uint8_t kClientHello = 1;       // TLS 1.2 renegotiation, client -> server
constexpr uint8_t kNewSessionTicket = 4;  // TLS 1.3, server -> client
constexpr uint8_t kKeyUpdate = 24;        // TLS 1.3, either way

ControlVerdict Verdict(ControlAction action, std::string message) {
  ControlVerdict v;
  v.action = action;
  v.message = std::move(message);
  return v;
}

// SendAlert sends one alert on the kTLS TX direction; the kernel encrypts it.
void SendAlert(int fd, uint8_t level, uint8_t description) {
  const uint8_t alert[2] = {level, description};
  absl::Status s = SendTlsRecord(fd, kRecordAlert, alert);
  if (!s.ok()) {
    TLSD_LOG(Debug) << "sending alert " << AlertName(description) << ": " << s.message();
  }
}

ControlVerdict Fail(int fd, uint8_t description, std::string why) {
  SendAlert(fd, kAlertLevelFatal, description);
  ControlVerdict v = Verdict(ControlAction::kFailed, std::move(why));
  v.has_alert = true;
  v.alert = description;
  return v;
}

absl::Status CheckKtlsTcpSocket(int fd) {
  int type = 0, protocol = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("control record fd: not a socket (", strerror(errno), ")"));
  }
  len = sizeof(protocol);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0 || type != SOCK_STREAM ||
      protocol != IPPROTO_TCP) {
    return absl::InvalidArgumentError("control record fd: not a TCP socket");
  }
  return absl::OkStatus();
}

// Rekey installs the next traffic secret of one direction (RFC 8446 7.2).
absl::Status Rekey(int fd, KtlsCipher cipher, Direction dir, SecretBytes& secret) {
  TLSD_ASSIGN_OR_RETURN(SecretBytes next, NextTrafficSecret(cipher, secret.span()));
  TLSD_ASSIGN_OR_RETURN(TrafficKeys keys, DeriveTrafficKeys(cipher, next.span()));
  TLSD_ASSIGN_OR_RETURN(CryptoInfo info, BuildCryptoInfo(TlsVersion::kTls13, cipher,
                                                         keys.key.span(), keys.iv.span(), 0));
  TLSD_RETURN_IF_ERROR(InstallKtlsDirection(fd, dir, info));
  secret = std::move(next);
  return absl::OkStatus();
}

ControlVerdict OnAlert(int fd, const ConnState& state, absl::string_view payload) {
  if (payload.size() != 2) {
    return Fail(fd, kAlertDecodeError, "alert record of wrong length");
  }
  const uint8_t level = static_cast<uint8_t>(payload[0]);
  const uint8_t description = static_cast<uint8_t>(payload[1]);
  if (description == kAlertCloseNotify) {
    // Answer with our own close_notify so the peer sees a clean close.
    SendAlert(fd, kAlertLevelWarning, kAlertCloseNotify);
    ControlVerdict v = Verdict(ControlAction::kEndOfStream, "peer sent close_notify");
    v.has_alert = true;
    v.alert = kAlertCloseNotify;
    return v;
  }
  if (description == kAlertUserCanceled && level == kAlertLevelWarning) {
    ControlVerdict v = Verdict(ControlAction::kContinue, "peer sent user_canceled");
    v.has_alert = true;
    v.alert = kAlertUserCanceled;
    return v;
  }
  TLSD_LOG(Notice) << "conn=" << state.connection_id << " peer sent "
                   << (level == kAlertLevelFatal ? "fatal" : "warning") << " alert "
                   << AlertName(description);
  ControlVerdict v =
      Verdict(ControlAction::kFailed, absl::StrCat("peer sent alert ", AlertName(description)));
  v.has_alert = true;
  v.alert = description;
  return v;
}

ControlVerdict OnHandshake(int fd, ConnState& state, absl::string_view payload) {
  const bool tls13 = state.tls_version == 0x0304;
  absl::StatusOr<KtlsCipher> cipher = KtlsCipherFromSuiteId(state.cipher_suite);
  std::string done;
  bool sent_no_renegotiation = false;
  // RFC 8446 5.1 (and RFC 5246 6.2.1): no zero-length handshake fragments.
  if (payload.empty()) return Fail(fd, kAlertUnexpectedMessage, "empty handshake record");
  // One record may carry several handshake messages.
  while (!payload.empty()) {
    if (payload.size() < 4) return Fail(fd, kAlertDecodeError, "truncated handshake message");
    const uint8_t type = static_cast<uint8_t>(payload[0]);
    const size_t len = (static_cast<uint8_t>(payload[1]) << 16) |
                       (static_cast<uint8_t>(payload[2]) << 8) | static_cast<uint8_t>(payload[3]);
    if (payload.size() < 4 + len) {
      // A message split across records: tlsd does not reassemble (no
      // message it accepts after the handshake is that large).
      return Fail(fd, kAlertUnexpectedMessage, "handshake message split across records");
    }
    const absl::string_view body = payload.substr(4, len);
    payload.remove_prefix(4 + len);

    if (tls13 && type == kKeyUpdate) {
      if (len != 1 || !cipher.ok()) {
        return Fail(fd, kAlertDecodeError, "malformed KeyUpdate");
      }
      if (static_cast<uint8_t>(body[0]) > 1) {  // RFC 8446 4.6.3
        return Fail(fd, kAlertIllegalParameter, "KeyUpdate with an illegal request_update value");
      }
      if (!payload.empty()) {  // RFC 8446 5.1: a key change must end its record
        return Fail(fd, kAlertUnexpectedMessage, "KeyUpdate not at the end of its record");
      }
      const bool update_requested = body[0] == 1;
      absl::Status rx = Rekey(fd, *cipher, Direction::kRx, state.rx_secret);
      if (!rx.ok()) {
        if (absl::IsFailedPrecondition(rx)) {
          // Linux before 6.14 cannot replace TLS_RX: the peer's next records
          // use keys we cannot install. End cleanly rather than hang.
          TLSD_LOG(Notice) << "conn=" << state.connection_id
                           << " TLS 1.3 KeyUpdate but this kernel cannot rekey kTLS (needs Linux "
                              "6.14+): closing the connection";
          SendAlert(fd, kAlertLevelWarning, kAlertCloseNotify);
          ControlVerdict v = Verdict(ControlAction::kEndOfStream,
                                     "peer sent KeyUpdate; this kernel cannot rekey kTLS (needs "
                                     "Linux 6.14+): connection closed with close_notify");
          v.has_alert = true;
          v.alert = kAlertCloseNotify;
          return v;
        }
        return Fail(fd, kAlertInternalError, absl::StrCat("rekey rx: ", rx.message()));
      }
      ++state.rx_generation;
      if (update_requested) {
        // Answer under the old key, then switch TX (RFC 8446 4.6.3).
        const uint8_t key_update[5] = {kKeyUpdate, 0, 0, 1, 0};
        absl::Status sent = SendTlsRecord(fd, kRecordHandshake, key_update);
        if (!sent.ok()) return Fail(fd, kAlertInternalError, "sending KeyUpdate failed");
        absl::Status tx = Rekey(fd, *cipher, Direction::kTx, state.tx_secret);
        if (!tx.ok())
          return Fail(fd, kAlertInternalError, absl::StrCat("rekey tx: ", tx.message()));
        ++state.tx_generation;
      }
      absl::StrAppend(&done, done.empty() ? "" : "; ", "KeyUpdate applied (rx generation ",
                      state.rx_generation, ", tx generation ", state.tx_generation, ")");
      continue;
    }
    if (!tls13 && ((state.is_server && type == kClientHello) ||
                   (!state.is_server && type == kHelloRequest))) {
      // RFC 5246 7.2.2: decline with a warning; the peer may go on or close.
      SendAlert(fd, kAlertLevelWarning, kAlertNoRenegotiation);
      sent_no_renegotiation = true;
      absl::StrAppend(&done, done.empty() ? "" : "; ", "renegotiation refused (no_renegotiation)");
      continue;
    }
    if (tls13 && !state.is_server && type == kNewSessionTicket) {
      // Client connections are tlsd's outgoing CONNECTs; tickets are kept
      // by the connector when it is configured to resume.
      absl::StrAppend(&done, done.empty() ? "" : "; ", "NewSessionTicket ignored");
      continue;
    }
    return Fail(fd, kAlertUnexpectedMessage,
                absl::StrCat("unexpected handshake message type ", type, " after the handshake"));
  }
  ControlVerdict v = Verdict(ControlAction::kContinue, done);
  if (sent_no_renegotiation) {
    v.has_alert = true;
    v.alert = kAlertNoRenegotiation;
  }
  return v;
}

}  // namespace

absl::StatusOr<std::string> SealForHandoff(const Sealer& sealer, int fd, bool is_server,
                                           uint64_t connection_id, uint16_t tls_version,
                                           uint16_t cipher_suite, const SecretBytes& rx_secret,
                                           const SecretBytes& tx_secret) {
  ConnState state;
  state.is_server = is_server;
  state.tls_version = tls_version;
  state.cipher_suite = cipher_suite;
  state.connection_id = connection_id;
  state.rx_secret = SecretBytes(rx_secret.span());
  state.tx_secret = SecretBytes(tx_secret.span());
  TLSD_ASSIGN_OR_RETURN(state.rx_key_hash, KernelKeyHash(fd, /*tx=*/false));
  TLSD_ASSIGN_OR_RETURN(state.tx_key_hash, KernelKeyHash(fd, /*tx=*/true));
  WireAddress local, peer;
  TLSD_RETURN_IF_ERROR(SocketAddresses(fd, &local, &peer));
  return sealer.Seal(state, local, peer);
}

uint64_t NowMs() { return static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())); }

bool ControlRecordWindow::Admit(const ControlRecordPolicy& policy, uint64_t now_ms) {
  if (now_ms - start_ms > static_cast<uint64_t>(absl::ToInt64Milliseconds(policy.window))) {
    start_ms = now_ms;
    records = 0;
  }
  return ++records <= policy.max_records_per_window;
}

void LogControlRecordLimit(uint64_t connection_id, const ControlRecordPolicy& policy) {
  TLSD_LOG(Warning) << "conn=" << connection_id << " more than " << policy.max_records_per_window
                    << " control records in " << absl::FormatDuration(policy.window)
                    << ": ending the connection";
}

absl::StatusOr<ControlVerdict> AnswerControlRecord(const Sealer& sealer,
                                                   const ControlRecordPolicy& policy,
                                                   const ControlRecord& record, int fd) {
  TLSD_RETURN_IF_ERROR(CheckKtlsTcpSocket(fd));
  WireAddress local, peer;
  if (absl::Status s = SocketAddresses(fd, &local, &peer); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("control record fd: not a connected TCP socket (", s.message(), ")"));
  }
  absl::StatusOr<ConnState> opened = sealer.Open(record.sealed_state, local, peer);
  if (!opened.ok()) return absl::PermissionDeniedError(opened.status().message());
  ConnState state = std::move(*opened);
  // The blob must name the keys the kernel holds on this very socket now:
  // this refuses another connection's state (same addresses are impossible
  // for two live TCP connections, but keys are the decisive check) and any
  // older blob of this connection (replay after a rekey).
  absl::StatusOr<KeyHash> rx = KernelKeyHash(fd, /*tx=*/false);
  absl::StatusOr<KeyHash> tx = KernelKeyHash(fd, /*tx=*/true);
  if (!rx.ok() || !tx.ok()) {
    return absl::InvalidArgumentError("control record fd: not a kTLS socket in both directions");
  }
  if (*rx != state.rx_key_hash || *tx != state.tx_key_hash) {
    return absl::PermissionDeniedError(
        "sealed state does not match the socket's current keys (another connection's, or an "
        "older state)");
  }

  ControlRecordWindow window{state.window_records, state.window_start_ms};
  const bool admitted = window.Admit(policy, NowMs());
  state.window_records = window.records;
  state.window_start_ms = window.start_ms;
  if (!admitted) {
    LogControlRecordLimit(state.connection_id, policy);
    return Fail(fd, kAlertUnexpectedMessage, "too many control records: connection ended");
  }

  ControlVerdict verdict;
  switch (record.record_type) {
    case kRecordAlert:
      verdict = OnAlert(fd, state, record.payload);
      break;
    case kRecordHandshake:
      verdict = OnHandshake(fd, state, record.payload);
      break;
    default:
      verdict = Fail(fd, kAlertUnexpectedMessage,
                     absl::StrCat("unexpected ", RecordTypeName(record.record_type),
                                  " record after the handshake"));
      break;
  }
  if (verdict.action == ControlAction::kContinue) {
    // New keys (after a rekey) and the rate window travel in the new blob.
    TLSD_ASSIGN_OR_RETURN(state.rx_key_hash, KernelKeyHash(fd, /*tx=*/false));
    TLSD_ASSIGN_OR_RETURN(state.tx_key_hash, KernelKeyHash(fd, /*tx=*/true));
    verdict.sealed_state = sealer.Seal(state, local, peer);
  }
  return verdict;
}

}  // namespace tlsd
