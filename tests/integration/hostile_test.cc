// Hostile and careless clients, loopback only, every loop bounded in count
// and time (issue 9):
//  - 10,000 connections that never send a ClientHello, held open while a
//    normal client keeps completing handshakes: its success rate must be
//    100% (its p50/p99 are printed); and with fewer fds than silent clients,
//    the oldest silent ones are closed to make room (outcome=evicted);
//  - 1,000 each of random bytes, truncated ClientHellos, oversized records,
//    and clients that drop after each handshake step: tlsd never crashes,
//    every client that waits gets an alert or a close, and tlsd's fd count
//    returns to where it was.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/base/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

// RaiseOwnFdLimit lets this test process hold many sockets; returns the
// soft limit in force.
rlim_t RaiseOwnFdLimit() {
  rlimit l{};
  getrlimit(RLIMIT_NOFILE, &l);
  l.rlim_cur = l.rlim_max;
  // Root may also raise the hard limit (the VM's init starts with 4096).
  if (l.rlim_max < 20000) l.rlim_cur = l.rlim_max = 20000;
  if (setrlimit(RLIMIT_NOFILE, &l) != 0) {
    getrlimit(RLIMIT_NOFILE, &l);
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
  getrlimit(RLIMIT_NOFILE, &l);
  return l.rlim_cur;
}

bool RoundTrip(int port) {
  ClientOptions opts;
  opts.io_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(port, opts);
  if (!c.ok() || !(*c)->Write("x").ok()) return false;
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(1);
  return echo.ok() && *echo == "x";
}

std::unique_ptr<TestDaemon> Start(const std::string& service_extra) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [service_extra](const DaemonEnv& env) {
        return SimpleConfig(env, service_extra);
      }});
  if (!d.ok()) {
    ADD_FAILURE() << d.status();
    return nullptr;
  }
  return std::move(*d);
}

// Holds `n` silent connections (each connect() completes in the kernel; tlsd
// accepts them). Returns how many were made.
std::vector<UniqueFd> Silent(int port, size_t n) {
  std::vector<UniqueFd> held;
  held.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    UniqueFd fd = ConnectLoopback(port);
    if (!fd.valid()) break;
    held.push_back(std::move(fd));
  }
  return held;
}

struct LatencyStats {
  int ok = 0;
  int failed = 0;
  absl::Duration p50, p99;
};

LatencyStats NormalClient(int port, int rounds) {
  LatencyStats s;
  std::vector<absl::Duration> took;
  for (int i = 0; i < rounds; ++i) {
    const absl::Time start = absl::Now();
    if (RoundTrip(port)) {
      ++s.ok;
      took.push_back(absl::Now() - start);
    } else {
      ++s.failed;
    }
  }
  std::sort(took.begin(), took.end());
  if (!took.empty()) {
    s.p50 = took[took.size() / 2];
    s.p99 = took[std::min(took.size() - 1, took.size() * 99 / 100)];
  }
  return s;
}

size_t CountOutcome(const TestDaemon& d, absl::string_view outcome) {
  size_t n = 0;
  for (const ConnLogLine& l : d.ConnLogLines()) n += l.Field("outcome") == outcome;
  return n;
}

TEST(SilentFloodTest, TenThousandSilentConnectionsDoNotStopRealClients) {
  const rlim_t limit = RaiseOwnFdLimit();
  const size_t n = std::min<size_t>(10000, limit > 1024 ? limit - 1024 : 0);
  ASSERT_GE(n, 1000u) << "fd limit " << limit << " too low for this test";
  std::unique_ptr<TestDaemon> d = Start("handshake_timeout_ms = 60000\n");
  ASSERT_NE(d, nullptr);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(RoundTrip(d->port()));
  // (The round trip's relay may still be closing: let the count settle.)
  absl::SleepFor(absl::Milliseconds(300));
  const int baseline = d->NumFds();

  const absl::Time start = absl::Now();
  std::vector<UniqueFd> silent = Silent(d->port(), n);
  ASSERT_EQ(silent.size(), n);
  // tlsd accepts them all (they hold fds, not handshake slots).
  ASSERT_TRUE(
      WaitFor([&] { return d->NumFds() >= baseline + static_cast<int>(n) - 4; }, absl::Seconds(30)))
      << "tlsd holds " << d->NumFds() - baseline << " of " << n << "; evicted "
      << CountOutcome(*d, "evicted")
      << "; log tail: " << d->Log().substr(d->Log().size() > 3000 ? d->Log().size() - 3000 : 0);
  const int held = d->NumFds() - baseline;

  LatencyStats s = NormalClient(d->port(), 200);
  printf(
      "[ hostile ] %zu silent connections held by tlsd (%d fds over baseline, made in %s); "
      "normal client: %d/%d ok, p50 %s, p99 %s\n",
      n, held, absl::FormatDuration(absl::Now() - start).c_str(), s.ok, s.ok + s.failed,
      absl::FormatDuration(s.p50).c_str(), absl::FormatDuration(s.p99).c_str());
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.ok, 200);
  EXPECT_EQ(CountOutcome(*d, "evicted"), 0u) << "no eviction needed below the fd limit";

  silent.clear();
  EXPECT_TRUE(WaitFor([&] { return d->NumFds() <= baseline; }, absl::Seconds(30)))
      << "tlsd fds " << d->NumFds() << ", baseline " << baseline;
  EXPECT_TRUE(d->Alive());
}

