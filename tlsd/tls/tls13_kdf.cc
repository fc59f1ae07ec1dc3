#include "tlsd/tls/tls13_kdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "tlsd/tls/ossl_error.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {
namespace {

constexpr char kLabelPrefix[] = "tls13 ";

// HKDF-Expand-Label's HkdfLabel encodes the label (prefix included) with a
// one-byte length, so it is at most 255 bytes, and the context likewise.
constexpr size_t kMaxLabelLen = 255 - (sizeof(kLabelPrefix) - 1);
constexpr size_t kMaxContextLen = 255;

absl::Status CheckSecretLen(KtlsCipher cipher, absl::Span<const uint8_t> secret) {
  if (secret.size() != Tls13DigestLen(cipher)) {
    return absl::InvalidArgumentError(absl::StrCat("traffic secret for ", KtlsCipherName(cipher),
                                                   ": ", secret.size(), " bytes, want ",
                                                   Tls13DigestLen(cipher)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SecretBytes> HkdfExpandLabel(absl::string_view digest_name,
                                            absl::Span<const uint8_t> secret,
                                            absl::string_view label,
                                            absl::Span<const uint8_t> context, size_t out_len) {
  if (secret.empty()) {
    return absl::InvalidArgumentError("HKDF-Expand-Label: empty secret");
  }
  if (label.size() > kMaxLabelLen || context.size() > kMaxContextLen) {
    return absl::InvalidArgumentError("HKDF-Expand-Label: label or context too long");
  }
  // The length field of HkdfLabel is a uint16; HKDF itself caps out_len at
  // 255 * Hash.length, which the KDF enforces below.
  if (out_len == 0 || out_len > 0xFFFF) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF-Expand-Label: bad output length ", out_len));
  }

  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_TLS1_3_KDF, nullptr));
  if (kdf == nullptr) {
    return OsslError(absl::StatusCode::kInternal, "HKDF-Expand-Label: fetch TLS13-KDF");
  }
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) {
    return OsslError(absl::StatusCode::kResourceExhausted, "HKDF-Expand-Label: new KDF context");
  }

  // OSSL_PARAM wants non-const pointers; the KDF only reads these.
  std::string digest(digest_name);
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[7];
  OSSL_PARAM* p = params;
  *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()),
                                           secret.size());
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, const_cast<char*>(kLabelPrefix),
                                           sizeof(kLabelPrefix) - 1);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, const_cast<char*>(label.data()),
                                           label.size());
  // An absent DATA parameter is an empty context, which is what traffic key
  // derivation uses; OpenSSL's own tls13_hkdf_expand omits it the same way.
  if (!context.empty()) {
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA,
                                             const_cast<uint8_t*>(context.data()), context.size());
  }
  *p = OSSL_PARAM_construct_end();

  SecretBytes out(out_len);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return OsslError(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("HKDF-Expand-Label(", digest_name, ", \"", label, "\", ", out_len, ")"));
  }
  return out;
}

absl::StatusOr<TrafficKeys> DeriveTrafficKeys(KtlsCipher cipher, absl::Span<const uint8_t> secret) {
  TLSD_RETURN_IF_ERROR(CheckSecretLen(cipher, secret));
  TrafficKeys keys;
  TLSD_ASSIGN_OR_RETURN(keys.key, HkdfExpandLabel(Tls13DigestName(cipher), secret, "key", {},
                                                  KtlsCipherKeyLen(cipher)));
  TLSD_ASSIGN_OR_RETURN(keys.iv,
                        HkdfExpandLabel(Tls13DigestName(cipher), secret, "iv", {}, kTlsAeadIvLen));
  return keys;
}

absl::StatusOr<SecretBytes> NextTrafficSecret(KtlsCipher cipher, absl::Span<const uint8_t> secret) {
  TLSD_RETURN_IF_ERROR(CheckSecretLen(cipher, secret));
  return HkdfExpandLabel(Tls13DigestName(cipher), secret, "traffic upd", {},
                         Tls13DigestLen(cipher));
}

}  // namespace tlsd
