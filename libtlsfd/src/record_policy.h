#ifndef TLSD_LIBTLSFD_SRC_RECORD_POLICY_H_
#define TLSD_LIBTLSFD_SRC_RECORD_POLICY_H_

// What tlsfd_read does with one record that arrived on a kTLS socket. A pure
// function, so that every case is unit-tested without a kTLS kernel.

#include <cstdint>

#include "absl/types/span.h"

namespace tlsfd::internal {

enum class RecordAction {
  kData,           // application data: hand it to the caller
  kEndOfStream,    // close_notify: return 0 from now on
  kSkip,           // an alert that does not end the connection: read on
  kFatalAlert,     // the peer aborted the connection: -ECONNRESET
  kHandshake,      // post-handshake message (KeyUpdate, NewSessionTicket,
                   // HelloRequest): handed to tlsd by the control-record
                   // relay (control_relay.h); -EPROTO if that fails
  kProtocolError,  // a record that may not appear here: -EPROTO, and send
                   // `reply_alert` as a fatal alert
};

// RecordActionName returns "data", "end_of_stream", ... for test output.
const char* RecordActionName(RecordAction action);

struct RecordDecision {
  RecordAction action = RecordAction::kProtocolError;
  int alert = -1;        // the alert description received; -1 if not an alert
  int error = 0;         // the negative errno tlsfd_read returns; 0 if none
  int reply_alert = -1;  // alert description to send (fatal) before failing; -1 none

  bool operator==(const RecordDecision&) const = default;
};

// DecideRecord classifies one complete record: `record_type` from
// TLS_GET_RECORD_TYPE, `payload` its plaintext, `tls_version` 0x0303/0x0304
// from the connection's metadata. Rules (RFC 8446 6, RFC 5246 7.2):
//   application_data        -> kData
//   alert, not 2 bytes or level not 1/2 -> kProtocolError, reply decode_error
//   alert close_notify      -> kEndOfStream (any level)
//   alert user_canceled, warning level -> kSkip (a close_notify should follow)
//   alert, fatal level      -> kFatalAlert
//   other alert, warning level: TLS 1.2 -> kSkip; TLS 1.3 -> kFatalAlert (1.3
//                              treats every non-closure alert as an error)
//   handshake               -> kHandshake, -EPROTO, no reply (tlsd's job)
//   anything else (change_cipher_spec, heartbeat, unknown)
//                           -> kProtocolError, reply unexpected_message
RecordDecision DecideRecord(uint8_t record_type, absl::Span<const uint8_t> payload,
                            uint16_t tls_version);

// kMaxSkippedAlerts bounds warning alerts in a row without data in between,
// as OpenSSL does (SSL_R_TOO_MANY_WARN_ALERTS), so a peer cannot keep a
// reader spinning on them; the next one is a protocol error.
inline constexpr int kMaxSkippedAlerts = 5;

}  // namespace tlsfd::internal

#endif  // TLSD_LIBTLSFD_SRC_RECORD_POLICY_H_
