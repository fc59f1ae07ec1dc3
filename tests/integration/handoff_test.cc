// Handing connections to backends when things go wrong:
//  - a subscriber whose uid the policy does not allow is refused, is told
//    why, and tlsd logs who it refused;
//  - subscribers that die mid-handoff (close without accepting, close right
//    after accepting, unsubscribe before the connection arrives, exit) cost
//    tlsd no file descriptor, over 1,000 cycles;
//  - with no backend at all, the client gets a TLS alert or close_notify
//    after queue_timeout_ms, not a silent reset, and tlsd logs no-backend.

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"
#include "tlsfd.hpp"

namespace tlsd {
namespace integration {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Policy

TEST(SubscriberPolicyTest, SubscriberWhoseUidIsNotAllowedIsRefusedAndLogged) {
  if (getuid() != 0) GTEST_SKIP() << "skipped: needs root to drop to uid 65534";
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  const std::string control = d.control();

  int pipefd[2];
  ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: become nobody, then try to subscribe. Report rc and message.
    close(pipefd[0]);
    int rc = -1000;
    std::string msg;
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
      msg = absl::StrCat("cannot drop to 65534: ", strerror(errno));
    } else {
      tlsfd_server* srv = nullptr;
      rc = tlsfd_server_subscribe(control.c_str(), "app", &srv);
      msg = tlsfd_last_error();
      tlsfd_server_free(srv);
    }
    const std::string out = absl::StrCat(rc, "\n", msg);
    ssize_t ignored = write(pipefd[1], out.data(), out.size());
    (void)ignored;
    _exit(0);
  }
  close(pipefd[1]);
  std::string got;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    pollfd p{pipefd[0], POLLIN, 0};
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0 || poll(&p, 1, left) <= 0) break;
    char buf[1024];
    ssize_t n = read(pipefd[0], buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, n);
  }
  close(pipefd[0]);
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) != pid) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  const size_t nl = got.find('\n');
  ASSERT_NE(nl, std::string::npos) << "child reported nothing: '" << got << "'";
  const std::string rc = got.substr(0, nl), msg = got.substr(nl + 1);
  EXPECT_EQ(rc, absl::StrCat(-EACCES)) << msg;
  EXPECT_THAT(msg, HasSubstr("uid 65534")) << "tlsfd_last_error() should say which uid was refused";
  EXPECT_THAT(msg, HasSubstr("app"));
  // tlsd names whom it refused.
  EXPECT_TRUE(d.WaitForLog(absl::StrCat("pid ", pid, " uid 65534"))) << d.Log();
  EXPECT_THAT(d.Log(), HasSubstr("refused"));
}

TEST(SubscriberPolicyTest, UnknownBackendIsRefusedWithTheProtocolsErrorCode) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  tlsfd::Server srv;
  // The wire protocol (common/wire/messages.h, ERROR) says tlsd refuses an
  // unknown backend with ECONNREFUSED, which tlsfd_server_subscribe returns
  // as is. ENOENT would be indistinguishable from "no control socket at that
  // path" (tlsd not running), which connect() reports as -ENOENT.
  const int rc = tlsfd::Server::Subscribe((*daemon)->control().c_str(), "nosuch", &srv);
  const std::string msg = tlsfd_last_error();
  EXPECT_EQ(rc, -ECONNREFUSED) << "got " << strerror(-rc) << ": " << msg;
  EXPECT_THAT(msg, HasSubstr("'nosuch'"));
  EXPECT_FALSE(srv);
}

// ---------------------------------------------------------------------------
// Dying backends

std::string FdListing(pid_t pid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    out.push_back(absl::StrCat(it->path().filename().string(), " -> ",
                               std::filesystem::read_symlink(it->path(), ec2).string()));
  }
  return absl::StrJoin(out, "\n");
}

// What one subscriber does with its subscription.
enum class Dies {
  kWithoutAccepting,  // a connection arrives; it closes without tlsfd_accept
  kRightAfterAccept,  // accepts, closes the connection and the subscription
  kBeforeConnection,  // unsubscribes before any connection is handed over
  kProcessExits,      // a child process that exits once a connection arrives
};

