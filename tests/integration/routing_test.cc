// Routing: which backend gets a connection, by SNI and by ALPN, with routes
// tried in file order; what an unknown SNI gets (the default backend with
// unknown_sni = "default", an unrecognized_name alert with "reject").

#include <map>
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

// Service "web" (port 0): a.test -> alpha, b.test -> beta (a push backend),
// ALPN h2 -> gamma, anything else -> fallback. Service "strict" (port 1):
// only a.test, unknown SNI rejected.
std::string RoutingConfig(const DaemonEnv& env) {
  return absl::StrCat(
      "[global]\ncontrol_socket = \"", env.control, "\"\nstate_dir = \"", env.dir, "\"\n\n",
      "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", env.port(0), "\"]\n",
      "alpn = [\"h2\", \"http/1.1\"]\nbackend = \"fallback\"\nunknown_sni = \"default\"\n",
      "[[service.certificate]]\ncert = \"", env.cert, "\"\nkey = \"", env.key, "\"\n",
      "server_names = [\"a.test\", \"b.test\", \"localhost\"]\n",
      "[[service.route]]\nsni = \"a.test\"\nbackend = \"alpha\"\n",
      "[[service.route]]\nsni = \"b.test\"\nbackend = \"beta\"\n",
      "[[service.route]]\nalpn = \"h2\"\nbackend = \"gamma\"\n\n",
      "[[service]]\nname = \"strict\"\nlisten = [\"127.0.0.1:", env.port(1), "\"]\n",
      "backend = \"fallback\"\nunknown_sni = \"reject\"\n", "[[service.certificate]]\ncert = \"",
      env.cert, "\"\nkey = \"", env.key, "\"\n", "server_names = [\"a.test\"]\n\n",
      PullBackendToml("alpha"), PullBackendToml("gamma"), PullBackendToml("fallback"),
      "[[backend]]\nname = \"beta\"\nmode = \"push\"\nsocket = \"", env.dir, "/beta.sock\"\n");
}

class RoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TLSD_IT_CHECK_KERNEL();
    absl::StatusOr<std::unique_ptr<TestDaemon>> d =
        TestDaemon::Start({.config = RoutingConfig, .num_ports = 2});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    for (const char* name : {"alpha", "gamma", "fallback"}) {
      absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
          InProcessBackend::Subscribe(daemon_->control(), name, EchoHandler());
      ASSERT_TRUE(b.ok()) << b.status();
      backends_[name] = std::move(*b);
    }
    absl::StatusOr<std::unique_ptr<InProcessBackend>> beta =
        InProcessBackend::Listen(absl::StrCat(daemon_->env().dir, "/beta.sock"), EchoHandler());
    ASSERT_TRUE(beta.ok()) << beta.status();
    backends_["beta"] = std::move(*beta);
  }

  // Connect sends a line through a connection with this SNI and ALPN offer
  // and returns the record of the backend `expect_backend`, which must be
  // the one that got it.
  void ExpectRoutedTo(int port, const std::string& sni, std::vector<std::string> alpn,
                      const std::string& want_backend, const std::string& want_alpn) {
    SCOPED_TRACE(absl::StrCat("sni=", sni, " alpn offer=", alpn.empty() ? "-" : alpn[0]));
    std::map<std::string, size_t> counts;
    for (const auto& [name, b] : backends_) counts[name] = b->Records().size();
    ClientOptions opts;
    opts.sni = sni;
    opts.alpn = std::move(alpn);
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(port, opts);
    ASSERT_TRUE(c.ok()) << c.status() << "\n" << daemon_->Log();
    const std::string line = absl::StrCat(sni, "\n");
    ASSERT_TRUE((*c)->Write(line).ok());
    absl::StatusOr<std::string> echo = (*c)->ReadExactly(line.size());
    ASSERT_TRUE(echo.ok()) << echo.status();
    (*c)->Close();
    std::vector<ConnRecord> recs =
        backends_[want_backend]->WaitForConnections(counts[want_backend] + 1, absl::Seconds(10));
    ASSERT_EQ(recs.size(), counts[want_backend] + 1)
        << "backend " << want_backend << " did not get the connection; log:\n"
        << daemon_->Log();
    const ConnRecord& r = recs.back();
    EXPECT_EQ(r.backend, want_backend);
    EXPECT_EQ(r.sni, sni);
    EXPECT_EQ(r.alpn, want_alpn);
    EXPECT_EQ(r.received, line);
    ExpectDataPath(r, *daemon_);
    for (const auto& [name, b] : backends_) {
      if (name != want_backend) {
        EXPECT_EQ(b->Records().size(), counts[name]) << name << " got a connection too";
      }
    }
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::map<std::string, std::unique_ptr<InProcessBackend>> backends_;
};

TEST_F(RoutingTest, TwoSniNamesOnOneListenerReachTwoBackends) {
  TlsStatSnapshot before;
  ExpectRoutedTo(daemon_->port(0), "a.test", {"http/1.1"}, "alpha", "http/1.1");
  ExpectRoutedTo(daemon_->port(0), "b.test", {"http/1.1"}, "beta", "http/1.1");
  // The first matching route wins: a.test with h2 is still alpha's.
  ExpectRoutedTo(daemon_->port(0), "a.test", {"h2"}, "alpha", "h2");
  ExpectKtlsCounters(before, 3);
}

TEST_F(RoutingTest, AlpnRoutePicksItsBackend) {
  TlsStatSnapshot before;
  ExpectRoutedTo(daemon_->port(0), "localhost", {"h2", "http/1.1"}, "gamma", "h2");
  ExpectRoutedTo(daemon_->port(0), "localhost", {"http/1.1"}, "fallback", "http/1.1");
  ExpectKtlsCounters(before, 2);
}

TEST_F(RoutingTest, UnknownSniGetsDefaultBackendWhenUnknownSniIsDefault) {
  TlsStatSnapshot before;
  // c.test is in the certificate but not in server_names: unknown to tlsd.
  ExpectRoutedTo(daemon_->port(0), "c.test", {"http/1.1"}, "fallback", "http/1.1");
  ExpectRoutedTo(daemon_->port(0), "c.test", {"h2"}, "gamma", "h2");
  ExpectKtlsCounters(before, 2);
}

TEST_F(RoutingTest, UnknownSniIsRefusedWithUnrecognizedNameWhenUnknownSniIsReject) {
  PeerResult p =
      RunPeer({kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", daemon_->port(1)),
               "-servername", "c.test", "-CAfile", daemon_->env().ca, "-nocommands"},
              {.stdin_data = "hello\n", .timeout = absl::Seconds(15)});
  EXPECT_NE(p.exit_code, 0) << p.Describe();
  EXPECT_THAT(p.err, HasSubstr("unrecognized name")) << p.Describe();
  EXPECT_THAT(p.err, HasSubstr("alert number 112")) << p.Describe();
  for (const auto& [name, b] : backends_) EXPECT_EQ(b->NumAccepted(), 0u) << name;
  ASSERT_TRUE(daemon_->WaitForLog("outcome=handshake-failed")) << daemon_->Log();
  std::vector<ConnLogLine> lines = daemon_->ConnLogLines();
  ASSERT_EQ(lines.size(), 1u) << daemon_->Log();
  EXPECT_EQ(lines[0].Field("service"), "strict") << lines[0].line;
  EXPECT_EQ(lines[0].Field("sni"), "c.test") << lines[0].line;
  // A name the strict service knows still works.
  ExpectRoutedTo(daemon_->port(1), "a.test", {}, "fallback", "");
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
