// libFuzzer target for control records (ARCHITECTURE.md "Control records"):
// the CONTROL_RECORD a worker sends tlsd with a non-data TLS record it met on
// a handed-off kTLS socket, the CONTROL_VERDICT it gets back, and
// tlsd::ParseControlRecord, which reads the record's type and payload (bytes
// the TLS peer wrote: alerts, KeyUpdate, NewSessionTicket, renegotiation
// attempts) and decides what AnswerControlRecord does with the socket.
//
// Input: u8 flags (bit 0 is_server, bit 1 TLS 1.3) | u16 cipher suite | rest.
// `rest` is tried as a CONTROL_RECORD (and its record handed to the parser),
// as a CONTROL_VERDICT, and directly as u8 record type | payload, so the
// parser is reached without a valid message around it.
//
// Oracles, beyond the sanitizers:
//   - decoders reject with kInvalidArgument and a message; what decodes
//     re-encodes to exactly the input;
//   - the parser always decides something: only kRefuseRenegotiation and
//     kIgnoreTicket steps can be followed by more; an alert record gives one
//     step that matches its two bytes; a KeyUpdate is TLS 1.3 only, needs a
//     cipher tlsd can rekey and ends the record; renegotiation is refused in
//     TLS 1.2 only and tickets are ignored on client connections only;
//     failures send decode_error, illegal_parameter or unexpected_message
//     and say why; the accepted handshake messages tile the payload exactly.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/ktls/record_io.h"
#include "common/wire/messages.h"
#include "tests/fuzz/fuzz_oracle.h"
#include "tlsd/control/control_records.h"
#include "tlsd/tls/ktls_types.h"

