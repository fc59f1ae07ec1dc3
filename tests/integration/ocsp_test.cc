// OCSP stapling from a response file: `openssl s_client -status` sees the
// stapled response; with a stale one (nextUpdate passed) or one for another
// certificate it sees none, the handshake still succeeds, and tlsd logs
// why; a fresh response put in place is stapled after a reload.

#include <signal.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr long kDay = 24 * 3600;

// The service's certificate file with its issuer after it (where tlsd finds
// the issuer the response is checked against), and ocsp_response set.
std::unique_ptr<TestDaemon> Start(const std::string& response_der) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d = TestDaemon::Start(
      {.config =
           [](const DaemonEnv& env) {
             return absl::StrReplaceAll(
                 SimpleConfig(env),
                 {{absl::StrCat("cert = \"", env.cert, "\""),
                   absl::StrCat("cert = \"", env.dir, "/chain.pem\"\nocsp_response = \"", env.dir,
                                "/ocsp.der\"")}});
           },
       .prepare =
           [response_der](const DaemonEnv& env) {
             absl::Status s =
                 WriteFile(env.dir + "/chain.pem",
                           SharedCerts().server_ecdsa().cert_pem + SharedCerts().ca().cert_pem);
             if (!s.ok()) return s;
             return WriteFile(env.dir + "/ocsp.der", response_der);
           }});
  if (!d.ok()) {
    ADD_FAILURE() << d.status();
    return nullptr;
  }
  return std::move(*d);
}

PeerResult SClientStatus(const TestDaemon& d) {
  return RunPeer(
      {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", d.port()), "-servername",
       "localhost", "-CAfile", d.env().ca, "-verify_return_error", "-status"},
      {.stdin_data = "", .timeout = absl::Seconds(30)});
}

TEST(OcspTest, FreshResponseIsStapled) {
  absl::StatusOr<std::string> fresh =
      SharedCerts().OcspResponseDer(SharedCerts().server_ecdsa().cert_pem, -3600, kDay);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  std::unique_ptr<TestDaemon> d = Start(*fresh);
  ASSERT_NE(d, nullptr);
  EXPECT_THAT(d->Log(), HasSubstr("stapling " + d->env().dir + "/ocsp.der"));
  PeerResult r = SClientStatus(*d);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("OCSP Response Status: successful (0x0)")) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("Cert Status: good"));
}

TEST(OcspTest, StaleOrForeignResponseIsNotStapledAndTheReasonIsLogged) {
  absl::StatusOr<std::string> stale =
      SharedCerts().OcspResponseDer(SharedCerts().server_ecdsa().cert_pem, -2 * kDay, -kDay);
  ASSERT_TRUE(stale.ok()) << stale.status();
  std::unique_ptr<TestDaemon> d = Start(*stale);
  ASSERT_NE(d, nullptr);
  EXPECT_THAT(d->Log(), HasSubstr("OCSP response not stapled: ocsp_response " + d->env().dir +
                                  "/ocsp.der: expired"));
  PeerResult r = SClientStatus(*d);
  EXPECT_EQ(r.exit_code, 0) << "the handshake must succeed without a staple\n" << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("OCSP response: no response sent")) << r.Describe();
  EXPECT_THAT(r.out, Not(HasSubstr("Cert Status")));

  // A response for another certificate: not stapled either.
  absl::StatusOr<std::string> foreign =
      SharedCerts().OcspResponseDer(SharedCerts().client().cert_pem, -3600, kDay);
  ASSERT_TRUE(foreign.ok());
  ASSERT_TRUE(WriteFile(d->env().dir + "/ocsp.der", *foreign).ok());
  kill(d->pid(), SIGHUP);
  ASSERT_TRUE(d->WaitForLog("does not cover this certificate")) << d->Log();

  // A fresh one, then a reload: stapled.
  absl::StatusOr<std::string> fresh =
      SharedCerts().OcspResponseDer(SharedCerts().server_ecdsa().cert_pem, -3600, kDay);
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE(WriteFile(d->env().dir + "/ocsp.der", *fresh).ok());
  kill(d->pid(), SIGHUP);
  ASSERT_TRUE(d->WaitForLog("stapling " + d->env().dir + "/ocsp.der")) << d->Log();
  r = SClientStatus(*d);
  EXPECT_THAT(r.out, HasSubstr("Cert Status: good")) << r.Describe();
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