TEST(SilentFloodTest, OutOfFdsTheOldestSilentConnectionsAreEvicted) {
  RaiseOwnFdLimit();
  std::unique_ptr<TestDaemon> d = Start("handshake_timeout_ms = 60000\n");
  ASSERT_NE(d, nullptr);
  // Lower tlsd's limit under it: accept() then fails with EMFILE, which
  // must make room by closing the oldest silent connection.
  const rlimit low{1536, 1536};
  ASSERT_EQ(prlimit(d->pid(), RLIMIT_NOFILE, &low, nullptr), 0) << strerror(errno);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  const int baseline = d->NumFds();

  // More silent clients than tlsd has fds for.
  std::vector<UniqueFd> silent = Silent(d->port(), 3000);
  ASSERT_EQ(silent.size(), 3000u);
  ASSERT_TRUE(WaitFor([&] { return CountOutcome(*d, "evicted") > 0; }, absl::Seconds(30)))
      << d->Log().substr(0, 4000);
  LatencyStats s = NormalClient(d->port(), 50);
  const size_t evicted = CountOutcome(*d, "evicted");
  printf(
      "[ hostile ] fd limit 1536, 3000 silent clients: %zu evicted, tlsd holds %d fds; normal "
      "client %d/%d ok, p99 %s\n",
      evicted, d->NumFds(), s.ok, s.ok + s.failed, absl::FormatDuration(s.p99).c_str());
  EXPECT_EQ(s.ok, 50);
  EXPECT_GE(evicted, 3000u - 1536u);
  EXPECT_LT(d->NumFds(), 1536);
  silent.clear();
  EXPECT_TRUE(WaitFor([&] { return d->NumFds() <= baseline; }, absl::Seconds(30)));
  EXPECT_TRUE(d->Alive());
}

// --- Malformed and abandoned handshakes --------------------------------------

// How a hostile client's connection ended, from its side.
enum class End { kAlert, kClose, kReset, kTimeout };

// ReadEndOf waits (bounded) for tlsd to answer: a TLS alert record, a FIN or
// a reset. Anything else it sends first (a ServerHello) is skipped.
End ReadEndOf(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  bool first = true;
  for (;;) {
    const int ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return End::kTimeout;
    uint8_t buf[4096];
    const ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r == 0) return End::kClose;
    if (r < 0) return errno == ECONNRESET ? End::kReset : End::kTimeout;
    // A plaintext alert record (before keys) starts with content type 21.
    if (first && buf[0] == 21) return End::kAlert;
    first = false;
  }
}

// ClientHello returns the bytes of a real TLS 1.3/1.2 ClientHello.
std::string ClientHello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_connect(ssl);  // writes the ClientHello, then wants to read
  char* data = nullptr;
  const long len = BIO_get_mem_data(wbio, &data);
  std::string hello(data, static_cast<size_t>(len));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello;
}

struct Tally {
  std::atomic<int> alert{0}, close{0}, reset{0}, timeout{0}, connect_failed{0};
  std::string Describe() const {
    return absl::StrCat("alert ", alert.load(), ", close ", close.load(), ", reset ", reset.load(),
                        ", no answer ", timeout.load(), ", connect failed ", connect_failed.load());
  }
};

