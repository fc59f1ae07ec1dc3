#include "tlsd/keyholder/protocol.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/wire/byte_io.h"
#include "tlsd/tls/ticket_ring.h"

namespace tlsd::keyholder {
namespace {

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("key holder message: ", what));
}

bool ValidPath(absl::string_view p) {
  return !p.empty() && p.size() < 4096 && p.find('\0') == absl::string_view::npos;
}

}  // namespace

std::vector<uint8_t> EncodeLoad(const LoadRequest& r) {
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(MessageType::kLoad));
  w.WriteU16Prefixed(r.cert_path);
  w.WriteU16Prefixed(r.key_path);
  return w.Take();
}

std::vector<uint8_t> EncodeLoadTickets(const LoadTicketsRequest& r) {
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(MessageType::kLoadTickets));
  w.WriteU16Prefixed(r.key_file);
  w.WriteU32(r.rotate_seconds);
  return w.Take();
}

std::vector<uint8_t> EncodeSeal(const SealRequest& r) {
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(MessageType::kSeal));
  w.WriteU16Prefixed(r.user);
  return w.Take();
}

absl::StatusOr<SetupRequest> DecodeSetupRequest(absl::Span<const uint8_t> in) {
  if (in.size() > kMaxSetupMessage) return Malformed("setup request too long");
  ByteReader r(in);
  uint8_t type;
  if (!r.ReadU8(&type)) return Malformed("empty");
  SetupRequest req;
  absl::string_view a, b;
  switch (static_cast<MessageType>(type)) {
    case MessageType::kLoad:
      if (!r.ReadU16Prefixed(&a) || !r.ReadU16Prefixed(&b) || !r.empty()) {
        return Malformed("LOAD: bad lengths");
      }
      if (!ValidPath(a) || !ValidPath(b)) return Malformed("LOAD: bad path");
      req.type = MessageType::kLoad;
      req.load = {std::string(a), std::string(b)};
      return req;
    case MessageType::kLoadTickets:
      if (!r.ReadU16Prefixed(&a) || !r.ReadU32(&req.tickets.rotate_seconds) || !r.empty()) {
        return Malformed("LOAD_TICKETS: bad lengths");
      }
      if (!a.empty() && !ValidPath(a)) return Malformed("LOAD_TICKETS: bad path");
      if (a.empty() && req.tickets.rotate_seconds == 0) {
        return Malformed("LOAD_TICKETS: random keys need a rotation period");
      }
      req.type = MessageType::kLoadTickets;
      req.tickets.key_file = std::string(a);
      return req;
    case MessageType::kSeal:
      if (!r.ReadU16Prefixed(&a) || !r.empty() || a.size() > 256) return Malformed("SEAL");
      req.type = MessageType::kSeal;
      req.seal.user = std::string(a);
      return req;
    default:
      return Malformed(absl::StrCat("type ", type, " is not a setup request"));
  }
}

std::vector<uint8_t> EncodeSetupReply(const SetupReply& r) {
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(MessageType::kSetupReply));
  w.WriteU32(static_cast<uint32_t>(r.code));
  w.WriteU32(r.key_id);
  w.WriteU16Prefixed(absl::string_view(r.message).substr(0, 4000));
  return w.Take();
}

absl::StatusOr<SetupReply> DecodeSetupReply(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  uint8_t type;
  uint32_t code;
  SetupReply out;
  absl::string_view message;
  if (!r.ReadU8(&type) || type != static_cast<uint8_t>(MessageType::kSetupReply) ||
      !r.ReadU32(&code) || !r.ReadU32(&out.key_id) || !r.ReadU16Prefixed(&message) || !r.empty() ||
      code > 16) {
    return Malformed("bad setup reply");
  }
  out.code = static_cast<int32_t>(code);
  out.message = std::string(message);
  return out;
}

std::vector<uint8_t> EncodeSignRequest(const SignRequest& r) {
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(MessageType::kSign));
  w.WriteU8(static_cast<uint8_t>(r.op));
  w.WriteU16(static_cast<uint16_t>(r.input.size()));
  w.WriteU32(r.key_id);
  w.WriteBytes(r.input);
  std::vector<uint8_t> out = w.Take();
  out.resize(kSignRequestSize, 0);
  return out;
}

absl::StatusOr<SignRequest> DecodeSignRequest(absl::Span<const uint8_t> in) {
  if (in.size() != kSignRequestSize) return Malformed("SIGN: wrong size");
  ByteReader r(in);
  uint8_t type, op;
  uint16_t len;
  SignRequest req;
  absl::Span<const uint8_t> input;
  if (!r.ReadU8(&type) || type != static_cast<uint8_t>(MessageType::kSign)) {
    return Malformed("not a SIGN request");
  }
  if (!r.ReadU8(&op) || op < static_cast<uint8_t>(SignOp::kEcdsaDigest) ||
      op > static_cast<uint8_t>(SignOp::kTicketOpen)) {
    return Malformed("SIGN: unknown operation");
  }
  // Each operation's input has one length, or a range.
  size_t min_len = 1, max_len = kMaxSignInput;
  if (op == static_cast<uint8_t>(SignOp::kTicketNew)) {
    min_len = max_len = 0;
  } else if (op == static_cast<uint8_t>(SignOp::kTicketOpen)) {
    min_len = max_len = kTicketNameLen + kTicketIvLen;
  }
  if (!r.ReadU16(&len) || len < min_len || len > max_len) return Malformed("SIGN: bad length");
  if (!r.ReadU32(&req.key_id) || !r.ReadBytes(len, &input)) return Malformed("SIGN: truncated");
  req.op = static_cast<SignOp>(op);
  req.input.assign(input.begin(), input.end());
  return req;
}

std::vector<uint8_t> EncodeSignReply(const SignReply& r) {
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(MessageType::kSignReply));
  w.WriteU8(r.ok ? 1 : 0);
  w.WriteU16(static_cast<uint16_t>(r.output.size()));
  w.WriteBytes(r.output);
  std::vector<uint8_t> out = w.Take();
  out.resize(kSignReplySize, 0);
  return out;
}

absl::StatusOr<SignReply> DecodeSignReply(absl::Span<const uint8_t> in) {
  if (in.size() != kSignReplySize) return Malformed("SIGN reply: wrong size");
  ByteReader r(in);
  uint8_t type, ok;
  uint16_t len;
  absl::Span<const uint8_t> output;
  if (!r.ReadU8(&type) || type != static_cast<uint8_t>(MessageType::kSignReply) || !r.ReadU8(&ok) ||
      ok > 1 || !r.ReadU16(&len) || len > kMaxSignOutput || !r.ReadBytes(len, &output)) {
    return Malformed("bad SIGN reply");
  }
  SignReply out;
  out.ok = ok == 1;
  out.output.assign(output.begin(), output.end());
  if (out.ok && out.output.empty()) return Malformed("SIGN reply: empty output");
  return out;
}

}  // namespace tlsd::keyholder
