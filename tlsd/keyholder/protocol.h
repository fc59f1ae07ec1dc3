#ifndef TLSD_TLSD_KEYHOLDER_PROTOCOL_H_
#define TLSD_TLSD_KEYHOLDER_PROTOCOL_H_

// What the handshake engine and the key holder say to each other, over
// SOCK_SEQPACKET socketpairs made before the engine reads anything from the
// network.
//
// Setup, on the setup channel, before the engine serves (the engine is
// still trustworthy then: it has parsed nothing but its own config):
//   LOAD          cert path + key path     -> key id, or the reason it cannot be used
//   LOAD_TICKETS  key file ("" = random) + rotation -> ticket ring id, or the reason
//   SEAL          the user to become       -> done
// Serving, on the signing channels (one per engine thread): SIGN requests of
// one fixed size, validated field by field; anything else is answered with
// a refusal. A SIGN is a signature with a key, or the keys of one session
// ticket from a ring (tlsd/tls/ticket_ring.h: derived per ticket, never the
// ring's masters). After SEAL the setup channel takes only LOAD and
// LOAD_TICKETS (a reload's), read as the unprivileged user: the reply is an
// id or an error, never key material. Nothing the engine sends returns a
// private key or a ticket master key.

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tlsd::keyholder {

enum class MessageType : uint8_t {
  kLoad = 1,
  kSeal = 2,
  kSign = 3,
  kLoadTickets = 4,
  kSetupReply = 0x81,
  kSignReply = 0x83,
};

// The private-key operations a TLS handshake needs.
enum class SignOp : uint8_t {
  kEcdsaDigest = 1,  // ECDSA over a digest (20..64 bytes); DER signature out
  kRsaPkcs1 = 2,     // RSA PKCS#1 v1.5 type-1 padding over a DigestInfo
  kRsaPss = 3,       // RSA private op on a block that must be a PSS encoding
  // With a ticket ring id instead of a key id (TicketKeys):
  kTicketNew = 4,   // no input; out: name(16) iv(16) hmac(32) aes(32)
  kTicketOpen = 5,  // in: name(16) iv(16); out: TicketKeyState(1) [hmac(32) aes(32)]
};

inline constexpr size_t kMaxSignInput = 1024;   // RSA-8192 block
inline constexpr size_t kMaxSignOutput = 1024;  // RSA-8192 signature
// type, op, u16 len, u32 key id, input (zero padded)
inline constexpr size_t kSignRequestSize = 1 + 1 + 2 + 4 + kMaxSignInput;
// type, ok, u16 len, output (zero padded)
inline constexpr size_t kSignReplySize = 1 + 1 + 2 + kMaxSignOutput;
// Setup messages carry paths; bounded so a reply buffer is too.
inline constexpr size_t kMaxSetupMessage = 8192;

struct LoadRequest {
  std::string cert_path;
  std::string key_path;
};

struct LoadTicketsRequest {
  std::string key_file;  // "" for random keys
  uint32_t rotate_seconds = 0;
};

struct SealRequest {
  std::string user;  // "" keeps the current user
};

// Either kind of setup request, as decoded by the holder.
struct SetupRequest {
  MessageType type;
  LoadRequest load;
  LoadTicketsRequest tickets;
  SealRequest seal;
};

struct SetupReply {
  int32_t code = 0;  // absl::StatusCode
  uint32_t key_id = 0;
  std::string message;
};

struct SignRequest {
  SignOp op;
  uint32_t key_id;
  std::vector<uint8_t> input;
};

struct SignReply {
  bool ok = false;
  std::vector<uint8_t> output;
};

std::vector<uint8_t> EncodeLoad(const LoadRequest& r);
std::vector<uint8_t> EncodeLoadTickets(const LoadTicketsRequest& r);
std::vector<uint8_t> EncodeSeal(const SealRequest& r);
absl::StatusOr<SetupRequest> DecodeSetupRequest(absl::Span<const uint8_t> in);
std::vector<uint8_t> EncodeSetupReply(const SetupReply& r);
absl::StatusOr<SetupReply> DecodeSetupReply(absl::Span<const uint8_t> in);

// Encoders produce exactly kSignRequestSize / kSignReplySize bytes; decoders
// accept nothing else.
std::vector<uint8_t> EncodeSignRequest(const SignRequest& r);
absl::StatusOr<SignRequest> DecodeSignRequest(absl::Span<const uint8_t> in);
std::vector<uint8_t> EncodeSignReply(const SignReply& r);
absl::StatusOr<SignReply> DecodeSignReply(absl::Span<const uint8_t> in);

}  // namespace tlsd::keyholder

#endif  // TLSD_TLSD_KEYHOLDER_PROTOCOL_H_
