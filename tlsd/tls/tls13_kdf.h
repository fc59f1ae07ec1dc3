#ifndef TLSD_TLSD_TLS_TLS13_KDF_H_
#define TLSD_TLSD_TLS_TLS13_KDF_H_

// The part of the TLS 1.3 key schedule (RFC 8446 7.1-7.3) that tlsd needs
// after the handshake: traffic keys from a traffic secret, and the next
// secret for a KeyUpdate. OpenSSL 3.0 has no public API for either, but its
// "TLS13-KDF" EVP_KDF is exactly HKDF-Expand-Label, so we use that rather
// than hand-rolling HKDF.

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/secret_bytes.h"
#include "tlsd/tls/ktls_types.h"

namespace tlsd {

// HkdfExpandLabel computes HKDF-Expand-Label(secret, label, context, out_len)
// with the "tls13 " prefix, using the hash named by `digest_name` (an OpenSSL
// name such as "SHA256"). `label` is without the prefix. Fails with
// kInvalidArgument for an empty secret or an out_len HKDF cannot produce, and
// kInternal (with the OpenSSL error queue) if the KDF is unavailable.
absl::StatusOr<SecretBytes> HkdfExpandLabel(absl::string_view digest_name,
                                            absl::Span<const uint8_t> secret,
                                            absl::string_view label,
                                            absl::Span<const uint8_t> context, size_t out_len);

// TrafficKeys is the record protection key and the 12-byte per-record nonce
// base ("write_iv") derived from one traffic secret.
struct TrafficKeys {
  SecretBytes key;
  SecretBytes iv;
};

// DeriveTrafficKeys derives key = Expand-Label(secret, "key", "", key_len) and
// iv = Expand-Label(secret, "iv", "", 12) for the TLS 1.3 suite of `cipher`.
// `secret` must be as long as that suite's hash (kInvalidArgument otherwise),
// which catches a secret from the wrong suite before it reaches the kernel.
absl::StatusOr<TrafficKeys> DeriveTrafficKeys(KtlsCipher cipher, absl::Span<const uint8_t> secret);

// NextTrafficSecret computes application_traffic_secret_N+1 =
// Expand-Label(secret_N, "traffic upd", "", Hash.length), the step a
// KeyUpdate takes (RFC 8446 7.2). Same length rule as DeriveTrafficKeys.
absl::StatusOr<SecretBytes> NextTrafficSecret(KtlsCipher cipher, absl::Span<const uint8_t> secret);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_TLS13_KDF_H_
