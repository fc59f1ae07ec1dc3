#include "tlsd/tls/ktls_types.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace tlsd {

absl::string_view KtlsCipherName(KtlsCipher cipher) {
  switch (cipher) {
    case KtlsCipher::kAes128Gcm:
      return "AES-128-GCM";
    case KtlsCipher::kAes256Gcm:
      return "AES-256-GCM";
    case KtlsCipher::kChaCha20Poly1305:
      return "CHACHA20-POLY1305";
  }
  return "unknown";
}

absl::string_view TlsVersionName(TlsVersion version) {
  switch (version) {
    case TlsVersion::kTls12:
      return "TLSv1.2";
    case TlsVersion::kTls13:
      return "TLSv1.3";
  }
  return "unknown";
}

absl::string_view DirectionName(Direction dir) { return dir == Direction::kTx ? "tx" : "rx"; }

size_t KtlsCipherKeyLen(KtlsCipher cipher) { return cipher == KtlsCipher::kAes128Gcm ? 16 : 32; }

uint16_t Tls13SuiteId(KtlsCipher cipher) {
  switch (cipher) {
    case KtlsCipher::kAes128Gcm:
      return 0x1301;
    case KtlsCipher::kAes256Gcm:
      return 0x1302;
    case KtlsCipher::kChaCha20Poly1305:
      return 0x1303;
  }
  return 0;
}

absl::string_view Tls13DigestName(KtlsCipher cipher) {
  return cipher == KtlsCipher::kAes256Gcm ? "SHA384" : "SHA256";
}

size_t Tls13DigestLen(KtlsCipher cipher) { return cipher == KtlsCipher::kAes256Gcm ? 48 : 32; }

absl::StatusOr<KtlsCipher> KtlsCipherFromSuiteId(uint16_t iana_id) {
  switch (iana_id) {
    case 0x1301:  // TLS_AES_128_GCM_SHA256
    case 0xC02B:  // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    case 0xC02F:  // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    case 0x009E:  // TLS_DHE_RSA_WITH_AES_128_GCM_SHA256
      return KtlsCipher::kAes128Gcm;
    case 0x1302:  // TLS_AES_256_GCM_SHA384
    case 0xC02C:  // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    case 0xC030:  // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    case 0x009F:  // TLS_DHE_RSA_WITH_AES_256_GCM_SHA384
      return KtlsCipher::kAes256Gcm;
    case 0x1303:  // TLS_CHACHA20_POLY1305_SHA256
    case 0xCCA8:  // TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    case 0xCCA9:  // TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    case 0xCCAA:  // TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256
      return KtlsCipher::kChaCha20Poly1305;
    default:
      return absl::NotFoundError(absl::StrFormat("cipher suite 0x%04X: no kTLS AEAD", iana_id));
  }
}

}  // namespace tlsd
