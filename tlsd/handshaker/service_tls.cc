#include "tlsd/handshaker/service_tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/base/unique_fd.h"
#include "tlsd/tls/credentials.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/ocsp_staple.h"
#include "tlsd/tls/ossl_error.h"

namespace tlsd {
namespace {

int ServiceIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// NamesFromCertificate returns the DNS subjectAltNames of the leaf, or its
// CN when it has none (what clients would match against).
absl::StatusOr<std::vector<std::string>> NamesFromCertificate(absl::string_view path) {
  BioPtr bio(BIO_new_file(std::string(path).c_str(), "r"));
  if (!bio) return OsslError(absl::StatusCode::kNotFound, absl::StrCat(path, ": cannot open"));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat(path, ": no PEM certificate"));
  }
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_IA5STRING* dns = gn->d.dNSName;
      names.push_back(absl::AsciiStrToLower(absl::string_view(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)), ASN1_STRING_length(dns))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn,
                                  sizeof(cn)) > 0) {
      names.push_back(absl::AsciiStrToLower(cn));
    }
  }
  return names;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServiceTls>> ServiceTls::Create(const ServiceConfig& config,
                                                               absl::string_view config_source,
                                                               PrivateKeys& keys,
                                                               const ServiceTls* previous) {
  std::unique_ptr<ServiceTls> service(new ServiceTls(config));
  // Every error names the config line it comes from, as the parser's do:
  // the certificate's table for file problems, the [[service]] otherwise.
  auto at = [&](int line, const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(config_source, ":", line, ": service '", config.name,
                                               "': ", s.message()));
  };

  for (const std::string& proto : config.alpn) {
    service->alpn_wire_.push_back(static_cast<uint8_t>(proto.size()));
    service->alpn_wire_.insert(service->alpn_wire_.end(), proto.begin(), proto.end());
  }
  if (config.session_tickets) {
    if (config.ticket_key_file.empty() && previous != nullptr && previous->tickets_ &&
        previous->config_.ticket_key_file.empty() &&
        previous->config_.ticket_rotate_seconds == config.ticket_rotate_seconds) {
      service->tickets_ = previous->tickets_;
    } else {
      // A file is read again on every reload: that is how a fleet rotates.
      absl::StatusOr<std::shared_ptr<TicketKeys>> tickets =
          keys.Tickets(config.ticket_key_file, absl::Seconds(config.ticket_rotate_seconds));
      if (!tickets.ok()) return at(config.line, tickets.status());
      service->tickets_ = *std::move(tickets);
    }
  }

  // Group certificates by the set of names they serve: one context each.
  std::vector<std::pair<std::set<std::string>, std::vector<const CertificateConfig*>>> groups;
  for (const CertificateConfig& cert : config.certificates) {
    if (absl::Status s = CheckReadable(cert.cert_path); !s.ok()) return at(cert.line, s);
    // The key is the key holder's to open (PrivateKeys), never this process's.
    std::set<std::string> names;
    if (cert.server_names.empty()) {
      absl::StatusOr<std::vector<std::string>> derived = NamesFromCertificate(cert.cert_path);
      if (!derived.ok()) return at(cert.line, derived.status());
      names.insert(derived->begin(), derived->end());
    } else {
      for (const std::string& n : cert.server_names) names.insert(absl::AsciiStrToLower(n));
    }
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == names; });
    if (it == groups.end()) {
      groups.push_back({names, {&cert}});
    } else {
      it->second.push_back(&cert);
    }
  }

  for (const auto& [names, certs] : groups) {
    absl::StatusOr<SslCtxPtr> ctx_or = service->NewContext();
    if (!ctx_or.ok()) return at(config.line, ctx_or.status());
    SslCtxPtr ctx = *std::move(ctx_or);
    for (const CertificateConfig* cert : certs) {
      if (absl::Status s = UseCertificate(ctx.get(), cert->cert_path, cert->key_path, keys);
          !s.ok()) {
        return at(cert->line, s);
      }
      if (!cert->ocsp_response_path.empty()) service->AddStaple(ctx.get(), *cert);
    }
    for (const std::string& name : names) {
      if (absl::StartsWith(name, "*.")) {
        service->wildcard_parents_.try_emplace(name.substr(2), ctx.get());
      } else {
        service->exact_names_.try_emplace(name, ctx.get());
      }
    }
    service->contexts_.push_back(std::move(ctx));
  }
  if (service->contexts_.empty()) {
    return at(config.line, absl::InvalidArgumentError("no certificate"));
  }
  return service;
}

