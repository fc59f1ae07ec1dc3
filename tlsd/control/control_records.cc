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

ControlStep FailStep(uint8_t alert, std::string why) {
  ControlStep step;
  step.kind = ControlStep::Kind::kFail;
  step.alert = alert;
  step.message = std::move(why);
  return step;
}

ControlStep Step(ControlStep::Kind kind) {
  ControlStep step;
  step.kind = kind;
  return step;
}

ControlStep ParseAlert(absl::string_view payload) {
  if (payload.size() != 2) return FailStep(kAlertDecodeError, "alert record of wrong length");
  const uint8_t level = static_cast<uint8_t>(payload[0]);
  const uint8_t description = static_cast<uint8_t>(payload[1]);
  if (description == kAlertCloseNotify) return Step(ControlStep::Kind::kCloseNotify);
  if (description == kAlertUserCanceled && level == kAlertLevelWarning) {
    return Step(ControlStep::Kind::kUserCanceled);
  }
  ControlStep step = Step(ControlStep::Kind::kPeerAlert);
  step.level = level;
  step.alert = description;
  return step;
}

void ParseHandshake(absl::string_view payload, const ConnState& state,
                    std::vector<ControlStep>& steps) {
  const bool tls13 = state.tls_version == 0x0304;
  const bool cipher_known = KtlsCipherFromSuiteId(state.cipher_suite).ok();
  // RFC 8446 5.1 (and RFC 5246 6.2.1): no zero-length handshake fragments.
  if (payload.empty()) {
    steps.push_back(FailStep(kAlertUnexpectedMessage, "empty handshake record"));
    return;
  }
  // One record may carry several handshake messages.
  while (!payload.empty()) {
    if (payload.size() < 4) {
      steps.push_back(FailStep(kAlertDecodeError, "truncated handshake message"));
      return;
    }
    const uint8_t type = static_cast<uint8_t>(payload[0]);
    const size_t len = (static_cast<uint8_t>(payload[1]) << 16) |
                       (static_cast<uint8_t>(payload[2]) << 8) | static_cast<uint8_t>(payload[3]);
    if (payload.size() < 4 + len) {
      // A message split across records: tlsd does not reassemble (no
      // message it accepts after the handshake is that large).
      steps.push_back(FailStep(kAlertUnexpectedMessage, "handshake message split across records"));
      return;
    }
    const absl::string_view body = payload.substr(4, len);
    payload.remove_prefix(4 + len);

    if (tls13 && type == kKeyUpdate) {
      if (len != 1 || !cipher_known) {
        steps.push_back(FailStep(kAlertDecodeError, "malformed KeyUpdate"));
      } else if (static_cast<uint8_t>(body[0]) > 1) {  // RFC 8446 4.6.3
        steps.push_back(
            FailStep(kAlertIllegalParameter, "KeyUpdate with an illegal request_update value"));
      } else if (!payload.empty()) {  // RFC 8446 5.1: a key change must end its record
        steps.push_back(
            FailStep(kAlertUnexpectedMessage, "KeyUpdate not at the end of its record"));
      } else {
        ControlStep step = Step(ControlStep::Kind::kKeyUpdate);
        step.update_requested = body[0] == 1;
        steps.push_back(std::move(step));
      }
      return;
    }
    if (!tls13 && ((state.is_server && type == kClientHello) ||
                   (!state.is_server && type == kHelloRequest))) {
      steps.push_back(Step(ControlStep::Kind::kRefuseRenegotiation));
      continue;
    }
    if (tls13 && !state.is_server && type == kNewSessionTicket) {
      steps.push_back(Step(ControlStep::Kind::kIgnoreTicket));
      continue;
    }
    steps.push_back(
        FailStep(kAlertUnexpectedMessage,
                 absl::StrCat("unexpected handshake message type ", type, " after the handshake")));
    return;
  }
}

