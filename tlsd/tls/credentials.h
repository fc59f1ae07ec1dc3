#ifndef TLSD_TLSD_TLS_CREDENTIALS_H_
#define TLSD_TLSD_TLS_CREDENTIALS_H_

// Loading certificates, keys and trust anchors into OpenSSL contexts with
// errors an operator can act on (the file, and what is wrong with it), for
// service identities and client profiles alike.

#include <openssl/ssl.h>

#include <string>

#include "absl/status/status.h"

namespace tlsd {

// CheckReadable fails with "path: <strerror>" when `path` cannot be opened
// for reading. OpenSSL's own file errors name neither the path nor the
// errno in words an operator can act on, so every file is tried here first.
absl::Status CheckReadable(const std::string& path);

// UseCertificate adds one chain (`cert_path`, leaf first) and its private key
// to `ctx`. The key is checked against the leaf before OpenSSL takes it, so
// a mismatch is reported as one rather than as "key values mismatch".
absl::Status UseCertificate(SSL_CTX* ctx, const std::string& cert_path,
                            const std::string& key_path);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_CREDENTIALS_H_
