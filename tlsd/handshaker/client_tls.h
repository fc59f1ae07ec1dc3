#ifndef TLSD_TLSD_HANDSHAKER_CLIENT_TLS_H_
#define TLSD_TLSD_HANDSHAKER_CLIENT_TLS_H_

// ClientTls is the OpenSSL side of one [[client_profile]]: the client context
// (trust store, optional client identity, versions, kTLS) and the sessions
// kept per destination so that later connections to it resume.

#include <openssl/ssl.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tlsd/config/config.h"
#include "tlsd/handshaker/metrics.h"
#include "tlsd/tls/credentials.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {

class ClientTls {
 public:
  // Create builds the context. Errors read "config_source:LINE: client
  // profile 'NAME': problem" (unreadable trust store, key not matching its
  // certificate, ...).
  static absl::StatusOr<std::unique_ptr<ClientTls>> Create(const ClientProfileConfig& config,
                                                           absl::string_view config_source,
                                                           PrivateKeys& keys);
  ~ClientTls();
  ClientTls(const ClientTls&) = delete;
  ClientTls& operator=(const ClientTls&) = delete;

  // NewSsl makes the object for one outgoing connection on `fd` (borrowed:
  // the caller keeps the socket alive longer than the SSL): verification of
  // the chain and of `host` (a name, or an IP address checked against the
  // certificate's IP SANs), SNI (`sni`, or `host` when it is a name), ALPN,
  // and the destination's last session when there is one. Thread-safe.
  absl::StatusOr<SslPtr> NewSsl(int fd, const std::string& host, uint16_t port,
                                const std::string& sni, const std::vector<std::string>& alpn) const;

  const ClientProfileConfig& config() const { return config_; }
  // The profile's outgoing connections, counted by whichever thread runs them.
  EndpointMetrics& metrics() const { return metrics_; }

 private:
  mutable EndpointMetrics metrics_;
  explicit ClientTls(const ClientProfileConfig& config) : config_(config) {}
  // OpenSSL's new-session callback: keeps the session for its destination.
  static int OnNewSession(SSL* ssl, SSL_SESSION* session);

  const ClientProfileConfig config_;
  SslCtxPtr ctx_;
  mutable std::mutex mu_;
  // "host:port" -> the newest session for it (one reference owned here).
  mutable std::map<std::string, SSL_SESSION*> sessions_;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_CLIENT_TLS_H_
