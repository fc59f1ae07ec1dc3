#ifndef TLSD_COMMON_BASE_SECRET_BYTES_H_
#define TLSD_COMMON_BASE_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/types/span.h"

namespace tlsd {

// SecureZero clears memory in a way the compiler may not elide (the same
// guarantee as OPENSSL_cleanse, without making common/ link OpenSSL).
inline void SecureZero(void* p, size_t len) {
  if (len == 0) return;
  std::memset(p, 0, len);
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

// SecretBytes holds key material: fixed size at construction, cleared on
// destruction and on move-from. Move-only so secrets are never copied by
// accident.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t len) : bytes_(len, 0) {}
  explicit SecretBytes(absl::Span<const uint8_t> src) : bytes_(src.begin(), src.end()) {}
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
    other.bytes_.clear();
  }
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    Clear();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() { Clear(); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  absl::Span<const uint8_t> span() const { return absl::MakeConstSpan(bytes_); }
  absl::Span<uint8_t> mutable_span() { return absl::MakeSpan(bytes_); }

 private:
  void Clear() {
    SecureZero(bytes_.data(), bytes_.size());
    bytes_.clear();
  }
  std::vector<uint8_t> bytes_;
};

// Wiped<T> holds a plain struct (e.g. tls12_crypto_info_aes_gcm_128) that
// carries key material, and clears it on destruction.
template <typename T>
struct Wiped {
  T value{};
  Wiped() = default;
  Wiped(const Wiped&) = delete;
  Wiped& operator=(const Wiped&) = delete;
  ~Wiped() { SecureZero(&value, sizeof(value)); }
};

}  // namespace tlsd

#endif  // TLSD_COMMON_BASE_SECRET_BYTES_H_
