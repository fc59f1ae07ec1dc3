// Session resumption as a user sees it: `openssl s_client -sess_out` then
// `-sess_in` says "Reused" and the backend's metadata says resumed; with a
// shared ticket_key_file, a session from one tlsd instance resumes on
// another (and without it, it does not).

#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ResumptionTest : public ::testing::TestWithParam<int> {
 protected:
  bool tls13() const { return GetParam() == TLS1_3_VERSION; }
  std::string version_name() const { return tls13() ? "TLSv1.3" : "TLSv1.2"; }

  // SClient connects to `port` with -sess_out or -sess_in `sess`, sends a
  // line and waits for its echo before ending (so TLS 1.3 tickets, which
  // arrive after the handshake, are in the saved session).
  PeerResult SClient(int port, const std::string& ca, const char* sess_flag,
                     const std::string& sess) {
    const std::string line = absl::StrCat(RandomHex(16), "\n");
    return RunPeer({kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", port),
                    "-servername", "localhost", "-CAfile", ca, "-verify_return_error",
                    tls13() ? "-tls1_3" : "-tls1_2", "-no_ign_eof", "-nocommands", sess_flag, sess},
                   {.stdin_data = line, .close_stdin_after_stdout_has = line});
  }

  // ExpectReused checks s_client's summary line.
  void ExpectReused(const PeerResult& p) {
    EXPECT_EQ(p.exit_code, 0) << p.Describe();
    if (tls13()) {
      EXPECT_THAT(p.out, HasSubstr("Reused")) << p.Describe();
    } else {
      EXPECT_THAT(p.out, HasSubstr("Reused, TLSv1.2")) << p.Describe();
    }
    EXPECT_THAT(p.out, Not(HasSubstr("New, TLSv1."))) << p.Describe();
  }
  void ExpectNew(const PeerResult& p) {
    EXPECT_EQ(p.exit_code, 0) << p.Describe();
    EXPECT_THAT(p.out, HasSubstr(absl::StrCat("New, ", version_name()))) << p.Describe();
  }
};

TEST_P(ResumptionTest, SClientSessionIsReusedAndBackendSeesResumed) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();
  TlsStatSnapshot before;
  const std::string sess = absl::StrCat(d.env().dir, "/session.pem");

  PeerResult first = SClient(d.port(), d.env().ca, "-sess_out", sess);
  ExpectNew(first);
  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << d.Log();
  EXPECT_EQ(recs[0].resumed, 0);

  PeerResult second = SClient(d.port(), d.env().ca, "-sess_in", sess);
  ExpectReused(second);
  recs = (*backend)->WaitForConnections(2);
  ASSERT_EQ(recs.size(), 2u) << d.Log();
  EXPECT_EQ(recs[1].resumed, 1) << "the backend was not told the session was resumed";
  EXPECT_EQ(recs[1].tls_version_name, version_name());
  for (const ConnRecord& r : recs) ExpectDataPath(r, d);
  ExpectKtlsCounters(before, 2);
}

TEST_P(ResumptionTest, SharedTicketKeyFileResumesSessionOfOneInstanceOnAnother) {
  TLSD_IT_CHECK_KERNEL();
  TempDir shared;
  const std::string keys = shared.File("ticket.keys");
  ASSERT_TRUE(WriteFile(keys, RandomBytes(80), 0600).ok());
  auto with_keys = [keys](const DaemonEnv& env) {
    return SimpleConfig(env, absl::StrCat("ticket_key_file = \"", keys, "\"\n"));
  };
  absl::StatusOr<std::unique_ptr<TestDaemon>> a = TestDaemon::Start({.config = with_keys});
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::unique_ptr<TestDaemon>> b = TestDaemon::Start({.config = with_keys});
  ASSERT_TRUE(b.ok()) << b.status();
  // A third instance with its own random keys: the control.
  absl::StatusOr<std::unique_ptr<TestDaemon>> c =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend_a =
      InProcessBackend::Subscribe((*a)->control(), "app", EchoHandler());
  ASSERT_TRUE(backend_a.ok()) << backend_a.status();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend_b =
      InProcessBackend::Subscribe((*b)->control(), "app", EchoHandler());
  ASSERT_TRUE(backend_b.ok()) << backend_b.status();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend_c =
      InProcessBackend::Subscribe((*c)->control(), "app", EchoHandler());
  ASSERT_TRUE(backend_c.ok()) << backend_c.status();
  const std::string sess = shared.File("session.pem");
  // Every instance uses the same test certificate and CA.
  const std::string ca = (*a)->env().ca;

  PeerResult on_a = SClient((*a)->port(), ca, "-sess_out", sess);
  ExpectNew(on_a);
  PeerResult on_b = SClient((*b)->port(), ca, "-sess_in", sess);
  ExpectReused(on_b);
  std::vector<ConnRecord> recs = (*backend_b)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << (*b)->Log();
  EXPECT_EQ(recs[0].resumed, 1) << "instance B did not resume A's session";
  ExpectDataPath(recs[0], **b);

  PeerResult on_c = SClient((*c)->port(), ca, "-sess_in", sess);
  ExpectNew(on_c);
  recs = (*backend_c)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << (*c)->Log();
  EXPECT_EQ(recs[0].resumed, 0) << "an instance without the shared keys resumed the session";
}

INSTANTIATE_TEST_SUITE_P(Tls12AndTls13, ResumptionTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? "TLSv13" : "TLSv12";
                         });

}  // namespace
}  // namespace integration
}  // namespace tlsd
