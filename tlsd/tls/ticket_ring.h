#ifndef TLSD_TLSD_TLS_TICKET_RING_H_
#define TLSD_TLSD_TLS_TICKET_RING_H_

// Session-ticket keys, split so that the process that parses network input
// never holds a long-lived one.
//
// A ticket is sealed the RFC 5077 way OpenSSL's own tickets are (key name,
// IV, AES-256-CBC, HMAC-SHA256), but the AES and HMAC keys are per ticket:
// HKDF-SHA256 of a master key, with the ticket's key name and IV as input.
// The masters live in a TicketKeyRing, in the key holder; the handshake
// engine asks it (TicketKeys) for the keys of one ticket at a time and
// forgets them when the ticket is sealed or opened. A compromised engine
// can ask for the keys of tickets while it is compromised, as it can ask for
// signatures, but it never has a master to take away.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/base/secret_bytes.h"

namespace tlsd {

inline constexpr size_t kTicketNameLen = 16;
inline constexpr size_t kTicketIvLen = 16;
inline constexpr size_t kTicketKeyLen = 32;  // each of the HMAC and AES keys

// The keys for one ticket.
struct TicketSecrets {
  std::array<uint8_t, kTicketNameLen> name{};
  std::array<uint8_t, kTicketIvLen> iv{};
  SecretBytes hmac;  // kTicketKeyLen
  SecretBytes aes;   // kTicketKeyLen
};

// What a ticket's key name says about it.
enum class TicketKeyState : uint8_t {
  kUnknown = 0,  // no master has that name (rotated out, or another fleet)
  kCurrent = 1,  // sealed under the key that seals new tickets
  kRenew = 2,    // an older key: valid, but re-issue under the current one
};

// TicketKeys gives the keys of one ticket at a time.
class TicketKeys {
 public:
  virtual ~TicketKeys() = default;
  // ForNewTicket picks the current master's name and a fresh IV and returns
  // them with the keys that seal a new ticket.
  virtual absl::StatusOr<TicketSecrets> ForNewTicket() = 0;
  // ForTicket returns the state of the ticket's key name and, unless
  // kUnknown, its keys in `out` (`out->name` and `out->iv` set as given).
  virtual absl::StatusOr<TicketKeyState> ForTicket(absl::Span<const uint8_t> name,
                                                   absl::Span<const uint8_t> iv,
                                                   TicketSecrets* out) = 0;
};

// TicketKeyRing holds the masters: either random ones that it rotates
// (current + previous, so a ticket stays valid for one extra period), or
// ones from a file shared by a fleet, so that any instance resumes any
// session. The file holds one or more 80-byte entries in nginx's
// ssl_session_ticket_key layout, name(16) | 64 bytes of key, so existing
// key-rotation tooling makes them; the first entry seals, all open. (The
// 64 bytes are a master here, not nginx's HMAC and AES keys: tlsd's
// tickets and nginx's do not open each other.)
class TicketKeyRing : public TicketKeys {
 public:
  static std::unique_ptr<TicketKeyRing> Random(absl::Duration rotate);
  // FromFile errors name the file and the problem.
  static absl::StatusOr<std::unique_ptr<TicketKeyRing>> FromFile(absl::string_view path);

  absl::StatusOr<TicketSecrets> ForNewTicket() override;
  absl::StatusOr<TicketKeyState> ForTicket(absl::Span<const uint8_t> name,
                                           absl::Span<const uint8_t> iv,
                                           TicketSecrets* out) override;

 private:
  struct Master {
    std::array<uint8_t, kTicketNameLen> name;
    SecretBytes key;  // 64 bytes
  };
  explicit TicketKeyRing(absl::Duration rotate) : rotate_(rotate) {}
  void RotateIfDue();  // requires mu_

  std::mutex mu_;
  std::vector<Master> masters_;  // [0] seals
  absl::Duration rotate_;        // zero for file keys: never rotated by tlsd
  absl::Time created_ = absl::Now();
};

// DeriveTicketSecrets fills `out->hmac` and `out->aes` from `master` and
// `out->name`, `out->iv`; exposed for tests.
absl::Status DeriveTicketSecrets(absl::Span<const uint8_t> master, TicketSecrets* out);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_TICKET_RING_H_
