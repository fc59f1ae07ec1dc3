#include "tlsd/control/sealed_state.h"

#include <unistd.h>

#include <sys/mman.h>

#include <fcntl.h>

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "common/wire/byte_io.h"
#include "tlsd/tls/ossl_ptr.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace tlsd {
namespace {

constexpr uint8_t kFormat = 1;
constexpr size_t kNonceLen = 12;
constexpr size_t kTagLen = 16;
constexpr size_t kKeyLen = 32;
constexpr char kAadLabel[] = "tlsd sealed state v1";

std::vector<uint8_t> Aad(const WireAddress& local, const WireAddress& peer) {
  ByteWriter w;
  w.WriteBytes(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(kAadLabel), sizeof(kAadLabel) - 1));
  for (const WireAddress* a : {&local, &peer}) {
    w.WriteU8(a->family);
    w.WriteBytes(a->addr);
    w.WriteU16(a->port);
  }
  return w.Take();
}

SecretBytes EncodeState(const ConnState& s) {
  ByteWriter w;
  w.WriteU8(s.is_server ? 1 : 0);
  w.WriteU16(s.tls_version);
  w.WriteU16(s.cipher_suite);
  w.WriteU64(s.connection_id);
  w.WriteU32(s.rx_generation);
  w.WriteU32(s.tx_generation);
  w.WriteU8Prefixed(
      absl::string_view(reinterpret_cast<const char*>(s.rx_secret.data()), s.rx_secret.size()));
  w.WriteU8Prefixed(
      absl::string_view(reinterpret_cast<const char*>(s.tx_secret.data()), s.tx_secret.size()));
  w.WriteBytes(s.rx_key_hash);
  w.WriteBytes(s.tx_key_hash);
  w.WriteU32(s.window_records);
  w.WriteU64(s.window_start_ms);
  std::vector<uint8_t> bytes = w.Take();
  SecretBytes out(absl::MakeConstSpan(bytes));
  SecureZero(bytes.data(), bytes.size());
  return out;
}

absl::StatusOr<ConnState> DecodeState(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  ConnState s;
  uint8_t is_server;
  absl::string_view rx, tx;
  absl::Span<const uint8_t> rx_hash, tx_hash;
  if (!r.ReadU8(&is_server) || is_server > 1 || !r.ReadU16(&s.tls_version) ||
      !r.ReadU16(&s.cipher_suite) || !r.ReadU64(&s.connection_id) || !r.ReadU32(&s.rx_generation) ||
      !r.ReadU32(&s.tx_generation) || !r.ReadU8Prefixed(&rx) || !r.ReadU8Prefixed(&tx) ||
      !r.ReadBytes(32, &rx_hash) || !r.ReadBytes(32, &tx_hash) || !r.ReadU32(&s.window_records) ||
      !r.ReadU64(&s.window_start_ms) || !r.empty()) {
    // Only tlsd can produce an authentic blob, so this is a tlsd bug or a
    // key shared with an incompatible version.
    return absl::InvalidArgumentError("sealed state: authentic but malformed");
  }
  s.is_server = is_server == 1;
  s.rx_secret =
      SecretBytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(rx.data()), rx.size()));
  s.tx_secret =
      SecretBytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(tx.data()), tx.size()));
  std::copy(rx_hash.begin(), rx_hash.end(), s.rx_key_hash.begin());
  std::copy(tx_hash.begin(), tx_hash.end(), s.tx_key_hash.begin());
  return s;
}

using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CDeleter<&EVP_CIPHER_CTX_free>>;

}  // namespace

std::unique_ptr<Sealer> Sealer::Random() {
  SecretBytes key(kKeyLen);
  TLSD_CHECK(RAND_priv_bytes(key.data(), key.size()) == 1);  // no DRBG: no TLS at all
  return std::unique_ptr<Sealer>(new Sealer(std::move(key)));
}

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::FromFile(absl::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open sealing key"));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  SecretBytes key(absl::MakeConstSpan(bytes));
  SecureZero(bytes.data(), bytes.size());
  if (key.size() != kKeyLen) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": sealing key must be 32 bytes, is ", key.size()));
  }
  return std::unique_ptr<Sealer>(new Sealer(std::move(key)));
}

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::FromFd(int fd) {
  std::vector<uint8_t> bytes(kKeyLen + 1);
  const ssize_t n = pread(fd, bytes.data(), bytes.size(), 0);
  if (n != static_cast<ssize_t>(kKeyLen)) {
    SecureZero(bytes.data(), bytes.size());
    return absl::InvalidArgumentError(
        absl::StrCat("sealing key fd: want ", kKeyLen, " bytes, got ", n));
  }
  SecretBytes key(absl::MakeConstSpan(bytes.data(), kKeyLen));
  SecureZero(bytes.data(), bytes.size());
  return std::unique_ptr<Sealer>(new Sealer(std::move(key)));
}