// RunClients runs `count` clients, `parallel` at a time; each gets a socket
// and returns how its connection ended (or kTimeout for "did not wait").
void RunClients(int count, int parallel,
                const std::function<std::optional<End>(int fd, int i)>& one, int port,
                Tally& tally) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < parallel; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        UniqueFd fd = ConnectLoopback(port);
        if (!fd.valid()) {
          ++tally.connect_failed;
          continue;
        }
        std::optional<End> end = one(fd.get(), i);
        if (!end.has_value()) continue;
        switch (*end) {
          case End::kAlert:
            ++tally.alert;
            break;
          case End::kClose:
            ++tally.close;
            break;
          case End::kReset:
            ++tally.reset;
            break;
          case End::kTimeout:
            ++tally.timeout;
            break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

bool SendAll(int fd, const std::string& data) {
  return send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
}

class MalformedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A short handshake timeout: a truncated ClientHello is answered by it.
    daemon_ = Start("handshake_timeout_ms = 1000\n");
    ASSERT_NE(daemon_, nullptr);
    absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
        InProcessBackend::Subscribe(daemon_->control(), "app", EchoHandler());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
    ASSERT_TRUE(RoundTrip(daemon_->port()));
    baseline_ = daemon_->NumFds();
  }

  // Finish checks tlsd survived, still serves, and its fds came back.
  void Finish(const char* what, const Tally& tally, absl::Duration took) {
    printf("[ hostile ] %s x%d in %s: %s; tlsd fds %d before, %d after\n", what, kClients,
           absl::FormatDuration(took).c_str(), tally.Describe().c_str(), baseline_,
           daemon_->NumFds());
    EXPECT_TRUE(daemon_->Alive()) << what;
    EXPECT_EQ(tally.connect_failed.load(), 0) << what;
    EXPECT_TRUE(RoundTrip(daemon_->port())) << what << ": tlsd no longer serves";
    EXPECT_TRUE(WaitFor([&] { return daemon_->NumFds() <= baseline_; }, absl::Seconds(20)))
        << what << ": tlsd fds " << daemon_->NumFds() << ", baseline " << baseline_;
  }

  static constexpr int kClients = 1000;
  static constexpr int kParallel = 50;
  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<InProcessBackend> backend_;
  int baseline_ = 0;
};

TEST_F(MalformedTest, RandomBytesGetAnAlertOrAClose) {
  Tally tally;
  const absl::Time start = absl::Now();
  RunClients(
      kClients, kParallel,
      [](int fd, int i) -> std::optional<End> {
        std::mt19937 rng(static_cast<uint32_t>(i));
        std::string junk(64 + rng() % 4000, '\0');
        for (char& ch : junk) ch = static_cast<char>(rng());
        if (!SendAll(fd, junk)) return End::kReset;
        return ReadEndOf(fd, absl::Seconds(5));
      },
      daemon_->port(), tally);
  EXPECT_EQ(tally.timeout.load(), 0) << tally.Describe();
  Finish("random bytes", tally, absl::Now() - start);
}

TEST_F(MalformedTest, TruncatedClientHellosGetAnAlertOrAClose) {
  const std::string hello = ClientHello();
  ASSERT_GT(hello.size(), 100u);
  Tally tally;
  const absl::Time start = absl::Now();
  RunClients(
      kClients, kParallel,
      [&](int fd, int i) -> std::optional<End> {
        // 1 .. size-1 bytes: never the whole message; tlsd waits for the
        // rest until its handshake timeout, then closes.
        if (!SendAll(fd, hello.substr(0, 1 + static_cast<size_t>(i) % (hello.size() - 1)))) {
          return End::kReset;
        }
        return ReadEndOf(fd, absl::Seconds(5));
      },
      daemon_->port(), tally);
  EXPECT_EQ(tally.timeout.load(), 0) << tally.Describe();
  Finish("truncated ClientHello", tally, absl::Now() - start);
}

TEST_F(MalformedTest, OversizedRecordsGetAnAlert) {
  Tally tally;
  const absl::Time start = absl::Now();
  RunClients(
      kClients, kParallel,
      [](int fd, int i) -> std::optional<End> {
        // A handshake record longer than TLS allows (2^14 + 2048), then data.
        const uint16_t len = static_cast<uint16_t>(18433 + i % 4000);
        std::string rec = {22, 3, 1, static_cast<char>(len >> 8), static_cast<char>(len & 0xff)};
        rec.append(512, 'A');
        if (!SendAll(fd, rec)) return End::kReset;
        return ReadEndOf(fd, absl::Seconds(5));
      },
      daemon_->port(), tally);
  EXPECT_EQ(tally.timeout.load(), 0) << tally.Describe();
  EXPECT_EQ(tally.alert.load(), kClients) << "record_overflow is an alert; " << tally.Describe();
  Finish("oversized record", tally, absl::Now() - start);
}

TEST_F(MalformedTest, ClientsThatDropAfterEachHandshakeStepCostNothing) {
  const std::string hello = ClientHello();
  Tally tally;
  const absl::Time start = absl::Now();
  RunClients(
      kClients, kParallel,
      [&](int fd, int i) -> std::optional<End> {
        switch (i % 4) {
          case 0:  // connect, then leave
            break;
          case 1:  // ClientHello, then leave
            SendAll(fd, hello);
            break;
          case 2: {  // ClientHello, wait for the server's flight, then leave
            SendAll(fd, hello);
            pollfd p{fd, POLLIN, 0};
            poll(&p, 1, 5000);
            break;
          }
          case 3: {  // as 2, then reset the connection
            SendAll(fd, hello);
            pollfd p{fd, POLLIN, 0};
            poll(&p, 1, 5000);
            linger l{1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
            break;
          }
        }
        return std::nullopt;  // the client does not wait for an answer
      },
      daemon_->port(), tally);
  Finish("drop after connect / ClientHello / server flight / reset", tally, absl::Now() - start);
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
