#include "tlsd/keyholder/remote_tickets.h"

#include <algorithm>
#include <vector>

#include "common/base/secret_bytes.h"
#include "tlsd/keyholder/client.h"

namespace tlsd::keyholder {
namespace {

constexpr size_t kKeysLen = 2 * kTicketKeyLen;

// Wiping clears a reply that carried a ticket's keys when it goes.
struct Wiping {
  std::vector<uint8_t> bytes;
  ~Wiping() { SecureZero(bytes.data(), bytes.size()); }
};

void TakeKeys(absl::Span<const uint8_t> keys, TicketSecrets* out) {
  out->hmac = SecretBytes(keys.subspan(0, kTicketKeyLen));
  out->aes = SecretBytes(keys.subspan(kTicketKeyLen, kTicketKeyLen));
}

class RemoteTicketKeys : public TicketKeys {
 public:
  RemoteTicketKeys(KeyHolder* holder, uint32_t ring_id) : holder_(holder), ring_id_(ring_id) {}

  absl::StatusOr<TicketSecrets> ForNewTicket() override {
    absl::StatusOr<std::vector<uint8_t>> reply = holder_->Sign(ring_id_, SignOp::kTicketNew, {});
    if (!reply.ok()) return reply.status();
    Wiping r{*std::move(reply)};
    if (r.bytes.size() != kTicketNameLen + kTicketIvLen + kKeysLen) {
      return absl::InternalError("key holder: malformed ticket keys");
    }
    TicketSecrets out;
    std::copy_n(r.bytes.begin(), kTicketNameLen, out.name.begin());
    std::copy_n(r.bytes.begin() + kTicketNameLen, kTicketIvLen, out.iv.begin());
    TakeKeys(absl::MakeConstSpan(r.bytes).subspan(kTicketNameLen + kTicketIvLen), &out);
    return out;
  }

  absl::StatusOr<TicketKeyState> ForTicket(absl::Span<const uint8_t> name,
                                           absl::Span<const uint8_t> iv,
                                           TicketSecrets* out) override {
    if (name.size() != kTicketNameLen || iv.size() != kTicketIvLen) {
      return absl::InvalidArgumentError("ticket key name or IV of the wrong size");
    }
    std::vector<uint8_t> input(name.begin(), name.end());
    input.insert(input.end(), iv.begin(), iv.end());
    absl::StatusOr<std::vector<uint8_t>> reply =
        holder_->Sign(ring_id_, SignOp::kTicketOpen, input);
    if (!reply.ok()) return reply.status();
    Wiping r{*std::move(reply)};
    const uint8_t state = r.bytes.empty() ? 0xff : r.bytes[0];
    std::copy(name.begin(), name.end(), out->name.begin());
    std::copy(iv.begin(), iv.end(), out->iv.begin());
    if (state == static_cast<uint8_t>(TicketKeyState::kUnknown) && r.bytes.size() == 1) {
      return TicketKeyState::kUnknown;
    }
    if ((state != static_cast<uint8_t>(TicketKeyState::kCurrent) &&
         state != static_cast<uint8_t>(TicketKeyState::kRenew)) ||
        r.bytes.size() != 1 + kKeysLen) {
      return absl::InternalError("key holder: malformed ticket keys");
    }
    TakeKeys(absl::MakeConstSpan(r.bytes).subspan(1), out);
    return static_cast<TicketKeyState>(state);
  }

 private:
  KeyHolder* const holder_;
  const uint32_t ring_id_;
};

}  // namespace

std::shared_ptr<TicketKeys> MakeRemoteTicketKeys(KeyHolder* holder, uint32_t ring_id) {
  return std::make_shared<RemoteTicketKeys>(holder, ring_id);
}

}  // namespace tlsd::keyholder
