#ifndef TLSD_TESTS_FUZZ_SEALED_STATE_FUZZ_H_
#define TLSD_TESTS_FUZZ_SEALED_STATE_FUZZ_H_

// What sealed_state_fuzzer and its seed generator (gen_fuzz_corpus) share: a
// fixed sealing key, two fixed address pairs, and an independent AES-256-GCM
// implementation of the blob format of tlsd/control/sealed_state.cc
//   u8 format (1) | nonce(12) | AES-256-GCM(state) | tag(16),
//   associated data "tlsd sealed state v1" | local | peer (u8 family,
//   addr[16], u16 port each),
// so the fuzzer can seal arbitrary plaintext and reach the state decoder
// behind the authentication. The fuzzer checks at start-up that this copy of
// the format still opens what Sealer::Seal makes.

#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/wire/messages.h"
#include "tlsd/control/sealed_state.h"

namespace tlsd::fuzz {

inline constexpr size_t kSealNonceLen = 12;
inline constexpr size_t kSealTagLen = 16;

// The fuzz key: 0x00, 0x01, ... 0x1f.
inline std::vector<uint8_t> SealKey() {
  std::vector<uint8_t> key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  return key;
}

// FixedSealer is a Sealer with SealKey(), loaded the way a restarted tlsd
// loads its key from systemd's fd store.
inline std::unique_ptr<Sealer> FixedSealer() {
  const std::vector<uint8_t> key = SealKey();
  const int fd = memfd_create("fuzz-sealing-key", MFD_CLOEXEC);
  if (fd < 0 || pwrite(fd, key.data(), key.size(), 0) != static_cast<ssize_t>(key.size())) {
    abort();
  }
  absl::StatusOr<std::unique_ptr<Sealer>> sealer = Sealer::FromFd(fd);
  close(fd);
  if (!sealer.ok()) abort();
  return std::move(*sealer);
}

// The addresses blobs of sealed_state_fuzzer modes 0 and 1 are bound to,
// and another pair they must not open with.
inline WireAddress LocalA() { return WireAddress{4, {192, 0, 2, 1}, 443}; }
inline WireAddress PeerA() { return WireAddress{4, {198, 51, 100, 7}, 50123}; }
inline WireAddress LocalB() {
  return WireAddress{6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 443};
}
inline WireAddress PeerB() { return WireAddress{4, {198, 51, 100, 7}, 50124}; }

inline std::vector<uint8_t> SealAad(const WireAddress& local, const WireAddress& peer) {
  static constexpr char kLabel[] = "tlsd sealed state v1";
  std::vector<uint8_t> aad(kLabel, kLabel + sizeof(kLabel) - 1);
  for (const WireAddress* a : {&local, &peer}) {
    aad.push_back(a->family);
    aad.insert(aad.end(), a->addr.begin(), a->addr.end());
    aad.push_back(static_cast<uint8_t>(a->port >> 8));
    aad.push_back(static_cast<uint8_t>(a->port));
  }
  return aad;
}

// SealRaw makes a blob of `plain` with SealKey() and a nonce of `nonce_byte`s.
inline std::string SealRaw(absl::Span<const uint8_t> plain, uint8_t nonce_byte,
                           const WireAddress& local, const WireAddress& peer) {
  const std::vector<uint8_t> key = SealKey();
  const std::vector<uint8_t> aad = SealAad(local, peer);
  std::string out(1 + kSealNonceLen + plain.size() + kSealTagLen, '\0');
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  o[0] = 1;
  memset(o + 1, nonce_byte, kSealNonceLen);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), o + 1) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx, o + 1 + kSealNonceLen, &len, plain.data(),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, o + 1 + kSealNonceLen + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kSealTagLen,
                          o + 1 + kSealNonceLen + plain.size()) != 1) {
    abort();
  }
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

// OpenRaw authenticates and decrypts a blob made with SealKey(); false if it
// does not authenticate.
inline bool OpenRaw(absl::string_view blob, const WireAddress& local, const WireAddress& peer,
                    std::vector<uint8_t>* plain) {
  const auto* b = reinterpret_cast<const uint8_t*>(blob.data());
  if (blob.size() < 1 + kSealNonceLen + kSealTagLen || b[0] != 1) return false;
  const size_t ct_len = blob.size() - 1 - kSealNonceLen - kSealTagLen;
  const std::vector<uint8_t> key = SealKey();
  const std::vector<uint8_t> aad = SealAad(local, peer);
  plain->assign(ct_len, 0);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  uint8_t tag[kSealTagLen];
  memcpy(tag, b + 1 + kSealNonceLen + ct_len, kSealTagLen);
  const bool ok =
      ctx != nullptr &&
      EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), b + 1) == 1 &&
      EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx, plain->data(), &len, b + 1 + kSealNonceLen,
                        static_cast<int>(ct_len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kSealTagLen, tag) == 1 &&
      EVP_DecryptFinal_ex(ctx, plain->data() + len, &len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

}  // namespace tlsd::fuzz

#endif  // TLSD_TESTS_FUZZ_SEALED_STATE_FUZZ_H_
