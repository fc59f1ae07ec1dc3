// Reload (SIGHUP) under load: a client makes handshakes back to back while
// the certificate and key files are replaced and tlsd is told to reload,
// twenty times. Not one handshake may fail, the new certificates must be
// the ones served, and a connection made before the first swap still works
// after the last. Broken reloads (bad TOML, a key that does not match, a
// change that needs a restart) are refused with the reason in the log and
// change nothing.

#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

std::string PeerCommonName(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return "";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  return cn;
}

// Install puts a new identity in place of the served one: written aside,
// then renamed over, so tlsd never reads half a file.
absl::Status Install(const TestDaemon& d, const testing::TestIdentity& id) {
  const std::string cert = d.env().dir + "/next-cert.pem";
  const std::string key = d.env().dir + "/next-key.pem";
  if (absl::Status s = WriteFile(cert, id.cert_pem); !s.ok()) return s;
  if (absl::Status s = WriteFile(key, id.key_pem, 0600); !s.ok()) return s;
  if (rename(key.c_str(), d.env().key.c_str()) != 0 ||
      rename(cert.c_str(), d.env().cert.c_str()) != 0) {
    return absl::InternalError("rename");
  }
  return absl::OkStatus();
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// One handshake and echo; the server's certificate name, or "" on failure.
std::string OneRoundTrip(const TestDaemon& d, std::string* error) {
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.port(), {});
  if (!c.ok()) {
    *error = c.status().ToString();
    return "";
  }
  if (absl::Status s = (*c)->Write("r"); !s.ok()) {
    *error = s.ToString();
    return "";
  }
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(1);
  if (!echo.ok()) {
    *error = echo.status().ToString();
    return "";
  }
  return PeerCommonName((*c)->ssl());
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestDaemon>> d =
        TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
        InProcessBackend::Subscribe(daemon_->control(), "app", EchoHandler());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
  }

  // Reload sends SIGHUP and waits for the n-th "reloaded"/"reload refused".
  bool Reload(size_t n) {
    kill(daemon_->pid(), SIGHUP);
    return WaitFor(
        [&] {
          const std::string log = daemon_->Log();
          return Count(log, "reloaded ") + Count(log, "reload refused") >= n;
        },
        absl::Seconds(20));
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<InProcessBackend> backend_;
};

TEST_F(ReloadTest, TwentyCertificateSwapsUnderLoadLoseNoHandshake) {
  // A connection from before the first swap, used again after the last.
  absl::StatusOr<std::unique_ptr<TlsClient>> early = TlsClient::Connect(daemon_->port(), {});
  ASSERT_TRUE(early.ok()) << early.status();
  const std::string first_name = PeerCommonName((*early)->ssl());

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::set<std::string> names;
  std::string first_error;
  std::thread client([&] {
    while (!stop.load()) {
      std::string error;
      const std::string name = OneRoundTrip(*daemon_, &error);
      std::lock_guard<std::mutex> lock(mu);
      if (name.empty()) {
        ++failed;
        if (first_error.empty()) first_error = error;
      } else {
        ++ok;
        names.insert(name);
      }
    }
  });
  constexpr int kSwaps = 20;
  std::string last_name;
  for (int i = 1; i <= kSwaps; ++i) {
    last_name = absl::StrCat("tlsd reload test #", i);
    absl::StatusOr<testing::TestIdentity> id =
        SharedCerts().IssueServer(last_name, {"localhost", "127.0.0.1"});
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(Install(*daemon_, *id).ok());
    const int before = ok.load();
    ASSERT_TRUE(Reload(static_cast<size_t>(i))) << daemon_->Log();
    // Let the client make a few handshakes on each certificate.
    WaitFor([&] { return ok.load() >= before + 3; }, absl::Seconds(20));
  }
  stop = true;
  client.join();
  printf("[ reload ] %d swaps: %d handshakes ok, %d failed, %zu certificate names seen\n", kSwaps,
         ok.load(), failed.load(), names.size());
  EXPECT_EQ(failed.load(), 0) << "first failure: " << first_error;
  EXPECT_GE(ok.load(), 3 * kSwaps);
  EXPECT_EQ(Count(daemon_->Log(), "reloaded "), static_cast<size_t>(kSwaps)) << daemon_->Log();
  EXPECT_EQ(Count(daemon_->Log(), "reload refused"), 0u) << daemon_->Log();
  EXPECT_TRUE(names.count(last_name)) << "the last certificate was never served";
  EXPECT_GE(names.size(), static_cast<size_t>(kSwaps / 2))
      << "reloads did not change what is served";

  // The early connection is untouched by all of it.
  ASSERT_TRUE((*early)->Write("still here").ok());
  absl::StatusOr<std::string> echo = (*early)->ReadExactly(10);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "still here");
  EXPECT_NE(first_name, last_name);
}

TEST_F(ReloadTest, BrokenReloadsAreRefusedAndChangeNothing) {
  std::string error;
  const std::string served = OneRoundTrip(*daemon_, &error);
  ASSERT_FALSE(served.empty()) << error;
  absl::StatusOr<std::string> good_config = ReadFile(daemon_->config_path());
  ASSERT_TRUE(good_config.ok());
  struct Case {
    std::string what;
    std::function<void()> make;
    std::string reason;
  };
  absl::StatusOr<testing::TestIdentity> other =
      SharedCerts().IssueServer("tlsd reload mismatch", {"localhost"});
  ASSERT_TRUE(other.ok());
  const std::string good_cert = ReadFile(daemon_->env().cert).value_or("");
  const std::vector<Case> cases = {
      {"bad TOML",
       [&] { ASSERT_TRUE(WriteFile(daemon_->config_path(), *good_config + "\n[[service\n").ok()); },
       absl::StrCat(daemon_->config_path(), ":")},
      {"a key that does not match",
       [&] { ASSERT_TRUE(WriteFile(daemon_->env().cert, other->cert_pem).ok()); },
       "does not match certificate"},
      {"a new listen address",
       [&] {
         ASSERT_TRUE(
             WriteFile(daemon_->config_path(),
                       absl::StrReplaceAll(*good_config,
                                           {{"listen = [\"", "listen = [\"127.0.0.2:1\", \""}}))
                 .ok());
       },
       "service 'web': listeners, routing, timeouts or kTLS settings changed: that needs a "
       "restart"},
  };
  size_t reloads = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    c.make();
    ASSERT_TRUE(Reload(++reloads)) << daemon_->Log();
    EXPECT_THAT(daemon_->Log(), HasSubstr("reload refused: "));
    EXPECT_THAT(daemon_->Log(), HasSubstr(c.reason));
    // Still serving, the same certificate as before.
    EXPECT_EQ(OneRoundTrip(*daemon_, &error), served) << error;
    // Put things back for the next case.
    ASSERT_TRUE(WriteFile(daemon_->config_path(), *good_config).ok());
    ASSERT_TRUE(WriteFile(daemon_->env().cert, good_cert).ok());
  }
  EXPECT_EQ(Count(daemon_->Log(), "reload refused"), cases.size());
  EXPECT_EQ(Count(daemon_->Log(), "reloaded "), 0u);
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
