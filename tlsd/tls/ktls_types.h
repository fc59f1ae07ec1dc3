#ifndef TLSD_TLSD_TLS_KTLS_TYPES_H_
#define TLSD_TLSD_TLS_KTLS_TYPES_H_

// Vocabulary shared by the kTLS installer and the TLS 1.3 key schedule. No
// OpenSSL or kernel headers here, so the metadata codec can name a cipher or
// a mode without linking either.

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsd {

// TlsVersion is the protocol version as it appears on the wire (and in the
// kernel's tls_crypto_info.version).
enum class TlsVersion : uint16_t {
  kTls12 = 0x0303,
  kTls13 = 0x0304,
};

// KtlsCipher is one of the record-protection AEADs that both Linux kTLS and
// tlsd support. AES-CCM, SM4 and ARIA are deliberately absent: tlsd never
// negotiates them.
enum class KtlsCipher {
  kAes128Gcm,
  kAes256Gcm,
  kChaCha20Poly1305,
};

// Direction of a kTLS installation on a socket: TX encrypts what we send,
// RX decrypts what the peer sent.
enum class Direction {
  kTx,
  kRx,
};

// The per-record nonce base of every supported AEAD is 12 bytes
// (RFC 8446 5.3; RFC 5288 salt 4 + explicit 8; RFC 7905).
inline constexpr size_t kTlsAeadIvLen = 12;

// KtlsCipherName returns a stable name ("AES-128-GCM", ...) for logs and
// metadata.
absl::string_view KtlsCipherName(KtlsCipher cipher);

// TlsVersionName returns "TLSv1.2" or "TLSv1.3".
absl::string_view TlsVersionName(TlsVersion version);

// DirectionName returns "tx" or "rx".
absl::string_view DirectionName(Direction dir);

// KtlsCipherKeyLen is the AEAD key length in bytes (16 or 32).
size_t KtlsCipherKeyLen(KtlsCipher cipher);

// Tls13SuiteId is the IANA id of the TLS 1.3 suite that uses this AEAD
// (0x1301 TLS_AES_128_GCM_SHA256, 0x1302 TLS_AES_256_GCM_SHA384,
// 0x1303 TLS_CHACHA20_POLY1305_SHA256).
uint16_t Tls13SuiteId(KtlsCipher cipher);

// Tls13DigestName is the OpenSSL name of the hash of that TLS 1.3 suite, which
// is the hash of its key schedule ("SHA256" or "SHA384").
absl::string_view Tls13DigestName(KtlsCipher cipher);

// Tls13DigestLen is the output length of Tls13DigestName, which is also the
// length of every traffic secret of that suite (32 or 48).
size_t Tls13DigestLen(KtlsCipher cipher);

// KtlsCipherFromSuiteId maps an IANA cipher suite id to its record AEAD:
// the three TLS 1.3 suites and the TLS 1.2 ECDHE/DHE AEAD suites. Anything
// else (CBC suites, CCM, PSK-only suites) is kNotFound: kTLS is not offered
// for it.
absl::StatusOr<KtlsCipher> KtlsCipherFromSuiteId(uint16_t iana_id);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_KTLS_TYPES_H_
