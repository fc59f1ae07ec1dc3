#ifndef TLSD_TLSD_HANDSHAKER_SERVICE_TLS_H_
#define TLSD_TLSD_HANDSHAKER_SERVICE_TLS_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tlsd/config/config.h"
#include "tlsd/handshaker/ticket_keys.h"
#include "tlsd/tls/cert_summary.h"
#include "tlsd/tls/credentials.h"
#include "tlsd/tls/ocsp_staple.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {

// ServiceTls owns the OpenSSL server contexts of one service: one SSL_CTX per
// group of certificates that serve the same names (an RSA and an ECDSA chain
// for the same names share a context, and OpenSSL picks per client), chosen
// per connection by SNI. All contexts of a service are configured
// identically except for their certificates, because OpenSSL reads some
// settings (ALPN, keylog) from whichever context the SNI callback selected.
class ServiceTls {
 public:
  // Create loads every certificate and key of `config` and checks that they
  // match. Errors read "config_source:LINE: service 'NAME': problem", like the
  // parser's, with LINE the certificate's or the service's table.
  // `previous` (may be null) is the context this one replaces on reload:
  // its random session-ticket keys are kept, so that sessions resume across
  // the reload (keys from a ticket_key_file are read again).
  static absl::StatusOr<std::unique_ptr<ServiceTls>> Create(const ServiceConfig& config,
                                                            absl::string_view config_source,
                                                            PrivateKeys& keys,
                                                            const ServiceTls* previous = nullptr);

  ServiceTls(const ServiceTls&) = delete;
  ServiceTls& operator=(const ServiceTls&) = delete;

  // NewSsl makes the per-connection object for an accepted socket. SSL_set_fd
  // borrows `fd`: the caller keeps the socket alive longer than the SSL.
  absl::StatusOr<SslPtr> NewSsl(int fd) const;

  const ServiceConfig& config() const { return config_; }
  // Names each certificate context serves (lowercase), for logs and tests.
  std::vector<std::string> ServedNames() const;
  // The leaf certificate of each context, in config order.
  std::vector<CertSummary> Certificates() const;

 private:
  explicit ServiceTls(const ServiceConfig& config) : config_(config) {}
  absl::StatusOr<SslCtxPtr> NewContext() const;
  SSL_CTX* ForName(absl::string_view sni) const;
  static int OnServerName(SSL* ssl, int* alert, void* arg);
  static int OnAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_len,
                    const unsigned char* in, unsigned int in_len, void* arg);
  static int OnClientHello(SSL* ssl, int* alert, void* arg);
  static int OnStatusRequest(SSL* ssl, void* arg);
  // AddStaple loads the certificate's OCSP response, if usable.
  void AddStaple(SSL_CTX* ctx, const CertificateConfig& cert);

  ServiceConfig config_;
  std::vector<uint8_t> alpn_wire_;                        // server preference, RFC 7301 wire format
  std::shared_ptr<TicketKeys> tickets_;                   // the key holder's, for this service
  std::vector<SslCtxPtr> contexts_;                       // [0] is the default (first certificate)
  absl::flat_hash_map<const X509*, OcspStaple> staples_;  // by leaf certificate
  absl::flat_hash_map<std::string, SSL_CTX*> exact_names_;
  absl::flat_hash_map<std::string, SSL_CTX*> wildcard_parents_;  // "*.a.b" -> "a.b"
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_SERVICE_TLS_H_
