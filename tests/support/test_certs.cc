#include "tests/support/test_certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/errno_status.h"
#include "common/base/status_macros.h"
#include "common/base/unique_fd.h"
#include "tlsd/tls/ossl_error.h"

namespace tlsd {
namespace testing {
namespace {

constexpr long kSecondsPerDay = 24 * 60 * 60;

// A leaf's key, certificate and PEM form while the PKI is being built.
struct Built {
  EvpPkeyPtr key;
  X509Ptr cert;
};

absl::StatusOr<std::string> SanConfig(const std::vector<std::string>& sans) {
  std::vector<std::string> parts;
  for (const std::string& san : sans) {
    if (absl::StartsWith(san, "DNS:") || absl::StartsWith(san, "IP:")) {
      parts.push_back(san);
      continue;
    }
    if (san.empty() || san.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("test certs: bad subjectAltName \"", san, "\""));
    }
    unsigned char addr[sizeof(in6_addr)];
    const bool is_ip =
        inet_pton(AF_INET, san.c_str(), addr) == 1 || inet_pton(AF_INET6, san.c_str(), addr) == 1;
    parts.push_back(absl::StrCat(is_ip ? "IP:" : "DNS:", san));
  }
  return absl::StrJoin(parts, ",");
}

absl::StatusOr<EvpPkeyPtr> NewKey(bool rsa) {
  EvpPkeyPtr key(rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  if (key == nullptr) {
    return OsslError(absl::StatusCode::kInternal, "test certs: key generation");
  }
  return key;
}

absl::Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, const_cast<char*>(value.c_str())));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OsslError(absl::StatusCode::kInternal,
                     absl::StrCat("test certs: extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// MakeCert builds and signs a certificate for `key`. With issuer == nullptr
// it is self-signed (the CA).
absl::StatusOr<X509Ptr> MakeCert(EVP_PKEY* key, absl::string_view common_name, X509* issuer,
                                 EVP_PKEY* issuer_key, bool is_ca, const std::string& san_config,
                                 absl::string_view eku, int valid_days) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) {
    return OsslError(absl::StatusCode::kResourceExhausted, "test certs: X509_new");
  }
  BignumPtr serial(BN_new());
  if (serial == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_days * kSecondsPerDay) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OsslError(absl::StatusCode::kInternal, "test certs: fields");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());  // owned by cert
  const std::string cn(common_name);
  if (X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("tlsd tests"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return OsslError(absl::StatusCode::kInternal, "test certs: subject");
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) {
    return OsslError(absl::StatusCode::kInternal, "test certs: issuer");
  }

  // subjectKeyIdentifier first: authorityKeyIdentifier of a self-signed CA
  // is computed from it.
  TLSD_RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_subject_key_identifier, "hash"));
  TLSD_RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  if (is_ca) {
    TLSD_RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE"));
    TLSD_RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    TLSD_RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE"));
    TLSD_RETURN_IF_ERROR(
        AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
    TLSD_RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_ext_key_usage, std::string(eku)));
    if (!san_config.empty()) {
      TLSD_RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_subject_alt_name, san_config));
    }
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    return OsslError(absl::StatusCode::kInternal, "test certs: sign");
  }
  return cert;
}

absl::StatusOr<TestIdentity> ToPem(EVP_PKEY* key, X509* cert) {
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (cert_bio == nullptr || key_bio == nullptr || PEM_write_bio_X509(cert_bio.get(), cert) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OsslError(absl::StatusCode::kInternal, "test certs: PEM");
  }
  TestIdentity id;
  char* data = nullptr;
  long len = BIO_get_mem_data(cert_bio.get(), &data);
  id.cert_pem.assign(data, static_cast<size_t>(len));
  len = BIO_get_mem_data(key_bio.get(), &data);
  id.key_pem.assign(data, static_cast<size_t>(len));
  return id;
}