// ForkedSubscriber subscribes in a child process, which exits (without
// closing anything itself) as soon as a connection is waiting, or after 10 s.
// Returns the pid once subscribed, or -1.
pid_t ForkedSubscriber(const std::string& control) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(ready[0]);
    tlsfd_server* srv = nullptr;
    char ok = tlsfd_server_subscribe(control.c_str(), "app", &srv) == 0 ? '1' : '0';
    ssize_t ignored = write(ready[1], &ok, 1);
    (void)ignored;
    if (srv != nullptr) {
      pollfd p{tlsfd_server_fd(srv), POLLIN, 0};
      poll(&p, 1, 10000);
    }
    _exit(0);
  }
  close(ready[1]);
  char ok = 0;
  pollfd p{ready[0], POLLIN, 0};
  if (poll(&p, 1, 10000) != 1 || read(ready[0], &ok, 1) != 1 || ok != '1') {
    close(ready[0]);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  close(ready[0]);
  return pid;
}

// ReapWithin waits for `pid` to exit; false if it is still running.
bool ReapWithin(pid_t pid, absl::Duration timeout) {
  return WaitFor([pid] { return waitpid(pid, nullptr, WNOHANG) == pid; }, timeout);
}

TEST(DyingBackendTest, ThousandSubscribersDyingMidHandoffCostTlsdNoFd) {
  TLSD_IT_CHECK_KERNEL();
  // Connections no live subscriber takes wait 100 ms, then are closed.
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return SimpleConfig(env, "", "queue_timeout_ms = 100\n");
      }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;

  // Warm up with one ordinary connection, then take the baseline. Its TLS
  // 1.2 session lets most cycles resume: no public-key crypto per cycle,
  // which under the VM lane's TCG costs far more than the handoff itself.
  SSL_SESSION* session = nullptr;
  {
    absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
        InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
    ASSERT_TRUE(b.ok()) << b.status();
    ClientOptions opts;
    opts.version = TLS1_2_VERSION;
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.port(), opts);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Write("x").ok());
    ASSERT_TRUE((*c)->ReadExactly(1).ok());
    session = (*c)->Get1Session();
    (*c)->Close();
    ASSERT_EQ((*b)->WaitForConnections(1).size(), 1u);
  }
  ASSERT_NE(session, nullptr);
  absl::Cleanup free_session = [session] { SSL_SESSION_free(session); };
  std::atomic<int> resumed{0};
  int baseline = -1;
  // Settled: the same count twice, 200 ms apart.
  ASSERT_TRUE(WaitFor(
      [&] {
        int a = d.NumFds();
        absl::SleepFor(absl::Milliseconds(200));
        baseline = d.NumFds();
        return a == baseline && a > 0;
      },
      absl::Seconds(10)));

  constexpr int kCycles = 1000;
  constexpr int kBatch = 25;
  const absl::Time start = absl::Now();
  std::atomic<int> clients_ok{0}, clients_hung{0}, clients_failed{0};
  std::string client_failures;  // one line per client whose handshake failed
  std::string odd_ends;
  std::mutex failure_mu;
  for (int batch = 0; batch < kCycles / kBatch; ++batch) {
    // One of each batch is a process that exits; it subscribes first, before
    // this batch's threads exist.
    pid_t child = ForkedSubscriber(d.control());
    ASSERT_GT(child, 0) << "forked subscriber could not subscribe; log:\n" << d.Log();
    struct Sub {
      tlsfd::Server server;
      Dies dies;
    };
    std::vector<Sub> subs(kBatch - 1);
    for (int i = 0; i < kBatch - 1; ++i) {
      subs[i].dies = static_cast<Dies>(i % 3);
      int rc = tlsfd::Server::Subscribe(d.control().c_str(), "app", &subs[i].server);
      ASSERT_EQ(rc, 0) << tlsfd_last_error();
      if (subs[i].dies == Dies::kBeforeConnection) subs[i].server.reset();
    }
    std::vector<std::thread> clients;
    for (int i = 0; i < kBatch; ++i) {
      // One client in ten makes a full TLS 1.3 handshake, the others resume.
      const bool full = i % 10 == 0;
      clients.emplace_back([&, full] {
        ClientOptions opts;
        opts.io_timeout = absl::Seconds(10);
        // Each client gets its own copy: OpenSSL marks a session it used
        // not resumable when that connection ends with a fatal alert (as
        // tlsd's internal_error for a connection no backend took).
        SSL_SESSION* mine = full ? nullptr : SSL_SESSION_dup(session);
        absl::Cleanup free_mine = [mine] { SSL_SESSION_free(mine); };
        if (!full) {
          opts.version = TLS1_2_VERSION;
          opts.session = mine;
        }
        const absl::Time client_start = absl::Now();
        absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.port(), opts);
        if (!c.ok()) {
          ++clients_failed;
          std::lock_guard<std::mutex> l(failure_mu);
          absl::StrAppend(&client_failures, "client failed: ", c.status().message(), " after ",
                          absl::FormatDuration(absl::Now() - client_start), "\n");
          return;
        }
        if (SSL_session_reused((*c)->ssl()) == 1) ++resumed;
        ReadEnd end = (*c)->ReadToEnd();
        if (end.kind == ReadEnd::kError || end.kind == ReadEnd::kEof) {
          // Every connection here ends with close_notify (the subscriber
          // closed it) or an alert (no backend took it); note the others.
          std::lock_guard<std::mutex> l(failure_mu);
          absl::StrAppend(&odd_ends, "client ", (*c)->LocalAddress(), ": ", end.Describe(),
                          " after ", absl::FormatDuration(absl::Now() - client_start), "\n");
        }
        if (end.kind == ReadEnd::kTimeout) {
          ++clients_hung;
        } else {
          ++clients_ok;
        }
        (*c)->Close();
      });
    }
    // Serve the subscriptions until every client is done (bounded).
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      std::vector<pollfd> fds;
      std::vector<size_t> which;
      for (size_t i = 0; i < subs.size(); ++i) {
        if (subs[i].server) {
          fds.push_back({subs[i].server.fd(), POLLIN, 0});
          which.push_back(i);
        }
      }
      if (clients_ok + clients_hung + clients_failed == (batch + 1) * kBatch) break;
      if (fds.empty()) {
        absl::SleepFor(absl::Milliseconds(5));
        continue;
      }
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (size_t k = 0; k < fds.size(); ++k) {
        if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Sub& s = subs[which[k]];
        if (s.dies == Dies::kRightAfterAccept) {
          tlsfd::Conn conn;
          (void)s.server.Accept(&conn, TLSFD_NONBLOCK);
          conn.reset();  // closes the connection right after receiving it
        }
        s.server.reset();  // kWithoutAccepting: the fd in flight is dropped
      }
    }
    for (std::thread& t : clients) t.join();
    subs.clear();
    if (!ReapWithin(child, absl::Seconds(15))) {
      ADD_FAILURE() << "forked subscriber " << child << " did not exit";
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
    }
  }
  const absl::Duration took = absl::Now() - start;
  // A client whose own TCP connection is lost mid-handshake is not what this
  // test is about, and it happens here: on the VM lane's 6.1 kernel (not on
  // 7.x, not on the host) 1 to 3 clients in 1000 have their socket reset or
  // read EAGAIN under it while tlsd logs the peer as gone (closed before its
  // first byte, unexpected eof, or getpeername ENOTCONN before sealing).
  // Cause not found yet (see tests/integration/README.md); a few are
  // tolerated and reported, but only where the client itself failed on that
  // very connection; tlsd's own failures never are.
  constexpr int kLostClientsTolerated = 5;
  if (!client_failures.empty()) std::cout << "[ NOTE     ] " << client_failures;
  EXPECT_LE(clients_failed.load(), kLostClientsTolerated) << client_failures;
  EXPECT_EQ(clients_hung.load(), 0) << "clients whose connection neither ended nor got data";
  EXPECT_EQ(clients_ok.load(), kCycles - clients_failed - clients_hung);
  EXPECT_GT(resumed.load(), kCycles / 2) << "the cycles were meant to resume a session";
  ASSERT_TRUE(d.Alive()) << "tlsd died; log:\n" << d.Log();
  // The cycles really handed connections to dying subscribers (not only
  // timed them out in the queue).
  std::map<std::string, int> outcomes;
  std::string unexpected;  // lines of outcomes a dying backend does not explain
  std::string lost;        // connections whose client was gone (see above)
  int num_lost = 0;
  for (const ConnLogLine& l : d.ConnLogLines()) {
    const std::string outcome = l.Field("outcome");
    ++outcomes[outcome];
    if (outcome == "handed-off" || outcome == "relay" || outcome == "no-backend") continue;
    const bool looks_gone =
        (outcome == "closed" &&
         absl::StrContains(l.line, "reason=the client closed without sending anything")) ||
        (outcome == "handshake-failed" &&
         absl::StrContains(l.line, "reason=unexpected eof while reading")) ||
        (outcome == "refused" && absl::StrContains(l.line, "Transport endpoint is not connected"));
    // ... and the client on that connection (tlsd's peer= is the client's
    // local address) saw its handshake fail or its connection end oddly.
    const std::string peer = l.Field("peer");
    const bool client_gone =
        looks_gone && (absl::StrContains(client_failures, absl::StrCat("[local ", peer, "]")) ||
                       absl::StrContains(odd_ends, absl::StrCat("client ", peer, ": ")));
    absl::StrAppend(client_gone ? &lost : &unexpected, l.line, "\n");
    if (client_gone) {
      ++num_lost;
      // What that client saw, for the record (tests/integration/README.md).
      for (absl::string_view c : absl::StrSplit(odd_ends, '\n')) {
        if (absl::StartsWith(c, absl::StrCat("client ", peer, ": "))) {
          absl::StrAppend(&lost, "  ", c, "\n");
        }
      }
    }
  }
  EXPECT_EQ(unexpected, "") << "connections that failed for another reason; clients:\n"
                            << client_failures << odd_ends;
  EXPECT_LE(num_lost, kLostClientsTolerated) << lost << "clients:\n" << odd_ends;
  if (num_lost > 0) {
    std::cout << "[ NOTE     ] " << num_lost << " connection(s) lost by their client:\n" << lost;
  }
  const int handed = outcomes[KernelKtls() ? "handed-off" : "relay"];
  EXPECT_GT(handed, kCycles / 2) << "too few handoffs";
  std::string mix;
  for (const auto& [k, v] : outcomes) absl::StrAppend(&mix, " ", k, "=", v);

  // tlsd gives every descriptor back (the queue timeout is 100 ms).
  bool settled = WaitFor([&] { return d.NumFds() == baseline; }, absl::Seconds(10));
  const int fds_after = d.NumFds();
  EXPECT_TRUE(settled) << "tlsd holds " << d.NumFds() << " fds after " << kCycles
                       << " dying subscribers, " << baseline << " before:\n"
                       << FdListing(d.pid());

  // And it still serves.
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.port(), {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Write("still here").ok());
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(10);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "still here");
  std::cout << "[ TIMING   ] " << kCycles << " dying-subscriber cycles in "
            << absl::FormatDuration(took) << " (" << resumed.load() << " resumed); outcomes:" << mix
            << "; tlsd fds " << baseline << " before, " << fds_after << " after"
            << "; client calls retried after EINTR: " << TlsClient::Interruptions() << std::endl;
}