namespace tlsd {
namespace {

using Kind = ControlStep::Kind;

using fuzz::SameBytes;

void RequireRejected(const absl::Status& s) {
  FUZZ_REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_REQUIRE(!s.message().empty());
}

bool Continues(Kind k) { return k == Kind::kRefuseRenegotiation || k == Kind::kIgnoreTicket; }

// Walk counts the whole handshake messages at the start of `payload` and
// reports whether they end exactly at its end.
size_t Walk(absl::string_view payload, bool* exact) {
  size_t n = 0;
  while (payload.size() >= 4) {
    const size_t len = (static_cast<size_t>(static_cast<uint8_t>(payload[1])) << 16) |
                       (static_cast<size_t>(static_cast<uint8_t>(payload[2])) << 8) |
                       static_cast<uint8_t>(payload[3]);
    if (payload.size() < 4 + len) break;
    payload.remove_prefix(4 + len);
    ++n;
  }
  *exact = payload.empty();
  return n;
}

void CheckSteps(uint8_t type, absl::string_view payload, const ConnState& state) {
  const std::vector<ControlStep> steps = ParseControlRecord(type, payload, state);
  FUZZ_REQUIRE(!steps.empty());
  const ControlStep& last = steps.back();
  for (size_t i = 0; i + 1 < steps.size(); ++i) FUZZ_REQUIRE(Continues(steps[i].kind));
  for (const ControlStep& s : steps) {
    if (s.kind == Kind::kFail) {
      FUZZ_REQUIRE(!s.message.empty());
      FUZZ_REQUIRE(s.alert == kAlertDecodeError || s.alert == kAlertIllegalParameter ||
                   s.alert == kAlertUnexpectedMessage);
    } else {
      FUZZ_REQUIRE(s.message.empty());
    }
    if (s.kind != Kind::kKeyUpdate) FUZZ_REQUIRE(!s.update_requested);
  }

  const bool tls13 = state.tls_version == 0x0304;
  if (type == kRecordAlert) {
    FUZZ_REQUIRE(steps.size() == 1);
    if (payload.size() != 2) {
      FUZZ_REQUIRE(last.kind == Kind::kFail && last.alert == kAlertDecodeError);
      return;
    }
    const uint8_t level = static_cast<uint8_t>(payload[0]);
    const uint8_t description = static_cast<uint8_t>(payload[1]);
    if (description == kAlertCloseNotify) {
      FUZZ_REQUIRE(last.kind == Kind::kCloseNotify);
    } else if (description == kAlertUserCanceled && level == kAlertLevelWarning) {
      FUZZ_REQUIRE(last.kind == Kind::kUserCanceled);
    } else {
      FUZZ_REQUIRE(last.kind == Kind::kPeerAlert);
      FUZZ_REQUIRE(last.level == level && last.alert == description);
    }
    return;
  }
  if (type != kRecordHandshake) {
    FUZZ_REQUIRE(steps.size() == 1 && last.kind == Kind::kFail);
    FUZZ_REQUIRE(last.alert == kAlertUnexpectedMessage);
    return;
  }

  for (const ControlStep& s : steps) {
    FUZZ_REQUIRE(s.kind != Kind::kCloseNotify && s.kind != Kind::kUserCanceled &&
                 s.kind != Kind::kPeerAlert);
    if (s.kind == Kind::kKeyUpdate) FUZZ_REQUIRE(tls13);
    if (s.kind == Kind::kRefuseRenegotiation) FUZZ_REQUIRE(!tls13);
    if (s.kind == Kind::kIgnoreTicket) FUZZ_REQUIRE(tls13 && !state.is_server);
  }
  if (payload.empty()) FUZZ_REQUIRE(last.kind == Kind::kFail);
  bool exact = false;
  const size_t whole = Walk(payload, &exact);
  if (last.kind == Kind::kFail) {
    // Every message before the failing one was whole.
    FUZZ_REQUIRE(whole >= steps.size() - 1);
    return;
  }
  // Accepted: the messages tile the record, one step each.
  FUZZ_REQUIRE(exact && whole == steps.size());
  if (last.kind == Kind::kKeyUpdate) {
    FUZZ_REQUIRE(KtlsCipherFromSuiteId(state.cipher_suite).ok());
    FUZZ_REQUIRE(payload.size() >= 5);
    const absl::string_view tail = payload.substr(payload.size() - 5);
    FUZZ_REQUIRE(tail.substr(0, 4) == absl::string_view("\x18\x00\x00\x01", 4));
    FUZZ_REQUIRE(static_cast<uint8_t>(tail[4]) <= 1);
    FUZZ_REQUIRE(last.update_requested == (tail[4] == 1));
  }
}

}  // namespace
}  // namespace tlsd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tlsd;
  if (size < 3) return 0;
  ConnState state;
  state.is_server = (data[0] & 1) != 0;
  state.tls_version = (data[0] & 2) != 0 ? 0x0304 : 0x0303;
  state.cipher_suite = static_cast<uint16_t>((data[1] << 8) | data[2]);
  const absl::Span<const uint8_t> in(data + 3, size - 3);

  if (absl::StatusOr<ControlRecord> r = ControlRecord::Decode(in); r.ok()) {
    FUZZ_REQUIRE(r->record_type >= 20 && r->record_type <= 22);
    FUZZ_REQUIRE(!r->payload.empty() && r->payload.size() <= kMaxControlPayloadLen);
    FUZZ_REQUIRE(!r->sealed_state.empty());
    FUZZ_REQUIRE(SameBytes(r->Encode(), in));
    CheckSteps(r->record_type, r->payload, state);
  } else {
    RequireRejected(r.status());
  }

  if (absl::StatusOr<ControlVerdict> v = ControlVerdict::Decode(in); v.ok()) {
    FUZZ_REQUIRE(v->action == ControlAction::kContinue ||
                 v->action == ControlAction::kEndOfStream || v->action == ControlAction::kFailed);
    FUZZ_REQUIRE(v->has_alert || v->alert == 0);
    FUZZ_REQUIRE(SameBytes(v->Encode(), in));
  } else {
    RequireRejected(v.status());
  }

  if (!in.empty()) {
    CheckSteps(in[0],
               absl::string_view(reinterpret_cast<const char*>(in.data()) + 1, in.size() - 1),
               state);
  }
  return 0;
}
