// Faults around tlsd (issue 9): a backend killed with connections handed to
// it and then while clients wait in its queue; a backend too slow (its queue
// full); tlsd itself killed; a certificate that cannot be read at reload.
// Each time: every client gets an answer (served, an alert, or a close),
// tlsd keeps serving, and its fd count comes back.

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

std::unique_ptr<TestDaemon> Start(const std::string& backend_extra) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [backend_extra](const DaemonEnv& env) {
        return SimpleConfig(env, "", backend_extra);
      }});
  if (!d.ok()) {
    ADD_FAILURE() << d.status();
    return nullptr;
  }
  return std::move(*d);
}

// A real backend process: tlsd-demo-backend echoing what it reads.
std::unique_ptr<BackgroundProcess> DemoBackend(const TestDaemon& d, const std::string& log) {
  absl::StatusOr<std::unique_ptr<BackgroundProcess>> p = BackgroundProcess::Start(
      {BinaryPath("tlsd-demo-backend"), "--control", d.control(), "--backend", "app", "--echo"},
      absl::StrCat(d.env().dir, "/", log));
  if (!p.ok() || !(*p)->WaitForOutput("ready:")) {
    ADD_FAILURE() << (p.ok() ? (*p)->Output() : p.status().ToString());
    return nullptr;
  }
  return std::move(*p);
}

bool Echo(TlsClient& c, const std::string& text) {
  if (!c.Write(text).ok()) return false;
  absl::StatusOr<std::string> back = c.ReadExactly(text.size());
  return back.ok() && *back == text;
}

size_t CountLog(const TestDaemon& d, absl::string_view outcome, absl::string_view reason) {
  size_t n = 0;
  for (const ConnLogLine& l : d.ConnLogLines()) {
    n += l.Field("outcome") == outcome && absl::StrContains(l.line, reason);
  }
  return n;
}

TEST(BackendFaultTest, KilledBackendEndsItsConnectionsAndQueuedClientsReachTheNextOne) {
  TLSD_IT_CHECK_KERNEL();
  std::unique_ptr<TestDaemon> d = Start("queue_timeout_ms = 10000\n");
  ASSERT_NE(d, nullptr);
  std::unique_ptr<BackgroundProcess> first = DemoBackend(*d, "first.log");
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<TlsClient>> warm = TlsClient::Connect(d->port(), {});
  ASSERT_TRUE(warm.ok() && Echo(**warm, "warm")) << "backend does not echo";
  (*warm)->Close();
  absl::SleepFor(absl::Milliseconds(300));
  const int baseline = d->NumFds();

  // Stopped, then killed, with connections handed to it that it never read.
  ASSERT_EQ(kill(first->pid(), SIGSTOP), 0);
  std::vector<std::unique_ptr<TlsClient>> stranded;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), {});
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Write("lost?").ok());
    stranded.push_back(std::move(*c));
  }
  ASSERT_EQ(kill(first->pid(), SIGKILL), 0);
  first.reset();  // reaps it
  for (auto& c : stranded) {
    ReadEnd end = c->ReadToEnd();
    EXPECT_NE(end.kind, ReadEnd::kTimeout)
        << "a client of the killed backend hangs: " << end.Describe();
    EXPECT_EQ(end.data, "");
  }

  // No worker now: new clients wait in the backend's queue, and a worker
  // that subscribes within queue_timeout_ms serves them.
  std::vector<std::unique_ptr<TlsClient>> queued;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), {});
    ASSERT_TRUE(c.ok()) << c.status();
    queued.push_back(std::move(*c));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        PeerResult r =
            RunPeer({BinaryPath("tlsctl"), "--socket", d->control(), "--json", "status"});
        nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
        return !j.is_discarded() && j["backends"][0]["queue_depth"] == 3;
      },
      absl::Seconds(10)))
      << "three clients should be queued";
  std::unique_ptr<BackgroundProcess> second = DemoBackend(*d, "second.log");
  ASSERT_NE(second, nullptr);
  for (size_t i = 0; i < queued.size(); ++i) {
    EXPECT_TRUE(Echo(*queued[i], absl::StrCat("queued ", i))) << "queued client " << i;
  }
  printf(
      "[ faults ] killed backend: %zu stranded clients ended, %zu queued clients served by "
      "the next backend\n",
      stranded.size(), queued.size());
  stranded.clear();
  queued.clear();
  EXPECT_TRUE(WaitFor([&] { return d->NumFds() <= baseline; }, absl::Seconds(10)))
      << "tlsd fds " << d->NumFds() << ", baseline " << baseline;
  EXPECT_TRUE(d->Alive());
}

