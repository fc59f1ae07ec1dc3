#ifndef TLSD_TLSD_CONTROL_CONTROL_RECORDS_H_
#define TLSD_TLSD_CONTROL_CONTROL_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/wire/messages.h"
#include "tlsd/control/sealed_state.h"

namespace tlsd {

// ControlRecordPolicy bounds how much work one connection can ask of tlsd.
struct ControlRecordPolicy {
  uint32_t max_records_per_window = 16;  // KeyUpdates, alerts, tickets...
  absl::Duration window = absl::Seconds(10);
};

// ControlRecordWindow counts control records against the policy: Admit
// returns false once more than max_records_per_window arrived within one
// window. The kTLS path keeps it in the sealed state, the relay in its
// connection.
struct ControlRecordWindow {
  uint32_t records = 0;
  uint64_t start_ms = 0;  // CLOCK_REALTIME ms

  bool Admit(const ControlRecordPolicy& policy, uint64_t now_ms);
};

// LogControlRecordLimit logs, once per connection that hit the limit, why it
// is being ended.
void LogControlRecordLimit(uint64_t connection_id, const ControlRecordPolicy& policy);

// NowMs is CLOCK_REALTIME in ms: sealed windows outlive a tlsd restart.
uint64_t NowMs();

// ControlStep is one thing AnswerControlRecord does for a control record, as
// ParseControlRecord decides it from the record type and payload alone.
struct ControlStep {
  enum class Kind : uint8_t {
    kCloseNotify,          // alert close_notify: answer with ours; end of stream
    kUserCanceled,         // warning user_canceled: keep reading
    kPeerAlert,            // any other alert (`level`, `alert`): log it; the connection failed
    kKeyUpdate,            // TLS 1.3 KeyUpdate: rekey RX, then TX if update_requested
    kRefuseRenegotiation,  // TLS 1.2 renegotiation: send warning no_renegotiation
    kIgnoreTicket,         // TLS 1.3 NewSessionTicket on a client connection
    kFail,                 // send fatal `alert`; the connection failed (`message`)
  };
  Kind kind = Kind::kFail;
  uint8_t level = 0;              // kPeerAlert: the alert's level
  uint8_t alert = 0;              // kPeerAlert, kFail: the alert received or to send
  bool update_requested = false;  // kKeyUpdate
  std::string message;            // kFail: why
};

// ParseControlRecord reads one control record's type and payload (the
// untrusted part: the peer wrote it) and returns the steps AnswerControlRecord
// takes for it, in order. Only `state`'s tls_version, cipher_suite and
// is_server are read. Never empty. kRefuseRenegotiation and kIgnoreTicket
// steps may be followed by more; any other step is the last one (a record
// has one alert, a KeyUpdate must end its record, a failure ends the
// handling). No I/O: it is what the control_record fuzzer exercises.
std::vector<ControlStep> ParseControlRecord(uint8_t record_type, absl::string_view payload,
                                            const ConnState& state);

// AnswerControlRecord acts on one control record that a worker met on the
// kTLS socket `fd` (ARCHITECTURE.md "Control records"): answers
// close_notify, logs fatal alerts, rekeys on TLS 1.3 KeyUpdate (where the
// kernel can), refuses renegotiation, and ends the connection with
// unexpected_message on anything else. It first checks that the sealed state
// belongs to `fd` (addresses in the AEAD data, and the kernel's current keys
// equal the ones the state names); otherwise kPermissionDenied and the
// socket is not touched. kInvalidArgument for a socket that is not a
// connected kTLS TCP socket.
absl::StatusOr<ControlVerdict> AnswerControlRecord(const Sealer& sealer,
                                                   const ControlRecordPolicy& policy,
                                                   const ControlRecord& record, int fd);

// SealForHandoff builds the sealed state for a connection whose kTLS was
// just installed: TLS 1.3 traffic secrets (empty for 1.2) and the hashes of
// the keys the kernel now holds.
absl::StatusOr<std::string> SealForHandoff(const Sealer& sealer, int fd, bool is_server,
                                           uint64_t connection_id, uint16_t tls_version,
                                           uint16_t cipher_suite, const SecretBytes& rx_secret,
                                           const SecretBytes& tx_secret);

}  // namespace tlsd

#endif  // TLSD_TLSD_CONTROL_CONTROL_RECORDS_H_
