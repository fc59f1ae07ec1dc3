#include "libtlsfd/src/record_policy.h"

#include <errno.h>

#include "common/ktls/record_io.h"

namespace tlsfd::internal {

const char* RecordActionName(RecordAction action) {
  switch (action) {
    case RecordAction::kData:
      return "data";
    case RecordAction::kEndOfStream:
      return "end_of_stream";
    case RecordAction::kSkip:
      return "skip";
    case RecordAction::kFatalAlert:
      return "fatal_alert";
    case RecordAction::kHandshake:
      return "handshake";
    case RecordAction::kProtocolError:
      return "protocol_error";
  }
  return "unknown";
}

RecordDecision DecideRecord(uint8_t record_type, absl::Span<const uint8_t> payload,
                            uint16_t tls_version) {
  switch (record_type) {
    case tlsd::kRecordApplicationData:
      return {.action = RecordAction::kData};
    case tlsd::kRecordHandshake:
      return {.action = RecordAction::kHandshake, .error = -EPROTO};
    case tlsd::kRecordAlert:
      break;
    default:
      return {.action = RecordAction::kProtocolError,
              .error = -EPROTO,
              .reply_alert = tlsd::kAlertUnexpectedMessage};
  }

  // RFC 8446 5.1: alerts are never fragmented or coalesced; RFC 5246 allows
  // it in theory but no implementation does, and a kTLS read returns at most
  // one record.
  if (payload.size() != 2 ||
      (payload[0] != tlsd::kAlertLevelWarning && payload[0] != tlsd::kAlertLevelFatal)) {
    return {.action = RecordAction::kProtocolError,
            .error = -EPROTO,
            .reply_alert = tlsd::kAlertDecodeError};
  }
  const uint8_t level = payload[0];
  const uint8_t description = payload[1];
  if (description == tlsd::kAlertCloseNotify) {
    return {.action = RecordAction::kEndOfStream, .alert = description};
  }
  if (level == tlsd::kAlertLevelFatal) {
    return {.action = RecordAction::kFatalAlert, .alert = description, .error = -ECONNRESET};
  }
  if (description == tlsd::kAlertUserCanceled || tls_version == 0x0303) {
    return {.action = RecordAction::kSkip, .alert = description};
  }
  return {.action = RecordAction::kFatalAlert, .alert = description, .error = -ECONNRESET};
}

}  // namespace tlsfd::internal