absl::StatusOr<UniqueFd> Sealer::KeyMemfd() const {
  UniqueFd fd(memfd_create("tlsd-sealing-key", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return ErrnoToStatus(errno, "memfd_create");
  if (pwrite(fd.get(), key_.data(), key_.size(), 0) != static_cast<ssize_t>(key_.size())) {
    return ErrnoToStatus(errno, "write sealing key");
  }
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return ErrnoToStatus(errno, "seal memfd");
  }
  return fd;
}

std::string Sealer::Seal(const ConnState& state, const WireAddress& local,
                         const WireAddress& peer) const {
  SecretBytes plain = EncodeState(state);
  const std::vector<uint8_t> aad = Aad(local, peer);
  std::string out(1 + kNonceLen + plain.size() + kTagLen, '\0');
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  o[0] = kFormat;
  // A random 96-bit nonce per blob: at the rates tlsd seals (one per
  // handshake or control record) collisions are negligible for a key's life.
  TLSD_CHECK(RAND_bytes(o + 1, kNonceLen) == 1);
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  TLSD_CHECK(ctx &&
             EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), o + 1) == 1);
  TLSD_CHECK(EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), aad.size()) == 1);
  TLSD_CHECK(EVP_EncryptUpdate(ctx.get(), o + 1 + kNonceLen, &len, plain.data(), plain.size()) ==
             1);
  TLSD_CHECK(EVP_EncryptFinal_ex(ctx.get(), o + 1 + kNonceLen + len, &len) == 1);
  TLSD_CHECK(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagLen,
                                 o + 1 + kNonceLen + plain.size()) == 1);
  return out;
}

absl::StatusOr<ConnState> Sealer::Open(absl::string_view blob, const WireAddress& local,
                                       const WireAddress& peer) const {
  const auto* b = reinterpret_cast<const uint8_t*>(blob.data());
  if (blob.size() < 1 + kNonceLen + kTagLen || b[0] != kFormat) {
    return absl::InvalidArgumentError("sealed state: unknown format or too short");
  }
  const size_t ct_len = blob.size() - 1 - kNonceLen - kTagLen;
  const std::vector<uint8_t> aad = Aad(local, peer);
  SecretBytes plain(ct_len);
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), b + 1) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), aad.size()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain.data(), &len, b + 1 + kNonceLen, ct_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagLen,
                          const_cast<uint8_t*>(b + 1 + kNonceLen + ct_len)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &len) != 1) {
    return absl::InvalidArgumentError(
        "sealed state: does not authenticate (forged, another tlsd's, or another connection's)");
  }
  return DecodeState(plain.span());
}

absl::StatusOr<KeyHash> KernelKeyHash(int fd, bool tx) {
  // The largest crypto_info the kernel returns; only the key is hashed.
  union {
    tls_crypto_info info;
    tls12_crypto_info_aes_gcm_128 gcm128;
    tls12_crypto_info_aes_gcm_256 gcm256;
    tls12_crypto_info_chacha20_poly1305 chacha;
  } ci;
  Wiped<decltype(ci)> wiped;
  // The kernel accepts only the header's size or the cipher's exact struct
  // size (40 bytes for AES-128-GCM), so ask for the cipher type first.
  socklen_t len = sizeof(tls_crypto_info);
  const int opt = tx ? TLS_TX : TLS_RX;
  if (getsockopt(fd, SOL_TLS, opt, &wiped.value, &len) != 0) {
    return ErrnoToStatus(errno, tx ? "getsockopt(TLS_TX)" : "getsockopt(TLS_RX)");
  }
  switch (wiped.value.info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
      len = sizeof(wiped.value.gcm128);
      break;
    case TLS_CIPHER_AES_GCM_256:
      len = sizeof(wiped.value.gcm256);
      break;
    case TLS_CIPHER_CHACHA20_POLY1305:
      len = sizeof(wiped.value.chacha);
      break;
    default:
      len = 0;
      break;
  }
  if (len != 0 && getsockopt(fd, SOL_TLS, opt, &wiped.value, &len) != 0) {
    return ErrnoToStatus(errno, tx ? "getsockopt(TLS_TX)" : "getsockopt(TLS_RX)");
  }
  const uint8_t* key = nullptr;
  size_t key_len = 0;
  switch (wiped.value.info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
      key = wiped.value.gcm128.key;
      key_len = sizeof(wiped.value.gcm128.key);
      break;
    case TLS_CIPHER_AES_GCM_256:
      key = wiped.value.gcm256.key;
      key_len = sizeof(wiped.value.gcm256.key);
      break;
    case TLS_CIPHER_CHACHA20_POLY1305:
      key = wiped.value.chacha.key;
      key_len = sizeof(wiped.value.chacha.key);
      break;
    default:
      return absl::FailedPreconditionError(absl::StrCat(
          "kTLS cipher type ", wiped.value.info.cipher_type, " is not one tlsd installs"));
  }
  KeyHash hash{};
  unsigned int hash_len = 0;
  if (EVP_Digest(key, key_len, hash.data(), &hash_len, EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("SHA-256 failed");
  }
  return hash;
}

absl::Status SocketAddresses(int fd, WireAddress* out_local, WireAddress* out_peer) {
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return ErrnoToStatus(errno, "getsockname");
  }
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    return ErrnoToStatus(errno, "getpeername");
  }
  *out_local = WireAddressFromSockaddr(local);
  *out_peer = WireAddressFromSockaddr(peer);
  return absl::OkStatus();
}

}  // namespace tlsd
