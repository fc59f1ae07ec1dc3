#ifndef TLSD_TLSD_TLS_CREDENTIALS_H_
#define TLSD_TLSD_TLS_CREDENTIALS_H_

// Loading certificates, keys and trust anchors into OpenSSL contexts with
// errors an operator can act on (the file, and what is wrong with it), for
// service identities and client profiles alike.

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tlsd/tls/ossl_ptr.h"
#include "tlsd/tls/ticket_ring.h"

namespace tlsd {

// CheckReadable fails with "path: <strerror>" when `path` cannot be opened
// for reading. OpenSSL's own file errors name neither the path nor the
// errno in words an operator can act on, so every file is tried here first.
absl::Status CheckReadable(const std::string& path);

// PrivateKeys gives the private key to install for a certificate: the key
// itself (LocalPrivateKeys: tlsd --check-config, the key holder) or a
// stand-in whose private operations another process performs (the serving
// daemon's key holder, tlsd/keyholder/).
class PrivateKeys {
 public:
  virtual ~PrivateKeys() = default;
  // Key returns the key for `key_path`, checked against `leaf`, the
  // certificate it is for (loaded from `cert_path`, named in errors).
  virtual absl::StatusOr<EvpPkeyPtr> Key(const std::string& cert_path, X509* leaf,
                                         const std::string& key_path) = 0;
  // TicketKeys gives a service's session-ticket keys: from `key_file`, or
  // random and rotated every `rotate` when it is empty. Errors name the file.
  virtual absl::StatusOr<std::shared_ptr<TicketKeys>> Tickets(const std::string& key_file,
                                                              absl::Duration rotate) = 0;
};

// LocalPrivateKeys reads keys in this process: PEM files, or the first
// private key an OpenSSL store URI yields.
class LocalPrivateKeys : public PrivateKeys {
 public:
  absl::StatusOr<EvpPkeyPtr> Key(const std::string& cert_path, X509* leaf,
                                 const std::string& key_path) override;
  absl::StatusOr<std::shared_ptr<TicketKeys>> Tickets(const std::string& key_file,
                                                      absl::Duration rotate) override;
};

// LoadCertificate reads the leaf (first) certificate of the chain file.
absl::StatusOr<X509Ptr> LoadCertificate(const std::string& cert_path);

// UseCertificate adds one chain (`cert_path`, leaf first) and the private
// key `keys` gives for it to `ctx`. The key is checked against the leaf
// before OpenSSL takes it, so a mismatch is reported as one rather than as
// "key values mismatch".
absl::Status UseCertificate(SSL_CTX* ctx, const std::string& cert_path, const std::string& key_path,
                            PrivateKeys& keys);

// UseCrls makes `ctx` check the peer's (leaf) certificate against the CRLs
// at `path`: a PEM file with one or more CRLs, or a directory of them in
// OpenSSL's hashed layout. A revoked certificate fails the handshake with a
// certificate_revoked alert; a certificate whose issuer has no CRL there
// fails too (unable to get CRL), so list one per client CA.
absl::Status UseCrls(SSL_CTX* ctx, const std::string& path);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_CREDENTIALS_H_
