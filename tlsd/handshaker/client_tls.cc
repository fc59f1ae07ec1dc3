#include "tlsd/handshaker/client_tls.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "tlsd/tls/credentials.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/ossl_error.h"

namespace tlsd {
namespace {

// The destination a connection's sessions belong to, kept on the SSL.
int DestinationIndex() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
         void* /*argp*/) { delete static_cast<std::string*>(ptr); });
  return index;
}

int OwnerIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool IsAddress(const std::string& host) {
  in_addr a4;
  in6_addr a6;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClientTls>> ClientTls::Create(const ClientProfileConfig& config,
                                                             absl::string_view config_source,
                                                             PrivateKeys& keys) {
  auto at = [&](const absl::Status& s) {
    return absl::Status(
        s.code(), absl::StrCat(config_source, ":", config.line, ": client profile '", config.name,
                               "': ", s.message()));
  };
  std::unique_ptr<ClientTls> c(new ClientTls(config));
  c->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = c->ctx_.get();
  if (ctx == nullptr) return at(OsslError(absl::StatusCode::kInternal, "SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx, config.min_version);
  SSL_CTX_set_max_proto_version(ctx, config.max_version);
  if (absl::Status s = ConfigureForKernelTls(ctx); !s.ok()) return at(s);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // The relay writes from its own buffers, which may move between retries.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Only the ciphers the kernel can take, as for services.
  if (SSL_CTX_set_cipher_list(ctx,
                              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
    return at(OsslError(absl::StatusCode::kInternal, "cipher list"));
  }
  if (config.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return at(OsslError(absl::StatusCode::kInternal, "default trust store"));
    }
  } else {
    if (absl::Status s = CheckReadable(config.ca_file); !s.ok()) {
      return at(absl::Status(s.code(), absl::StrCat("ca_file ", s.message())));
    }
    if (SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr) != 1) {
      return at(
          OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("ca_file ", config.ca_file)));
    }
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!config.cert_path.empty()) {
    // The key is the key holder's to open (PrivateKeys), never this process's.
    if (absl::Status s = CheckReadable(config.cert_path); !s.ok()) return at(s);
    if (absl::Status s = UseCertificate(ctx, config.cert_path, config.key_path, keys); !s.ok()) {
      return at(s);
    }
  }
  if (config.session_resumption) {
    // Sessions are kept per destination here, not in OpenSSL's cache (which
    // has no notion of where a session may be used again).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &ClientTls::OnNewSession);
    SSL_CTX_set_ex_data(ctx, OwnerIndex(), c.get());
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }
  return c;
}

ClientTls::~ClientTls() {
  for (auto& [dest, session] : sessions_) SSL_SESSION_free(session);
}

int ClientTls::OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<ClientTls*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), OwnerIndex()));
  auto* dest = static_cast<std::string*>(SSL_get_ex_data(ssl, DestinationIndex()));
  if (self == nullptr || dest == nullptr) return 0;
  std::lock_guard<std::mutex> lock(self->mu_);
  SSL_SESSION*& slot = self->sessions_[*dest];
  if (slot != nullptr) SSL_SESSION_free(slot);
  slot = session;
  return 1;  // we keep the reference OpenSSL gave us
}

absl::StatusOr<SslPtr> ClientTls::NewSsl(int fd, const std::string& host, uint16_t port,
                                         const std::string& sni,
                                         const std::vector<std::string>& alpn) const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) return OsslError(absl::StatusCode::kResourceExhausted, "SSL_new");
  if (SSL_set_fd(ssl.get(), fd) != 1) return OsslError(absl::StatusCode::kInternal, "SSL_set_fd");
  const bool address = IsAddress(host);
  // Hostname (or IP SAN) verification, always: the chain alone says nothing
  // about whether this is the server the app asked for.
  if (address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) != 1
              : SSL_set1_host(ssl.get(), host.c_str()) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("verify target ", host));
  }
  const std::string& server_name = !sni.empty() ? sni : host;
  if ((!sni.empty() || !address) && SSL_set_tlsext_host_name(ssl.get(), server_name.c_str()) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("SNI ", server_name));
  }
  if (!alpn.empty()) {
    std::string wire;
    for (const std::string& p : alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    if (SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            wire.size()) != 0) {
      return OsslError(absl::StatusCode::kInvalidArgument, "ALPN");
    }
  }
  if (config_.session_resumption) {
    const std::string dest = absl::StrCat(host, ":", port);
    SSL_set_ex_data(ssl.get(), DestinationIndex(), new std::string(dest));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(dest);
    if (it != sessions_.end() && SSL_SESSION_is_resumable(it->second)) {
      SSL_set_session(ssl.get(), it->second);  // takes its own reference
    }
  }
  SSL_set_connect_state(ssl.get());
  return ssl;
}

}  // namespace tlsd