absl::StatusOr<TestIdentity> MakeLeaf(bool rsa, absl::string_view cn, X509* ca, EVP_PKEY* ca_key,
                                      const std::string& sans, absl::string_view eku,
                                      int valid_days) {
  TLSD_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewKey(rsa));
  TLSD_ASSIGN_OR_RETURN(X509Ptr cert, MakeCert(key.get(), cn, ca, ca_key,
                                               /*is_ca=*/false, sans, eku, valid_days));
  return ToPem(key.get(), cert.get());
}

absl::Status WriteFile(const std::string& path, absl::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) {
    return ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoToStatus(errno, absl::StrCat("write ", path));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestCerts> TestCerts::Generate(const TestCertsOptions& opts) {
  TLSD_ASSIGN_OR_RETURN(std::string server_sans, SanConfig(opts.server_sans));
  TLSD_ASSIGN_OR_RETURN(std::string client_sans, SanConfig(opts.client_sans));

  TestCerts certs;
  TLSD_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, NewKey(/*rsa=*/false));
  TLSD_ASSIGN_OR_RETURN(X509Ptr ca_cert, MakeCert(ca_key.get(), "tlsd test CA", nullptr, nullptr,
                                                  /*is_ca=*/true, "", "", opts.valid_days));
  TLSD_ASSIGN_OR_RETURN(certs.ca_, ToPem(ca_key.get(), ca_cert.get()));
  TLSD_ASSIGN_OR_RETURN(certs.server_ecdsa_,
                        MakeLeaf(false, "tlsd test server (ECDSA)", ca_cert.get(), ca_key.get(),
                                 server_sans, "serverAuth", opts.valid_days));
  if (opts.with_rsa_server) {
    TLSD_ASSIGN_OR_RETURN(certs.server_rsa_,
                          MakeLeaf(true, "tlsd test server (RSA)", ca_cert.get(), ca_key.get(),
                                   server_sans, "serverAuth", opts.valid_days));
  }
  TLSD_ASSIGN_OR_RETURN(certs.client_,
                        MakeLeaf(false, opts.client_common_name, ca_cert.get(), ca_key.get(),
                                 client_sans, "clientAuth", opts.valid_days));
  return certs;
}

absl::StatusOr<TestIdentity> TestCerts::IssueServer(absl::string_view common_name,
                                                    const std::vector<std::string>& sans) const {
  TLSD_ASSIGN_OR_RETURN(std::string san_config, SanConfig(sans));
  TLSD_ASSIGN_OR_RETURN(X509Ptr ca_cert, ParseCertPem(ca_.cert_pem));
  TLSD_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, ParseKeyPem(ca_.key_pem));
  return MakeLeaf(false, common_name, ca_cert.get(), ca_key.get(), san_config, "serverAuth",
                  /*valid_days=*/30);
}

