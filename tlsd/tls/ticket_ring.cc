#include "tlsd/tls/ticket_ring.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "tlsd/tls/ossl_error.h"

namespace tlsd {
namespace {

constexpr size_t kMasterLen = 64;
constexpr size_t kKeyFileEntryLen = kTicketNameLen + kMasterLen;
// HKDF's info: what the output is for, and the ticket it is for.
constexpr absl::string_view kInfoLabel = "tlsd session ticket keys v1";

struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

}  // namespace

absl::Status DeriveTicketSecrets(absl::Span<const uint8_t> master, TicketSecrets* out) {
  // One fetch per process: EVP_KDF_fetch walks the provider tables.
  static EVP_KDF* const hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (hkdf == nullptr) return OsslError(absl::StatusCode::kInternal, "fetch HKDF");
  std::unique_ptr<EVP_KDF_CTX, KdfDeleter> ctx(EVP_KDF_CTX_new(hkdf));
  if (!ctx) return OsslError(absl::StatusCode::kInternal, "HKDF context");
  std::vector<uint8_t> info(kInfoLabel.begin(), kInfoLabel.end());
  info.insert(info.end(), out->iv.begin(), out->iv.end());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(master.data()),
                                        master.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, out->name.data(), out->name.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  SecretBytes both(2 * kTicketKeyLen);
  if (EVP_KDF_derive(ctx.get(), both.data(), both.size(), params) != 1) {
    return OsslError(absl::StatusCode::kInternal, "HKDF");
  }
  out->hmac = SecretBytes(both.span().subspan(0, kTicketKeyLen));
  out->aes = SecretBytes(both.span().subspan(kTicketKeyLen, kTicketKeyLen));
  return absl::OkStatus();
}

std::unique_ptr<TicketKeyRing> TicketKeyRing::Random(absl::Duration rotate) {
  std::unique_ptr<TicketKeyRing> ring(new TicketKeyRing(rotate));
  std::lock_guard<std::mutex> lock(ring->mu_);
  ring->created_ = absl::InfinitePast();  // RotateIfDue makes the first master
  ring->RotateIfDue();
  return ring;
}

absl::StatusOr<std::unique_ptr<TicketKeyRing>> TicketKeyRing::FromFile(absl::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return ErrnoToStatus(errno, absl::StrCat("ticket_key_file ", path));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  SecretBytes raw(absl::MakeConstSpan(bytes));
  SecureZero(bytes.data(), bytes.size());
  if (raw.empty() || raw.size() % kKeyFileEntryLen != 0) {
    return absl::InvalidArgumentError(absl::StrCat("ticket_key_file ", path,
                                                   ": must hold one or more 80-byte keys, has ",
                                                   raw.size(), " bytes"));
  }
  std::unique_ptr<TicketKeyRing> ring(new TicketKeyRing(absl::ZeroDuration()));
  for (size_t off = 0; off < raw.size(); off += kKeyFileEntryLen) {
    Master m{{}, SecretBytes(raw.span().subspan(off + kTicketNameLen, kMasterLen))};
    memcpy(m.name.data(), raw.data() + off, kTicketNameLen);
    ring->masters_.push_back(std::move(m));
  }
  return ring;
}

void TicketKeyRing::RotateIfDue() {
  if (!masters_.empty() && (rotate_ == absl::ZeroDuration() || absl::Now() - created_ < rotate_)) {
    return;
  }
  Master m{{}, SecretBytes(kMasterLen)};
  // RAND_bytes fails only if the DRBG cannot be seeded, which makes every
  // handshake impossible anyway.
  TLSD_CHECK(RAND_bytes(m.name.data(), m.name.size()) == 1);
  TLSD_CHECK(RAND_priv_bytes(m.key.data(), m.key.size()) == 1);
  masters_.insert(masters_.begin(), std::move(m));
  if (masters_.size() > 2) masters_.pop_back();
  created_ = absl::Now();
}

absl::StatusOr<TicketSecrets> TicketKeyRing::ForNewTicket() {
  TicketSecrets out;
  if (RAND_bytes(out.iv.data(), out.iv.size()) != 1) {
    return OsslError(absl::StatusCode::kInternal, "ticket IV");
  }
  std::lock_guard<std::mutex> lock(mu_);
  RotateIfDue();
  out.name = masters_.front().name;
  if (absl::Status s = DeriveTicketSecrets(masters_.front().key.span(), &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<TicketKeyState> TicketKeyRing::ForTicket(absl::Span<const uint8_t> name,
                                                        absl::Span<const uint8_t> iv,
                                                        TicketSecrets* out) {
  if (name.size() != kTicketNameLen || iv.size() != kTicketIvLen) {
    return absl::InvalidArgumentError("ticket key name or IV of the wrong size");
  }
  std::copy(name.begin(), name.end(), out->name.begin());
  std::copy(iv.begin(), iv.end(), out->iv.begin());
  std::lock_guard<std::mutex> lock(mu_);
  RotateIfDue();
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (memcmp(name.data(), masters_[i].name.data(), kTicketNameLen) != 0) continue;
    if (absl::Status s = DeriveTicketSecrets(masters_[i].key.span(), out); !s.ok()) return s;
    return i == 0 ? TicketKeyState::kCurrent : TicketKeyState::kRenew;
  }
  return TicketKeyState::kUnknown;
}

}  // namespace tlsd
