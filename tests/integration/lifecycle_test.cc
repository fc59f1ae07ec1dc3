// tlsd's life around its connections: ktls = "require" on a kernel that
// cannot take the session, slow clients and handshake_timeout_ms, stopping
// with SIGTERM while connections are open (a kTLS connection belongs to the
// backend and outlives tlsd).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

TEST(KtlsPolicyTest, RequireRefusesWithAlertWhenKernelCannotTakeSessionElseHandsOff) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon = TestDaemon::Start(
      {.config = [](const DaemonEnv& env) { return SimpleConfig(env, "ktls = \"require\"\n"); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();
  TlsStatSnapshot before;
  PeerResult p = RunPeer({kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", d.port()),
                          "-servername", "localhost", "-CAfile", d.env().ca, "-verify_return_error",
                          "-quiet", "-no_ign_eof", "-nocommands"},
                         {.stdin_data = "ping\n",
                          .close_stdin_after_stdout_has = "ping\n",
                          .timeout = absl::Seconds(15)});
  if (KernelKtls()) {
    EXPECT_EQ(p.exit_code, 0) << p.Describe();
    EXPECT_EQ(p.out, "ping\n") << p.Describe();
    std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
    ASSERT_EQ(recs.size(), 1u) << d.Log();
    ExpectDataPath(recs[0], d);
    ExpectKtlsCounters(before, 1);
    return;
  }
  // No kTLS here: refused during the handshake with an alert, logged with
  // the reason; nothing reaches the backend.
  EXPECT_FALSE(p.timed_out) << p.Describe();
  EXPECT_NE(p.exit_code, 0) << p.Describe();
  EXPECT_THAT(p.err, HasSubstr("alert internal error")) << p.Describe();
  EXPECT_EQ((*backend)->NumAccepted(), 0u);
  absl::StatusOr<ConnLogLine> line = d.WaitForConnLog(1);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_THAT(line->Field("outcome"), AnyOf("refused", "handshake-failed")) << line->line;
  EXPECT_THAT(d.Log(), HasSubstr("kernel has no TLS ULP")) << d.Log();
}

TEST(HandshakeTimeoutTest, ClientThatSendsNothingIsDroppedAfterHandshakeTimeout) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return SimpleConfig(env, "handshake_timeout_ms = 300\n");
      }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  UniqueFd fd = ConnectLoopback(d.port());
  ASSERT_TRUE(fd.valid());
  const absl::Time start = absl::Now();
  pollfd p{fd.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1) << "tlsd did not drop a silent client within 10 s";
  char c;
  ssize_t n = recv(fd.get(), &c, 1, 0);
  const absl::Duration waited = absl::Now() - start;
  fd.Reset();
  EXPECT_LE(n, 0) << "expected the connection to be closed";
  EXPECT_GE(waited, absl::Milliseconds(250));
  EXPECT_LT(waited, absl::Seconds(5));
  absl::StatusOr<ConnLogLine> line = d.WaitForConnLog(1);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->Field("outcome"), "handshake-timeout") << line->line;
  EXPECT_THAT(line->line, HasSubstr("300 ms")) << line->line;
}

TEST(ShutdownTest, SigtermStopsTlsdPromptlyAndHandedOffConnectionsBelongToTheBackend) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();
  absl::StatusOr<std::unique_ptr<TlsClient>> client = TlsClient::Connect(d.port(), {});
  ASSERT_TRUE(client.ok()) << client.status();
  TlsClient& cl = **client;
  ASSERT_TRUE(cl.Write("before\n").ok());
  ASSERT_TRUE(cl.ReadExactly(7).ok());

  const absl::Time start = absl::Now();
  const int status = d.Stop();
  EXPECT_EQ(status, 0) << "tlsd should exit 0 on SIGTERM; log:\n" << d.Log();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));

  if (KernelKtls()) {
    // The socket is the backend's: the connection goes on without tlsd.
    ASSERT_TRUE(cl.Write("after\n").ok());
    absl::StatusOr<std::string> echo = cl.ReadExactly(6);
    ASSERT_TRUE(echo.ok()) << echo.status() << " — a kTLS connection died with tlsd";
    EXPECT_EQ(*echo, "after\n");
  } else {
    // tlsd relayed it: the connection ends with tlsd (and does not hang).
    ReadEnd end = cl.ReadToEnd();
    EXPECT_NE(end.kind, ReadEnd::kTimeout) << end.Describe();
  }
  cl.Close();
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
