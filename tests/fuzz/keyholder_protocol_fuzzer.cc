// libFuzzer target for the key holder's message decoders
// (tlsd/keyholder/protocol.h). The holder is the process that keeps the
// private keys and the ticket masters, and the handshake engine, which
// parses the network, is the one that talks to it: if the engine is
// compromised, these decoders are what stands between it and the keys.
//
// Input: a mode byte, then one message.
//   0  DecodeSetupRequest (holder side: LOAD, LOAD_TICKETS, SEAL)
//   1  DecodeSignRequest  (holder side: SIGN, every operation)
//   2  DecodeSetupReply   (engine side)
//   3  DecodeSignReply    (engine side)
//
// Oracles, beyond the sanitizers:
//   - a reject is kInvalidArgument saying "key holder message: ...";
//   - whatever decodes re-encodes to exactly the input (a SIGN request or
//     reply: up to its zero padding, which the decoder does not read; a
//     setup reply: when its message is within the 4000 bytes the encoder
//     keeps);
//   - decoded values keep the promises the holder relies on: LOAD paths are
//     non-empty, NUL-free and shorter than 4096; LOAD_TICKETS is a valid path
//     or random keys with a rotation period; a SIGN request is exactly
//     kSignRequestSize bytes with a known operation whose input length is
//     that operation's (ticket: 0 or name + IV; signature: 1..kMaxSignInput).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/types/span.h"
#include "tests/fuzz/fuzz_oracle.h"
#include "tlsd/keyholder/protocol.h"
#include "tlsd/tls/ticket_ring.h"

namespace tlsd::keyholder {
namespace {

using fuzz::SameBytes;

void CheckReject(const absl::Status& s) {
  FUZZ_REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_REQUIRE(absl::StartsWith(s.message(), "key holder message: "));
}

bool ValidPath(const std::string& p) {
  return !p.empty() && p.size() < 4096 && p.find('\0') == std::string::npos;
}

// `wire` with everything after the first `used` bytes cleared: what an
// encoder makes of the decoded fields.
std::vector<uint8_t> Padded(absl::Span<const uint8_t> wire, size_t used) {
  std::vector<uint8_t> out(wire.begin(), wire.end());
  if (used < out.size()) memset(out.data() + used, 0, out.size() - used);
  return out;
}

void FuzzSetupRequest(absl::Span<const uint8_t> in) {
  absl::StatusOr<SetupRequest> r = DecodeSetupRequest(in);
  if (!r.ok()) {
    CheckReject(r.status());
    return;
  }
  switch (r->type) {
    case MessageType::kLoad:
      FUZZ_REQUIRE(ValidPath(r->load.cert_path) && ValidPath(r->load.key_path));
      FUZZ_REQUIRE(SameBytes(EncodeLoad(r->load), in));
      break;
    case MessageType::kLoadTickets:
      FUZZ_REQUIRE(r->tickets.key_file.empty() ? r->tickets.rotate_seconds > 0
                                               : ValidPath(r->tickets.key_file));
      FUZZ_REQUIRE(SameBytes(EncodeLoadTickets(r->tickets), in));
      break;
    case MessageType::kSeal:
      FUZZ_REQUIRE(r->seal.user.size() <= 256);
      FUZZ_REQUIRE(SameBytes(EncodeSeal(r->seal), in));
      break;
    default:
      FUZZ_REQUIRE(!"a setup request of another type decoded");
  }
}

void FuzzSignRequest(absl::Span<const uint8_t> in) {
  absl::StatusOr<SignRequest> r = DecodeSignRequest(in);
  if (!r.ok()) {
    CheckReject(r.status());
    return;
  }
  FUZZ_REQUIRE(in.size() == kSignRequestSize);
  const size_t len = r->input.size();
  switch (r->op) {
    case SignOp::kTicketNew:
      FUZZ_REQUIRE(len == 0);
      break;
    case SignOp::kTicketOpen:
      FUZZ_REQUIRE(len == kTicketNameLen + kTicketIvLen);
      break;
    case SignOp::kEcdsaDigest:
    case SignOp::kRsaPkcs1:
    case SignOp::kRsaPss:
      FUZZ_REQUIRE(len >= 1 && len <= kMaxSignInput);
      break;
    default:
      FUZZ_REQUIRE(!"an unknown operation decoded");
  }
  // type, op, u16 len, u32 key id, then the input.
  FUZZ_REQUIRE(SameBytes(EncodeSignRequest(*r), Padded(in, 8 + len)));
}

void FuzzSetupReply(absl::Span<const uint8_t> in) {
  absl::StatusOr<SetupReply> r = DecodeSetupReply(in);
  if (!r.ok()) {
    CheckReject(r.status());
    return;
  }
  FUZZ_REQUIRE(r->code >= 0 && r->code <= 16);
  // The encoder cuts a message at 4000 bytes; shorter ones round-trip.
  if (r->message.size() <= 4000) FUZZ_REQUIRE(SameBytes(EncodeSetupReply(*r), in));
}

void FuzzSignReply(absl::Span<const uint8_t> in) {
  absl::StatusOr<SignReply> r = DecodeSignReply(in);
  if (!r.ok()) {
    CheckReject(r.status());
    return;
  }
  FUZZ_REQUIRE(in.size() == kSignReplySize);
  FUZZ_REQUIRE(r->output.size() <= kMaxSignOutput);
  FUZZ_REQUIRE(!r->ok || !r->output.empty());
  // type, ok, u16 len, then the output.
  FUZZ_REQUIRE(SameBytes(EncodeSignReply(*r), Padded(in, 4 + r->output.size())));
}

}  // namespace
}  // namespace tlsd::keyholder

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const absl::Span<const uint8_t> msg(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      tlsd::keyholder::FuzzSetupRequest(msg);
      break;
    case 1:
      tlsd::keyholder::FuzzSignRequest(msg);
      break;
    case 2:
      tlsd::keyholder::FuzzSetupReply(msg);
      break;
    case 3:
      tlsd::keyholder::FuzzSignReply(msg);
      break;
  }
  return 0;
}
