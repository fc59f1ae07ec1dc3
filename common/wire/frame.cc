#include "common/wire/frame.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/wire/byte_io.h"

namespace tlsd {

bool IsKnownMsgType(uint16_t type) {
  return type >= static_cast<uint16_t>(MsgType::kHello) &&
         type <= static_cast<uint16_t>(MsgType::kAdminReply);
}

const char* MsgTypeName(MsgType type) {
  switch (type) {
    case MsgType::kHello:
      return "HELLO";
    case MsgType::kHelloOk:
      return "HELLO_OK";
    case MsgType::kError:
      return "ERROR";
    case MsgType::kConnection:
      return "CONNECTION";
    case MsgType::kConnect:
      return "CONNECT";
    case MsgType::kConnectReply:
      return "CONNECT_REPLY";
    case MsgType::kAdminRequest:
      return "ADMIN_REQUEST";
    case MsgType::kAdminReply:
      return "ADMIN_REPLY";
    case MsgType::kControlRecord:
      return "CONTROL_RECORD";
    case MsgType::kControlVerdict:
      return "CONTROL_VERDICT";
  }
  return "unknown";
}

std::vector<uint8_t> EncodeFrame(MsgType type, uint32_t request_id,
                                 absl::Span<const uint8_t> payload) {
  TLSD_CHECK(payload.size() <= kMaxFrameLen - kFrameHeaderLen);
  ByteWriter w;
  w.WriteU16(kWireVersion);
  w.WriteU16(static_cast<uint16_t>(type));
  w.WriteU32(request_id);
  w.WriteU32(static_cast<uint32_t>(payload.size()));
  w.WriteBytes(payload);
  return w.Take();
}

absl::StatusOr<FrameHeader> DecodeFrame(absl::Span<const uint8_t> datagram,
                                        absl::Span<const uint8_t>* out_payload) {
  if (datagram.size() > kMaxFrameLen) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: ", datagram.size(), " bytes exceeds ", kMaxFrameLen));
  }
  ByteReader in(datagram);
  uint16_t version, type;
  uint32_t request_id, payload_len;
  if (!in.ReadU16(&version) || !in.ReadU16(&type) || !in.ReadU32(&request_id) ||
      !in.ReadU32(&payload_len)) {
    return absl::InvalidArgumentError("frame: shorter than its header");
  }
  if (version != kWireVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: unsupported wire version ", version, " (want ", kWireVersion, ")"));
  }
  if (!IsKnownMsgType(type)) {
    return absl::InvalidArgumentError(absl::StrCat("frame: unknown message type ", type));
  }
  if (payload_len != in.remaining()) {
    return absl::InvalidArgumentError(absl::StrCat("frame: payload length ", payload_len, " but ",
                                                   in.remaining(), " bytes follow"));
  }
  *out_payload = datagram.subspan(kFrameHeaderLen);
  return FrameHeader{static_cast<MsgType>(type), request_id};
}

}  // namespace tlsd