absl::StatusOr<SslCtxPtr> ServiceTls::NewContext() const {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return OsslError(absl::StatusCode::kInternal, "SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx.get(), config_.min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), config_.max_version);
  // OpenSSL installs TX (1.2, 1.3) and RX (1.2) itself, keeping record
  // sequence numbers exact; CompleteKtls adds TLS 1.3 RX.
  if (absl::Status s = ConfigureForKernelTls(ctx.get()); !s.ok()) return s;
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // The relay writes from its own buffers, which may move between retries.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx.get(), config_.tls12_ciphers.c_str()) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("tls12_ciphers '", config_.tls12_ciphers, "'"));
  }
  if (SSL_CTX_set_ciphersuites(ctx.get(), config_.tls13_ciphersuites.c_str()) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("tls13_ciphersuites '", config_.tls13_ciphersuites, "'"));
  }
  const std::string sid_ctx = absl::StrCat("tlsd/", config_.name);
  SSL_CTX_set_session_id_context(ctx.get(), reinterpret_cast<const unsigned char*>(sid_ctx.data()),
                                 std::min<size_t>(sid_ctx.size(), SSL_MAX_SID_CTX_LENGTH));
  SSL_CTX_set_session_cache_mode(
      ctx.get(), config_.session_cache ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
  if (tickets_) {
    AttachTicketKeys(ctx.get(), tickets_.get());
  } else {
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx.get(), 0);
  }
  if (config_.client_auth != ClientAuthMode::kNone) {
    if (absl::Status s = CheckReadable(config_.client_ca_path); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("client_ca ", s.message()));
    }
    if (SSL_CTX_load_verify_locations(ctx.get(), config_.client_ca_path.c_str(), nullptr) != 1) {
      return OsslError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("client_ca ", config_.client_ca_path));
    }
    if (!config_.client_crl_path.empty()) {
      if (absl::Status s = UseCrls(ctx.get(), config_.client_crl_path); !s.ok()) return s;
    }
    STACK_OF(X509_NAME)* ca_names = SSL_load_client_CA_file(config_.client_ca_path.c_str());
    if (ca_names != nullptr) SSL_CTX_set_client_CA_list(ctx.get(), ca_names);  // takes ownership
    int mode = SSL_VERIFY_PEER;
    if (config_.client_auth == ClientAuthMode::kRequire) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx.get(), mode, nullptr);
  }
  SSL_CTX_set_ex_data(ctx.get(), ServiceIndex(), const_cast<ServiceTls*>(this));
  SSL_CTX_set_tlsext_servername_callback(ctx.get(), &ServiceTls::OnServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx.get(), const_cast<ServiceTls*>(this));
  if (!alpn_wire_.empty()) {
    SSL_CTX_set_alpn_select_cb(ctx.get(), &ServiceTls::OnAlpn, const_cast<ServiceTls*>(this));
  }
  SSL_CTX_set_client_hello_cb(ctx.get(), &ServiceTls::OnClientHello, const_cast<ServiceTls*>(this));
  SSL_CTX_set_tlsext_status_cb(ctx.get(), &ServiceTls::OnStatusRequest);
  SSL_CTX_set_tlsext_status_arg(ctx.get(), const_cast<ServiceTls*>(this));
  return ctx;
}

void ServiceTls::AddStaple(SSL_CTX* ctx, const CertificateConfig& cert) {
  // The certificate just added is the context's current one; its issuer is
  // the first certificate after it in the chain file.
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  X509* issuer = chain != nullptr && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : nullptr;
  absl::StatusOr<OcspStaple> staple =
      LoadOcspStaple(cert.ocsp_response_path, leaf, issuer, absl::Now());
  if (!staple.ok()) {
    // The handshake does not need it: serve without, and say why.
    TLSD_LOG(Warning) << "service '" << config_.name << "': certificate " << cert.cert_path
                      << ": OCSP response not stapled: " << staple.status().message();
    return;
  }
  TLSD_LOG(Info) << "service '" << config_.name << "': certificate " << cert.cert_path
                 << ": stapling " << cert.ocsp_response_path;
  staples_.emplace(leaf, std::move(*staple));
}

