// Client certificate revocation (client_crl): a client certificate listed in
// the CRL is refused with a certificate_revoked alert; once the CRL file no
// longer lists it and tlsd reloads, the same client gets through.

#include <signal.h>
#include <sys/stat.h>

#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

constexpr int kCertificateRevoked = 44;

// StartWithCrl runs tlsd requiring client certificates, with client_crl =
// DIR/<crl> made by `prepare`, and an echo backend.
struct CrlDaemon {
  std::unique_ptr<TestDaemon> tlsd;
  std::unique_ptr<InProcessBackend> backend;
};
CrlDaemon StartWithCrl(const std::string& crl,
                       std::function<absl::Status(const DaemonEnv&)> prepare) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d = TestDaemon::Start(
      {.config =
           [crl](const DaemonEnv& env) {
             return SimpleConfig(env,
                                 absl::StrCat("client_auth = \"require\"\nclient_ca = \"", env.ca,
                                              "\"\nclient_crl = \"", env.dir, "/", crl, "\"\n"));
           },
       .prepare = std::move(prepare)});
  if (!d.ok()) {
    ADD_FAILURE() << d.status();
    return {};
  }
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe((*d)->control(), "app", EchoHandler());
  if (!b.ok()) {
    ADD_FAILURE() << b.status();
    return {};
  }
  return {std::move(*d), std::move(*b)};
}

TEST(RevocationTest, RevokedClientCertificateIsRefusedUntilTheCrlChangesAndTlsdReloads) {
  absl::StatusOr<std::string> revoking = SharedCerts().CrlPem({SharedCerts().client().cert_pem});
  ASSERT_TRUE(revoking.ok()) << revoking.status();
  absl::StatusOr<std::string> empty = SharedCerts().CrlPem({});
  ASSERT_TRUE(empty.ok()) << empty.status();
  CrlDaemon d = StartWithCrl(
      "crl.pem", [&](const DaemonEnv& env) { return WriteFile(env.dir + "/crl.pem", *revoking); });
  ASSERT_NE(d.tlsd, nullptr);
  ClientOptions opts;
  opts.identity = &SharedCerts().client();

  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
    opts.version = version;
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.tlsd->port(), opts);
    if (c.ok()) {
      // TLS 1.3: the client's certificate is checked after its Finished, so
      // the alert is what the first read gets.
      (void)(*c)->Write("x");
      ReadEnd end = (*c)->ReadToEnd();
      EXPECT_EQ(end.kind, ReadEnd::kAlert) << end.Describe();
      EXPECT_EQ(end.alert, kCertificateRevoked) << end.Describe();
    } else {
      EXPECT_THAT(c.status().message(), HasSubstr("certificate revoked"));
    }
  }
  EXPECT_TRUE(d.tlsd->WaitForLog("certificate revoked")) << d.tlsd->Log();

  // The CRL no longer lists it: after a reload the same client is served.
  ASSERT_TRUE(WriteFile(d.tlsd->env().dir + "/crl.pem", *empty).ok());
  kill(d.tlsd->pid(), SIGHUP);
  ASSERT_TRUE(d.tlsd->WaitForLog("reloaded ")) << d.tlsd->Log();
  opts.version = 0;
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.tlsd->port(), opts);
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << d.tlsd->Log();
  ASSERT_TRUE((*c)->Write("unrevoked").ok());
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(9);
  ASSERT_TRUE(echo.ok()) << echo.status() << "\n" << d.tlsd->Log();
  EXPECT_EQ(*echo, "unrevoked");
}

// The same with client_crl naming a directory in OpenSSL's hashed layout
// (what `openssl rehash` makes), as CA tooling that drops one CRL per CA
// into a directory does.
TEST(RevocationTest, CrlDirectoryInHashedLayout) {
  absl::StatusOr<std::string> revoking = SharedCerts().CrlPem({SharedCerts().client().cert_pem});
  ASSERT_TRUE(revoking.ok()) << revoking.status();
  CrlDaemon d = StartWithCrl("crls", [&](const DaemonEnv& env) {
    if (mkdir((env.dir + "/crls").c_str(), 0755) != 0) return absl::InternalError("mkdir crls");
    if (absl::Status s = WriteFile(env.dir + "/crls/ca.crl.pem", *revoking); !s.ok()) return s;
    PeerResult r = RunPeer({kOpenssl, "rehash", env.dir + "/crls"});
    return r.exit_code == 0 ? absl::OkStatus()
                            : absl::InternalError("openssl rehash: " + r.Describe());
  });
  ASSERT_NE(d.tlsd, nullptr);
  ClientOptions opts;
  opts.identity = &SharedCerts().client();
  opts.version = TLS1_2_VERSION;
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.tlsd->port(), opts);
  ASSERT_FALSE(c.ok()) << "a revoked client certificate was accepted";
  EXPECT_THAT(c.status().message(), HasSubstr("certificate revoked"));
  EXPECT_TRUE(d.tlsd->WaitForLog("client certificate: certificate revoked")) << d.tlsd->Log();
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
