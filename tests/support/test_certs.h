#ifndef TLSD_TESTS_SUPPORT_TEST_CERTS_H_
#define TLSD_TESTS_SUPPORT_TEST_CERTS_H_

// TestCerts generates, in memory and with the OpenSSL API, a small PKI for
// tests: a CA, a server certificate with an ECDSA P-256 key and one with an
// RSA-2048 key (both with the caller's subjectAltNames), and a client
// certificate for mutual TLS. Nothing is read from disk, so tests never
// depend on checked-in certificates expiring; WriteTo() exports PEM files for
// tests that drive real binaries (openssl s_client, tls-wrap).

#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {
namespace testing {

// TestIdentity is one certificate with its private key, both PEM.
struct TestIdentity {
  std::string cert_pem;
  std::string key_pem;  // unencrypted PKCS#8
};

struct TestCertsOptions {
  // Server subjectAltNames. An entry may be "DNS:name" or "IP:addr"; a bare
  // entry is an IP address if it parses as one, a DNS name otherwise.
  std::vector<std::string> server_sans = {"localhost", "127.0.0.1", "::1"};
  // Client certificate common name; client_sans as server_sans (may be empty).
  std::string client_common_name = "tlsd-test-client";
  std::vector<std::string> client_sans;
  // RSA-2048 key generation costs about a second under QEMU's TCG; tests
  // that only need ECDSA can turn it off (server_rsa() is then empty).
  bool with_rsa_server = true;
  // Validity starts an hour in the past to tolerate clock skew.
  int valid_days = 30;
};

class TestCerts {
 public:
  // Generate makes a fresh CA and leaf certificates. Errors carry the OpenSSL
  // error queue (OsslError), or kInvalidArgument for a bad SAN entry.
  static absl::StatusOr<TestCerts> Generate(const TestCertsOptions& opts = {});

  const TestIdentity& ca() const { return ca_; }
  const TestIdentity& server_ecdsa() const { return server_ecdsa_; }
  const TestIdentity& server_rsa() const { return server_rsa_; }
  const TestIdentity& client() const { return client_; }

  // IssueServer makes one more server certificate (ECDSA P-256) signed by
  // this CA, e.g. for a certificate rotation: same trust, a new key.
  absl::StatusOr<TestIdentity> IssueServer(absl::string_view common_name,
                                           const std::vector<std::string>& sans) const;

  // CrlPem makes a CRL signed by this CA (valid from an hour ago for a day)
  // that revokes the given certificates (PEM); none gives an empty CRL.
  absl::StatusOr<std::string> CrlPem(const std::vector<std::string>& revoked_cert_pems) const;

  // OcspResponseDer makes a successful OCSP response signed by this CA that
  // says `cert_pem` is good, valid from now+this_update_s to
  // now+next_update_s (seconds; negative for the past).
  absl::StatusOr<std::string> OcspResponseDer(const std::string& cert_pem, long this_update_s,
                                              long next_update_s) const;

  // WriteTo writes ca.pem, ca.key, server-ecdsa.{pem,key},
  // server-rsa.{pem,key} (if generated) and client.{pem,key} into `dir`,
  // creating it if needed. Key files get mode 0600.
  absl::Status WriteTo(absl::string_view dir) const;

 private:
  TestIdentity ca_;
  TestIdentity server_ecdsa_;
  TestIdentity server_rsa_;
  TestIdentity client_;
};

// ParseCertPem / ParseKeyPem parse the first PEM object of their kind.
absl::StatusOr<X509Ptr> ParseCertPem(absl::string_view pem);
absl::StatusOr<EvpPkeyPtr> ParseKeyPem(absl::string_view pem);

// UseIdentity makes `ctx` present `id` (certificate and key, checked to
// match).
absl::Status UseIdentity(SSL_CTX* ctx, const TestIdentity& id);

// TrustCa adds `ca`'s certificate to `ctx`'s trust store and turns on peer
// verification (SSL_VERIFY_PEER). A server that requires a client
// certificate adds SSL_VERIFY_FAIL_IF_NO_PEER_CERT itself.
absl::Status TrustCa(SSL_CTX* ctx, const TestIdentity& ca);

}  // namespace testing
}  // namespace tlsd

#endif  // TLSD_TESTS_SUPPORT_TEST_CERTS_H_
