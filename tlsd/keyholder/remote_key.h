#ifndef TLSD_TLSD_KEYHOLDER_REMOTE_KEY_H_
#define TLSD_TLSD_KEYHOLDER_REMOTE_KEY_H_

// RemoteKey builds the engine's stand-in for a private key the key holder
// keeps: an EVP_PKEY with the certificate's public key and a key method
// (OpenSSL's EC_KEY_METHOD / RSA_METHOD, which libssl 3.0 still drives for
// such "foreign" keys) whose private operations call KeyHolder::Sign.

#include <stdint.h>

#include "absl/status/statusor.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd::keyholder {

class KeyHolder;

// MakeRemoteKey returns a key with `public_key`'s public half whose signing
// goes to `holder` as key `key_id`. `holder` must outlive the key and every
// SSL_CTX that uses it. EC and RSA keys only.
absl::StatusOr<EvpPkeyPtr> MakeRemoteKey(EVP_PKEY* public_key, KeyHolder* holder, uint32_t key_id);

}  // namespace tlsd::keyholder

#endif  // TLSD_TLSD_KEYHOLDER_REMOTE_KEY_H_