int ServiceTls::OnStatusRequest(SSL* ssl, void* arg) {
  const auto* self = static_cast<const ServiceTls*>(arg);
  auto it = self->staples_.find(SSL_get_certificate(ssl));
  if (it == self->staples_.end()) return SSL_TLSEXT_ERR_NOACK;
  // A response that expired since it was loaded is not sent any more.
  if (it->second.next_update < absl::Now()) return SSL_TLSEXT_ERR_NOACK;
  auto* copy =
      static_cast<unsigned char*>(OPENSSL_memdup(it->second.der.data(), it->second.der.size()));
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(it->second.der.size()));
  return SSL_TLSEXT_ERR_OK;
}

absl::StatusOr<SslPtr> ServiceTls::NewSsl(int fd) const {
  SslPtr ssl(SSL_new(contexts_.front().get()));
  if (!ssl) return OsslError(absl::StatusCode::kResourceExhausted, "SSL_new");
  // SSL_set_fd borrows: the connection's UniqueFd outlives the SSL.
  if (SSL_set_fd(ssl.get(), fd) != 1) {
    return OsslError(absl::StatusCode::kInternal, "SSL_set_fd");
  }
  SSL_set_accept_state(ssl.get());
  return ssl;
}

std::vector<CertSummary> ServiceTls::Certificates() const {
  std::vector<CertSummary> out;
  for (const SslCtxPtr& ctx : contexts_) {
    if (X509* leaf = SSL_CTX_get0_certificate(ctx.get())) out.push_back(SummarizeCertificate(leaf));
  }
  return out;
}

std::vector<std::string> ServiceTls::ServedNames() const {
  std::vector<std::string> names;
  for (const auto& [n, ctx] : exact_names_) names.push_back(n);
  for (const auto& [n, ctx] : wildcard_parents_) names.push_back(absl::StrCat("*.", n));
  std::sort(names.begin(), names.end());
  return names;
}

SSL_CTX* ServiceTls::ForName(absl::string_view sni) const {
  std::string name = absl::AsciiStrToLower(sni);
  if (auto it = exact_names_.find(name); it != exact_names_.end()) return it->second;
  // A wildcard covers exactly one label (RFC 6125 6.4.3).
  size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_parents_.find(name.substr(dot + 1)); it != wildcard_parents_.end()) {
      return it->second;
    }
  }
  return nullptr;
}

int ServiceTls::OnServerName(SSL* ssl, int* alert, void* arg) {
  auto* self = static_cast<const ServiceTls*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sni == nullptr) return SSL_TLSEXT_ERR_NOACK;  // no SNI: default certificate
  // OpenSSL only rejects NUL bytes; a host name is LDH labels (RFC 5890).
  // Anything else would travel to workers and into logs.
  for (const char* p = sni; *p != '\0'; ++p) {
    const char ch = *p;
    const bool ldh = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
    if (!ldh || p - sni >= 253) {
      *alert = SSL_AD_ILLEGAL_PARAMETER;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
  }
  SSL_CTX* ctx = self->ForName(sni);
  if (ctx == nullptr) {
    if (self->config_.unknown_sni == UnknownSniPolicy::kReject) {
      *alert = SSL_AD_UNRECOGNIZED_NAME;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;  // default certificate, SNI still reported
  }
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

int ServiceTls::OnAlpn(SSL*, const unsigned char** out, unsigned char* out_len,
                       const unsigned char* in, unsigned int in_len, void* arg) {
  auto* self = static_cast<const ServiceTls*>(arg);
  // Server preference: the first of our protocols that the client offers.
  const std::vector<uint8_t>& ours = self->alpn_wire_;
  for (size_t i = 0; i < ours.size(); i += 1 + ours[i]) {
    for (unsigned int j = 0; j < in_len; j += 1 + in[j]) {
      if (j + 1 + in[j] > in_len) break;  // malformed list: OpenSSL validated, be safe
      if (in[j] == ours[i] && memcmp(&in[j + 1], &ours[i + 1], ours[i]) == 0) {
        *out = &in[j + 1];
        *out_len = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  // No overlap: RFC 7301 says no_application_protocol.
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int ServiceTls::OnClientHello(SSL*, int* alert, void* arg) {
  auto* self = static_cast<const ServiceTls*>(arg);
  // With ktls = require on a kernel without the TLS ULP no connection can be
  // served: refuse before spending any crypto, with an alert the client sees.
  if (self->config_.ktls == KtlsPolicy::kRequire && !KernelHasTlsUlp()) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace tlsd