absl::StatusOr<std::string> TestCerts::CrlPem(
    const std::vector<std::string>& revoked_cert_pems) const {
  TLSD_ASSIGN_OR_RETURN(X509Ptr ca_cert, ParseCertPem(ca_.cert_pem));
  TLSD_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, ParseKeyPem(ca_.key_pem));
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(X509_CRL_new(), &X509_CRL_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> last(X509_gmtime_adj(nullptr, -3600),
                                                             &ASN1_TIME_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> next(
      X509_gmtime_adj(nullptr, kSecondsPerDay), &ASN1_TIME_free);
  if (!crl || !last || !next || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return OsslError(absl::StatusCode::kInternal, "test certs: CRL fields");
  }
  for (const std::string& pem : revoked_cert_pems) {
    TLSD_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertPem(pem));
    X509_REVOKED* r = X509_REVOKED_new();
    if (r == nullptr || X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(cert.get())) != 1 ||
        X509_REVOKED_set_revocationDate(r, last.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), r) != 1) {
      X509_REVOKED_free(r);
      return OsslError(absl::StatusCode::kInternal, "test certs: CRL entry");
    }
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) == 0) {
    return OsslError(absl::StatusCode::kInternal, "test certs: CRL sign");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) {
    return OsslError(absl::StatusCode::kInternal, "test certs: CRL PEM");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> TestCerts::OcspResponseDer(const std::string& cert_pem,
                                                       long this_update_s,
                                                       long next_update_s) const {
  TLSD_ASSIGN_OR_RETURN(X509Ptr ca_cert, ParseCertPem(ca_.cert_pem));
  TLSD_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, ParseKeyPem(ca_.key_pem));
  TLSD_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertPem(cert_pem));
  OCSP_CERTID* id = OCSP_cert_to_id(nullptr, cert.get(), ca_cert.get());
  std::unique_ptr<OCSP_BASICRESP, decltype(&OCSP_BASICRESP_free)> basic(OCSP_BASICRESP_new(),
                                                                        &OCSP_BASICRESP_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> this_update(
      X509_gmtime_adj(nullptr, this_update_s), &ASN1_TIME_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> next_update(
      X509_gmtime_adj(nullptr, next_update_s), &ASN1_TIME_free);
  const bool ok =
      id != nullptr && basic && this_update && next_update &&
      OCSP_basic_add1_status(basic.get(), id, V_OCSP_CERTSTATUS_GOOD, 0, nullptr, this_update.get(),
                             next_update.get()) != nullptr &&
      OCSP_basic_sign(basic.get(), ca_cert.get(), ca_key.get(), EVP_sha256(), nullptr, 0) == 1;
  OCSP_CERTID_free(id);
  if (!ok) return OsslError(absl::StatusCode::kInternal, "test certs: OCSP response");
  std::unique_ptr<OCSP_RESPONSE, decltype(&OCSP_RESPONSE_free)> resp(
      OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()), &OCSP_RESPONSE_free);
  unsigned char* der = nullptr;
  const int len = resp ? i2d_OCSP_RESPONSE(resp.get(), &der) : -1;
  if (len <= 0) return OsslError(absl::StatusCode::kInternal, "test certs: OCSP DER");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::Status TestCerts::WriteTo(absl::string_view dir) const {
  const std::string d(dir);
  if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, absl::StrCat("mkdir ", d));
  }
  struct File {
    const char* name;
    const TestIdentity* id;
  };
  const File files[] = {{"ca", &ca_},
                        {"server-ecdsa", &server_ecdsa_},
                        {"server-rsa", &server_rsa_},
                        {"client", &client_}};
  for (const File& f : files) {
    if (f.id->cert_pem.empty()) {
      continue;  // RSA not generated
    }
    TLSD_RETURN_IF_ERROR(WriteFile(absl::StrCat(d, "/", f.name, ".pem"), f.id->cert_pem, 0644));
    TLSD_RETURN_IF_ERROR(WriteFile(absl::StrCat(d, "/", f.name, ".key"), f.id->key_pem, 0600));
  }
  return absl::OkStatus();
}

absl::StatusOr<X509Ptr> ParseCertPem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (cert == nullptr) {
    return OsslError(absl::StatusCode::kInvalidArgument, "parse certificate PEM");
  }
  return cert;
}

absl::StatusOr<EvpPkeyPtr> ParseKeyPem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (key == nullptr) {
    return OsslError(absl::StatusCode::kInvalidArgument, "parse key PEM");
  }
  return key;
}

absl::Status UseIdentity(SSL_CTX* ctx, const TestIdentity& id) {
  TLSD_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertPem(id.cert_pem));
  TLSD_ASSIGN_OR_RETURN(EvpPkeyPtr key, ParseKeyPem(id.key_pem));
  // Both calls take their own reference; our owners drop theirs.
  if (SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument, "use test identity");
  }
  return absl::OkStatus();
}

absl::Status TrustCa(SSL_CTX* ctx, const TestIdentity& ca) {
  TLSD_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertPem(ca.cert_pem));
  // The store is owned by ctx; X509_STORE_add_cert takes its own reference.
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  if (store == nullptr || X509_STORE_add_cert(store, cert.get()) != 1) {
    return OsslError(absl::StatusCode::kInternal, "trust test CA");
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace tlsd