// ---------------------------------------------------------------------------
// No backend

class NoBackendTest : public ::testing::TestWithParam<int> {};

TEST_P(NoBackendTest, ClientGetsAlertAfterQueueTimeoutNotSilentReset) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return SimpleConfig(env, "", "queue_timeout_ms = 500\n");
      }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  ClientOptions opts;
  opts.version = GetParam();
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<TlsClient>> client = TlsClient::Connect(d.port(), opts);
  ASSERT_TRUE(client.ok()) << client.status();
  ReadEnd end = (*client)->ReadToEnd();
  const absl::Duration waited = absl::Now() - start;
  // A TLS-level end: close_notify (relay: OpenSSL can only send that) or a
  // fatal alert (kTLS: tlsd sends internal_error) — never a bare TCP close.
  EXPECT_THAT(end.kind, AnyOf(ReadEnd::kCloseNotify, ReadEnd::kAlert)) << end.Describe();
  EXPECT_EQ(end.data, "");
  EXPECT_GE(waited, absl::Milliseconds(450)) << "closed before queue_timeout_ms";
  EXPECT_LT(waited, absl::Seconds(5));
  absl::StatusOr<ConnLogLine> line = d.WaitForConnLog(1);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->Field("outcome"), "no-backend") << line->line;
  EXPECT_EQ(line->Field("backend"), "app") << line->line;
  EXPECT_THAT(line->line, HasSubstr("500 ms")) << line->line;
}

INSTANTIATE_TEST_SUITE_P(Tls12AndTls13, NoBackendTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? "TLSv13" : "TLSv12";
                         });

}  // namespace
}  // namespace integration
}  // namespace tlsd
