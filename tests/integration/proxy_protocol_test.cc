// PROXY protocol (proxy_protocol = true): a client that sends a v1 or v2
// header before its ClientHello, as an L4 balancer would, has the address
// from the header in the backend's metadata and in tlsd's log, not the
// loopback peer. A missing or malformed header closes the connection with
// the reason logged; on a service without proxy_protocol a header is a
// failed handshake.

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

std::string V2Tcp4Header() {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += '\x21';  // version 2, PROXY
  h += '\x11';  // TCP over IPv4
  h += std::string("\x00\x0c", 2);
  const unsigned char addr[12] = {203, 0, 113, 7, 198, 51, 100, 1, 0x9c, 0x40, 0x01, 0xbb};
  h.append(reinterpret_cast<const char*>(addr), sizeof addr);
  return h;
}

std::unique_ptr<TestDaemon> Start(bool proxy) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [proxy](const DaemonEnv& env) {
        return SimpleConfig(env, proxy ? "proxy_protocol = true\n" : "");
      }});
  if (!d.ok()) {
    ADD_FAILURE() << d.status();
    return nullptr;
  }
  return std::move(*d);
}

class ProxyHeaderTest : public ::testing::TestWithParam<int> {};

TEST_P(ProxyHeaderTest, AddressesFromTheHeaderReachMetadataAndLog) {
  TLSD_IT_CHECK_KERNEL();
  std::unique_ptr<TestDaemon> d = Start(true);
  ASSERT_NE(d, nullptr);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  ClientOptions opts;
  opts.prefix =
      GetParam() == 1 ? "PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n" : V2Tcp4Header();
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), opts);
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << d->Log();
  ASSERT_TRUE((*c)->Write("behind a proxy").ok());
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(14);
  ASSERT_TRUE(echo.ok()) << echo.status();
  (*c)->Close();
  std::vector<ConnRecord> recs = (*b)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].peer, "203.0.113.7:40000");
  EXPECT_EQ(recs[0].local, "198.51.100.1:443");
  absl::StatusOr<ConnLogLine> line = d->WaitForConnLog(1);
  ASSERT_TRUE(line.ok()) << d->Log();
  EXPECT_EQ(line->Field("peer"), "203.0.113.7:40000") << line->line;
}

INSTANTIATE_TEST_SUITE_P(Versions, ProxyHeaderTest, ::testing::Values(1, 2),
                         [](const auto& info) { return absl::StrCat("V", info.param); });

TEST(ProxyProtocolTest, MissingOrMalformedHeaderIsClosedWithTheReason) {
  std::unique_ptr<TestDaemon> d = Start(true);
  ASSERT_NE(d, nullptr);
  struct Case {
    std::string prefix;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"", "no PROXY header"},
      {"PROXY TCP4 999.0.113.7 198.51.100.1 40000 443\r\n", "PROXY v1 header: bad address"},
      {"PROXY TCP4 203.0.113.7 198.51.100.1 40000\r\n", "PROXY v1 header: want 6 fields"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].reason);
    ClientOptions opts;
    opts.prefix = cases[i].prefix;
    opts.io_timeout = absl::Seconds(5);
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), opts);
    EXPECT_FALSE(c.ok()) << "a connection without a valid PROXY header completed a handshake";
    absl::StatusOr<ConnLogLine> line = d->WaitForConnLog(i + 1);
    ASSERT_TRUE(line.ok()) << d->Log();
    EXPECT_EQ(line->Field("outcome"), "proxy-error") << line->line;
    EXPECT_THAT(line->line, HasSubstr(cases[i].reason));
  }
}

TEST(ProxyProtocolTest, WithoutProxyProtocolAHeaderIsAFailedHandshake) {
  std::unique_ptr<TestDaemon> d = Start(false);
  ASSERT_NE(d, nullptr);
  ClientOptions opts;
  opts.prefix = "PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n";
  opts.io_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d->port(), opts);
  EXPECT_FALSE(c.ok());
  absl::StatusOr<ConnLogLine> line = d->WaitForConnLog(1);
  ASSERT_TRUE(line.ok()) << d->Log();
  EXPECT_EQ(line->Field("outcome"), "handshake-failed") << line->line;
  EXPECT_EQ(line->Field("peer").substr(0, 10), "127.0.0.1:") << line->line;
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