// ApplySteps does what ParseControlRecord decided, on the kTLS socket `fd`.
ControlVerdict ApplySteps(int fd, ConnState& state, const std::vector<ControlStep>& steps) {
  std::string done;
  bool sent_no_renegotiation = false;
  for (const ControlStep& step : steps) {
    switch (step.kind) {
      case ControlStep::Kind::kCloseNotify: {
        // Answer with our own close_notify so the peer sees a clean close.
        SendAlert(fd, kAlertLevelWarning, kAlertCloseNotify);
        ControlVerdict v = Verdict(ControlAction::kEndOfStream, "peer sent close_notify");
        v.has_alert = true;
        v.alert = kAlertCloseNotify;
        return v;
      }
      case ControlStep::Kind::kUserCanceled: {
        ControlVerdict v = Verdict(ControlAction::kContinue, "peer sent user_canceled");
        v.has_alert = true;
        v.alert = kAlertUserCanceled;
        return v;
      }
      case ControlStep::Kind::kPeerAlert: {
        TLSD_LOG(Notice) << "conn=" << state.connection_id << " peer sent "
                         << (step.level == kAlertLevelFatal ? "fatal" : "warning") << " alert "
                         << AlertName(step.alert);
        ControlVerdict v = Verdict(ControlAction::kFailed,
                                   absl::StrCat("peer sent alert ", AlertName(step.alert)));
        v.has_alert = true;
        v.alert = step.alert;
        return v;
      }
      case ControlStep::Kind::kFail:
        return Fail(fd, step.alert, step.message);
      case ControlStep::Kind::kKeyUpdate: {
        // ParseControlRecord checked the cipher.
        const KtlsCipher cipher = *KtlsCipherFromSuiteId(state.cipher_suite);
        absl::Status rx = Rekey(fd, cipher, Direction::kRx, state.rx_secret);
        if (!rx.ok()) {
          if (absl::IsFailedPrecondition(rx)) {
            // Linux before 6.14 cannot replace TLS_RX: the peer's next records
            // use keys we cannot install. End cleanly rather than hang.
            TLSD_LOG(Notice) << "conn=" << state.connection_id
                             << " TLS 1.3 KeyUpdate but this kernel cannot rekey kTLS (needs "
                                "Linux 6.14+): closing the connection";
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
        if (step.update_requested) {
          // Answer under the old key, then switch TX (RFC 8446 4.6.3).
          const uint8_t key_update[5] = {kKeyUpdate, 0, 0, 1, 0};
          absl::Status sent = SendTlsRecord(fd, kRecordHandshake, key_update);
          if (!sent.ok()) return Fail(fd, kAlertInternalError, "sending KeyUpdate failed");
          absl::Status tx = Rekey(fd, cipher, Direction::kTx, state.tx_secret);
          if (!tx.ok())
            return Fail(fd, kAlertInternalError, absl::StrCat("rekey tx: ", tx.message()));
          ++state.tx_generation;
        }
        absl::StrAppend(&done, done.empty() ? "" : "; ", "KeyUpdate applied (rx generation ",
                        state.rx_generation, ", tx generation ", state.tx_generation, ")");
        break;
      }
      case ControlStep::Kind::kRefuseRenegotiation:
        // RFC 5246 7.2.2: decline with a warning; the peer may go on or close.
        SendAlert(fd, kAlertLevelWarning, kAlertNoRenegotiation);
        sent_no_renegotiation = true;
        absl::StrAppend(&done, done.empty() ? "" : "; ",
                        "renegotiation refused (no_renegotiation)");
        break;
      case ControlStep::Kind::kIgnoreTicket:
        // Client connections are tlsd's outgoing CONNECTs; tickets are kept
        // by the connector when it is configured to resume.
        absl::StrAppend(&done, done.empty() ? "" : "; ", "NewSessionTicket ignored");
        break;
    }
  }
  ControlVerdict v = Verdict(ControlAction::kContinue, done);
  if (sent_no_renegotiation) {
    v.has_alert = true;
    v.alert = kAlertNoRenegotiation;
  }
  return v;
}

}  // namespace

std::vector<ControlStep> ParseControlRecord(uint8_t record_type, absl::string_view payload,
                                            const ConnState& state) {
  std::vector<ControlStep> steps;
  switch (record_type) {
    case kRecordAlert:
      steps.push_back(ParseAlert(payload));
      break;
    case kRecordHandshake:
      ParseHandshake(payload, state, steps);
      break;
    default:
      steps.push_back(FailStep(
          kAlertUnexpectedMessage,
          absl::StrCat("unexpected ", RecordTypeName(record_type), " record after the handshake")));
      break;
  }
  return steps;
}

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

  ControlVerdict verdict =
      ApplySteps(fd, state, ParseControlRecord(record.record_type, record.payload, state));
  if (verdict.action == ControlAction::kContinue) {
    // New keys (after a rekey) and the rate window travel in the new blob.
    TLSD_ASSIGN_OR_RETURN(state.rx_key_hash, KernelKeyHash(fd, /*tx=*/false));
    TLSD_ASSIGN_OR_RETURN(state.tx_key_hash, KernelKeyHash(fd, /*tx=*/true));
    verdict.sealed_state = sealer.Seal(state, local, peer);
  }
  return verdict;
}

}  // namespace tlsd