TEST(BackendFaultTest, FullQueueRefusesAtOnceWithAnAlertAndKeepsTheQueued) {
  TLSD_IT_CHECK_KERNEL();
  std::unique_ptr<TestDaemon> d = Start("queue_limit = 2\nqueue_timeout_ms = 10000\n");
  ASSERT_NE(d, nullptr);
  std::vector<std::unique_ptr<TlsClient>> queued;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), {});
    ASSERT_TRUE(c.ok()) << c.status();
    queued.push_back(std::move(*c));
  }
  // The queue (2) is full: the next clients are refused right away, with a
  // TLS-level end (alert on kTLS, close_notify on relay), not a reset.
  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), {});
    ASSERT_TRUE(c.ok()) << c.status();
    ReadEnd end = (*c)->ReadToEnd();
    EXPECT_THAT(end.kind, AnyOf(ReadEnd::kAlert, ReadEnd::kCloseNotify)) << end.Describe();
    EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << "refused only after a wait";
  }
  EXPECT_TRUE(
      WaitFor([&] { return CountLog(*d, "no-backend", "queue full") == 3; }, absl::Seconds(5)))
      << d->Log();
  // A backend arrives: the two queued clients are served.
  std::unique_ptr<BackgroundProcess> backend = DemoBackend(*d, "backend.log");
  ASSERT_NE(backend, nullptr);
  for (size_t i = 0; i < queued.size(); ++i) {
    EXPECT_TRUE(Echo(*queued[i], "served")) << "queued client " << i;
  }
  printf("[ faults ] queue_limit 2: 2 queued clients served later, 3 refused at once\n");
}

TEST(TlsdFaultTest, KilledTlsdLeavesHandedOffConnectionsWorking) {
  // Relayed connections end with tlsd by design; a kTLS socket belongs to
  // its worker and must not notice tlsd's death.
  TLSD_IT_REQUIRE_KTLS_OR_SKIP();
  std::unique_ptr<TestDaemon> d = Start("");
  ASSERT_NE(d, nullptr);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  std::vector<std::unique_ptr<TlsClient>> clients;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), {});
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(Echo(**c, "before"));
    clients.push_back(std::move(*c));
  }
  ASSERT_EQ(kill(d->pid(), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return !d->Alive(); }, absl::Seconds(5)));
  for (size_t i = 0; i < clients.size(); ++i) {
    EXPECT_TRUE(Echo(*clients[i], absl::StrCat("after tlsd died ", i))) << "client " << i;
  }
  printf("[ faults ] tlsd SIGKILLed: %zu handed-off kTLS connections still echo\n", clients.size());
}

TEST(ReloadFaultTest, UnreadableCertificateIsRefusedAndServingGoesOn) {
  std::unique_ptr<TestDaemon> d = Start("");
  ASSERT_NE(d, nullptr);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string cert = d->env().cert;
  const std::string aside = cert + ".aside";
  // Root reads any file mode, so "unreadable" is a directory in its place.
  ASSERT_EQ(rename(cert.c_str(), aside.c_str()), 0);
  ASSERT_EQ(mkdir(cert.c_str(), 0700), 0);
  PeerResult r = RunPeer({BinaryPath("tlsctl"), "--socket", d->control(), "reload"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr(cert)) << "the reason names the file";
  EXPECT_TRUE(d->WaitForLog("reload refused: "));
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(Echo(**c, "still serving"));
  printf("[ faults ] reload with the certificate unreadable: refused (%s)\n",
         std::string(absl::StripTrailingAsciiWhitespace(r.err)).c_str());
  ASSERT_EQ(rmdir(cert.c_str()), 0);
  ASSERT_EQ(rename(aside.c_str(), cert.c_str()), 0);
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
