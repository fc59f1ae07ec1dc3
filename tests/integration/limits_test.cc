// Per-source handshake limits: with max_handshakes_per_source = 2, two
// connections from 127.0.0.1 that never send a ClientHello take the address's
// slots; a third from 127.0.0.1 is closed before any handshake and logged as
// refused-limit, while a client from 127.0.0.2 completes its handshake; once
// a slot frees, 127.0.0.1 is served again. The per-second limit likewise.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

// One handshake thread, so that connections are admitted in accept order.
std::unique_ptr<TestDaemon> Start(const std::string& service_extra) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [service_extra](const DaemonEnv& env) {
        return absl::StrReplaceAll(SimpleConfig(env, service_extra),
                                   {{"[global]\n", "[global]\nthreads = 1\n"}});
      }});
  if (!d.ok()) {
    ADD_FAILURE() << d.status();
    return nullptr;
  }
  return std::move(*d);
}

bool RoundTrip(int port, const std::string& source) {
  ClientOptions opts;
  opts.source_address = source;
  opts.io_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(port, opts);
  if (!c.ok() || !(*c)->Write("x").ok()) return false;
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(1);
  return echo.ok() && *echo == "x";
}

size_t CountRefused(const TestDaemon& d) {
  size_t n = 0;
  for (const ConnLogLine& l : d.ConnLogLines()) n += l.Field("outcome") == "refused-limit";
  return n;
}

TEST(SourceLimitTest, OneAddressOverItsHandshakesIsRefusedWhileAnotherIsServed) {
  std::unique_ptr<TestDaemon> d = Start("max_handshakes_per_source = 2\n");
  ASSERT_NE(d, nullptr);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  // Two TCP connections that never say anything.
  UniqueFd idle1 = ConnectLoopback(d->port());
  UniqueFd idle2 = ConnectLoopback(d->port());
  ASSERT_TRUE(idle1.valid());
  ASSERT_TRUE(idle2.valid());

  EXPECT_FALSE(RoundTrip(d->port(), "127.0.0.1")) << "the third from 127.0.0.1 was served";
  ASSERT_TRUE(WaitFor([&] { return CountRefused(*d) == 1; }, absl::Seconds(5))) << d->Log();
  EXPECT_THAT(d->Log(), HasSubstr("outcome=refused-limit reason=2 handshakes in flight from this "
                                  "address (max_handshakes_per_source = 2)"));
  EXPECT_TRUE(RoundTrip(d->port(), "127.0.0.2")) << "another address must still be served\n"
                                                 << d->Log();

  // A slot frees when an idle client leaves: 127.0.0.1 is served again.
  idle1.Reset();
  EXPECT_TRUE(WaitFor([&] { return RoundTrip(d->port(), "127.0.0.1"); }, absl::Seconds(10)))
      << d->Log();
  idle2.Reset();
}

TEST(SourceLimitTest, OneAddressOverItsRateIsRefusedWhileAnotherIsServed) {
  std::unique_ptr<TestDaemon> d = Start("handshakes_per_second_per_source = 1\n");
  ASSERT_NE(d, nullptr);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(RoundTrip(d->port(), "127.0.0.1")) << d->Log();
  // Well within the same second (a handshake takes milliseconds here, a
  // few hundred under the VM's emulation).
  EXPECT_FALSE(RoundTrip(d->port(), "127.0.0.1"));
  EXPECT_TRUE(RoundTrip(d->port(), "127.0.0.2")) << d->Log();
  EXPECT_EQ(CountRefused(*d), 1u) << d->Log();
  EXPECT_THAT(d->Log(), HasSubstr("more than 1 handshakes a second from this address"));
}

TEST(SourceLimitTest, TheServiceRateCoversEveryAddress) {
  std::unique_ptr<TestDaemon> d = Start("handshakes_per_second = 1\n");
  ASSERT_NE(d, nullptr);
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe(d->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(RoundTrip(d->port(), "127.0.0.1")) << d->Log();
  EXPECT_FALSE(RoundTrip(d->port(), "127.0.0.2")) << "a second address shares the service's rate";
  EXPECT_EQ(CountRefused(*d), 1u) << d->Log();
  EXPECT_THAT(d->Log(), HasSubstr("more than 1 handshakes a second for this service"));
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
