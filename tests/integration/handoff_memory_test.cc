// tlsd keeps nothing per connection once a connection is handed off with
// kTLS (ARCHITECTURE.md: the state it needs later travels sealed with the
// socket), so its resident memory must not grow with the connections its
// workers hold. Measured with 10,000 connections held open by this test's
// worker: tlsd's VmRSS may grow by less than 1 MiB over its level after a
// warm-up. kTLS only: a relayed connection keeps tlsd's relay buffers and
// sockets by design.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/unique_fd.h"
#include "gtest/gtest.h"
#include "libtlsfd/include/tlsfd.hpp"
#include "tests/integration/support/harness.h"
#include "tests/support/test_certs.h"

namespace tlsd {
namespace integration {
namespace {

constexpr int kWarmUp = 200;
constexpr int kHeld = 10000;
constexpr int64_t kMaxGrowthBytes = 1 << 20;

// VmRssBytes reads a process's resident set size.
int64_t VmRssBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      int64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    std::getline(status, key);
  }
  return -1;
}

// LeanClient makes TLS 1.2 connections to tlsd with one context and, after
// the first, resumed sessions (cheap under the VM's software emulation). It
// keeps only the sockets: 10,000 OpenSSL objects would not fit the VM.
class LeanClient {
 public:
  explicit LeanClient(int port) : port_(port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION);
    EXPECT_TRUE(testing::TrustCa(ctx_, SharedCerts().ca()).ok());
  }
  ~LeanClient() {
    if (session_ != nullptr) SSL_SESSION_free(session_);
    SSL_CTX_free(ctx_);
  }

  // Connect completes one handshake; the socket stays open in fds_.
  bool Connect() {
    UniqueFd fd = ConnectLoopback(port_);
    if (!fd.valid()) return false;
    timeval tv{30, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd.get());
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (session_ != nullptr) SSL_set_session(ssl, session_);
    const bool ok = SSL_connect(ssl) == 1;
    if (ok && session_ == nullptr) session_ = SSL_get1_session(ssl);
    if (ok && SSL_session_reused(ssl) == 1) ++resumed_;
    // Freed without a shutdown: the connection goes on, unencrypted bytes
    // are never sent on it again, and the session stays (we hold a copy).
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
    if (ok) fds_.push_back(std::move(fd));
    return ok;
  }
  void CloseAll() { fds_.clear(); }
  int resumed() const { return resumed_; }

 private:
  int port_;
  SSL_CTX* ctx_ = nullptr;
  SSL_SESSION* session_ = nullptr;
  std::vector<UniqueFd> fds_;
  int resumed_ = 0;
};

TEST(HandoffMemoryTest, TlsdRssDoesNotGrowWithTenThousandHandedOffConnections) {
  TLSD_IT_REQUIRE_KTLS_OR_SKIP();
  // Two fds per connection here (client end and the handed-off server end).
  rlimit lim{2 * kHeld + 1024, 2 * kHeld + 1024};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0) << "needs root (the VM lane runs as root)";
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(d.ok()) << d.status();
  tlsfd::Server worker;
  ASSERT_EQ(tlsfd::Server::Subscribe((*d)->control().c_str(), "app", &worker), 0)
      << tlsfd_last_error();
  std::vector<tlsfd::Conn> held;
  held.reserve(kHeld);
  auto take = [&](int n) {
    for (int i = 0; i < n; ++i) {
      tlsfd::Conn c;
      int rc = worker.Accept(&c, 0);
      if (rc != 0) return rc;
      held.push_back(std::move(c));
    }
    return 0;
  };

  LeanClient client((*d)->port());
  for (int i = 0; i < kWarmUp; ++i) {
    ASSERT_TRUE(client.Connect()) << "warm-up connection " << i << "\n" << (*d)->Log();
    ASSERT_EQ(take(1), 0) << tlsfd_last_error();
  }
  held.clear();
  client.CloseAll();
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t idle = VmRssBytes((*d)->pid());
  ASSERT_GT(idle, 0);

  const absl::Time start = absl::Now();
  for (int i = 0; i < kHeld; ++i) {
    ASSERT_TRUE(client.Connect()) << "connection " << i << "\n" << (*d)->Log().substr(0, 4000);
    ASSERT_EQ(take(1), 0) << tlsfd_last_error();
  }
  const absl::Duration took = absl::Now() - start;
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t loaded = VmRssBytes((*d)->pid());
  const int fds = (*d)->NumFds();
  std::cout << "[ MEASURE  ] tlsd VmRSS idle " << idle << " B, with " << held.size()
            << " handed-off connections held " << loaded << " B: growth " << (loaded - idle)
            << " B (" << (loaded - idle) / static_cast<int64_t>(held.size())
            << " B per connection); tlsd fds " << fds << "; " << client.resumed() << " resumed; "
            << absl::FormatDuration(took) << std::endl;
  EXPECT_EQ(held.size(), static_cast<size_t>(kHeld));
  EXPECT_LT(loaded - idle, kMaxGrowthBytes);
  EXPECT_LT(fds, 64) << "tlsd must not keep the handed-off sockets";
  for (const tlsfd::Conn& c : held) {
    tlsfd_info info{};
    c.Info(&info);
    if (info.rx_path != TLSFD_PATH_KTLS_SW && info.rx_path != TLSFD_PATH_KTLS_HW) {
      ADD_FAILURE() << "connection " << info.connection_id << " is " << info.rx_path_name;
      break;
    }
  }
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
