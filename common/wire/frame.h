#ifndef TLSD_COMMON_WIRE_FRAME_H_
#define TLSD_COMMON_WIRE_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tlsd {

// One frame is one SOCK_SEQPACKET datagram. Integers are big-endian.
//   u16 version | u16 type | u32 request_id | u32 payload_len | payload
// payload_len must equal the datagram size - 12. An fd, if any, travels as a
// single SCM_RIGHTS int, never inside the payload. Replies echo request_id.
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kFrameHeaderLen = 12;
// Large enough for a control record (2^14 plaintext) plus sealed state and
// metadata; small enough that a hostile peer cannot make us buffer much.
inline constexpr size_t kMaxFrameLen = 20 * 1024;

enum class MsgType : uint16_t {
  kHello = 1,           // peer -> tlsd: subscribe to a service (pull mode)
  kHelloOk = 2,         // tlsd -> peer: subscription accepted
  kError = 3,           // either way: errno-style code and a message
  kConnection = 4,      // tlsd -> worker: one secured connection (+fd)
  kConnect = 5,         // app -> tlsd: open an outgoing secured connection
  kConnectReply = 6,    // tlsd -> app: the connection (+fd) or kError
  kControlRecord = 7,   // worker -> tlsd: a non-data record that arrived (+fd)
  kControlVerdict = 8,  // tlsd -> worker: what happened and what to do next
  kAdminRequest = 9,    // tlsctl -> tlsd: status, reload, check-config, certs
  kAdminReply = 10,     // tlsd -> tlsctl: one chunk of the JSON answer
};

// IsKnownMsgType is true for the values above; a frame of another type is
// rejected before any handler sees it.
bool IsKnownMsgType(uint16_t type);
// MsgTypeName is for logs ("CONNECTION"); "unknown" otherwise.
const char* MsgTypeName(MsgType type);

struct FrameHeader {
  MsgType type;
  uint32_t request_id;
};

// EncodeFrame builds a whole datagram. The payload must be at most
// kMaxFrameLen - kFrameHeaderLen (a caller bug otherwise: TLSD_CHECK).
std::vector<uint8_t> EncodeFrame(MsgType type, uint32_t request_id,
                                 absl::Span<const uint8_t> payload);

// DecodeFrame validates version, type and length of one received datagram and
// returns the header; *out_payload points into `datagram`.
absl::StatusOr<FrameHeader> DecodeFrame(absl::Span<const uint8_t> datagram,
                                        absl::Span<const uint8_t>* out_payload);

}  // namespace tlsd

#endif  // TLSD_COMMON_WIRE_FRAME_H_
