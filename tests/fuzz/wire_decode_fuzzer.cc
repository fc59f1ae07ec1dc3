// libFuzzer target for every decoder in common/wire (STYLE.md 2.9: one target
// per Decode(); the wire decoders are small enough to share one).
//
// The input is tried as a whole datagram (DecodeFrame, then every message
// decoder on its payload) and, so that the decoders are reached at offset 0
// without a valid header, directly as a payload for every message decoder.
//
// Oracles, beyond the sanitizers:
//   - a decoder that fails returns kInvalidArgument with a non-empty message
//     (peer input never yields another code, never aborts);
//   - whatever decodes re-encodes to exactly the bytes it came from (the codec
//     is a bijection on accepted inputs: no field silently dropped, widened or
//     normalised);
//   - decoded values satisfy the invariants the decoder promises.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/wire/frame.h"
#include "common/wire/messages.h"
#include "tests/fuzz/fuzz_oracle.h"

namespace tlsd {
namespace {

using fuzz::SameBytes;

void RequireRejected(const absl::Status& s) {
  FUZZ_REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_REQUIRE(!s.message().empty());
}

bool IsKnownPath(DataPath p) {
  return p == DataPath::kKernelSoftware || p == DataPath::kKernelDevice || p == DataPath::kRelay;
}

void DecodeMessages(absl::Span<const uint8_t> in) {
  if (absl::StatusOr<Hello> h = Hello::Decode(in); h.ok()) {
    FUZZ_REQUIRE(IsValidServiceName(h->backend));
    FUZZ_REQUIRE(SameBytes(h->Encode(), in));
  } else {
    RequireRejected(h.status());
  }

  if (absl::StatusOr<AdminRequest> a = AdminRequest::Decode(in); a.ok()) {
    FUZZ_REQUIRE(SameBytes(a->Encode(), in));
  } else {
    RequireRejected(a.status());
  }

  if (absl::StatusOr<AdminReplyChunk> a = AdminReplyChunk::Decode(in); a.ok()) {
    FUZZ_REQUIRE(a->data.size() <= kMaxAdminChunk);
    FUZZ_REQUIRE(SameBytes(a->Encode(), in));
  } else {
    RequireRejected(a.status());
  }

  if (absl::StatusOr<ErrorMsg> e = ErrorMsg::Decode(in); e.ok()) {
    FUZZ_REQUIRE(e->code >= 1 && e->code <= 4095);
    FUZZ_REQUIRE(e->message.size() <= 1024);
    FUZZ_REQUIRE(SameBytes(e->Encode(), in));
  } else {
    RequireRejected(e.status());
  }

  if (absl::StatusOr<ConnectionInfo> c = ConnectionInfo::Decode(in); c.ok()) {
    FUZZ_REQUIRE(IsValidServiceName(c->service));
    FUZZ_REQUIRE(IsValidServiceName(c->backend));
    FUZZ_REQUIRE(c->tls_version == 0x0303 || c->tls_version == 0x0304);
    FUZZ_REQUIRE(IsKnownPath(c->tx_path) && IsKnownPath(c->rx_path));
    FUZZ_REQUIRE(c->has_client_cert || c->client_cert_subject.empty());
    for (const WireAddress* a : {&c->peer, &c->local}) {
      FUZZ_REQUIRE(a->family == 0 || a->family == 4 || a->family == 6);
      FUZZ_REQUIRE(!a->ToString().empty());
    }
    FUZZ_REQUIRE(SameBytes(c->Encode(), in));
    // Decode(Encode(x)) == x as well.
    absl::StatusOr<ConnectionInfo> again = ConnectionInfo::Decode(c->Encode());
    FUZZ_REQUIRE(again.ok() && *again == *c);
  } else {
    RequireRejected(c.status());
  }
}

}  // namespace
}  // namespace tlsd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tlsd;
  const absl::Span<const uint8_t> in(data, size);

  absl::Span<const uint8_t> payload;
  absl::StatusOr<FrameHeader> header = DecodeFrame(in, &payload);
  if (header.ok()) {
    FUZZ_REQUIRE(size <= kMaxFrameLen);
    FUZZ_REQUIRE(IsKnownMsgType(static_cast<uint16_t>(header->type)));
    FUZZ_REQUIRE(payload.data() == data + kFrameHeaderLen);
    FUZZ_REQUIRE(payload.size() == size - kFrameHeaderLen);
    FUZZ_REQUIRE(SameBytes(EncodeFrame(header->type, header->request_id, payload), in));
    DecodeMessages(payload);
  } else {
    RequireRejected(header.status());
  }

  DecodeMessages(in);
  return 0;
}
