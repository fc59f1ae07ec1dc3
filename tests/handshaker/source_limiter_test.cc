#include "tlsd/handshaker/source_limiter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsd {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

WireAddress V4(uint8_t last, uint16_t port = 1000) {
  WireAddress a;
  a.family = 4;
  a.addr[0] = 10;
  a.addr[3] = last;
  a.port = port;
  return a;
}

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(SourceLimiterTest, InFlightPerAddressIgnoresThePort) {
  SourceLimiter l(2, 0);
  EXPECT_THAT(l.Admit(V4(1, 1), kT0), IsEmpty());
  EXPECT_THAT(l.Admit(V4(1, 2), kT0), IsEmpty());
  EXPECT_THAT(l.Admit(V4(1, 3), kT0), HasSubstr("2 handshakes in flight"));
  EXPECT_THAT(l.Admit(V4(2), kT0), IsEmpty()) << "another address is not affected";
  l.Release(V4(1, 1));
  EXPECT_THAT(l.Admit(V4(1, 4), kT0), IsEmpty());
  l.Release(V4(1));
  l.Release(V4(1));
  l.Release(V4(2));
  EXPECT_EQ(l.tracked(), 0u) << "idle addresses hold no state without a rate";
}

TEST(SourceLimiterTest, RatePerAddressRefillsOverTime) {
  SourceLimiter l(0, 2);
  EXPECT_THAT(l.Admit(V4(1), kT0), IsEmpty());
  EXPECT_THAT(l.Admit(V4(1), kT0), IsEmpty());
  EXPECT_THAT(l.Admit(V4(1), kT0), HasSubstr("more than 2 handshakes a second"));
  EXPECT_THAT(l.Admit(V4(1), kT0 + absl::Milliseconds(400)), HasSubstr("more than 2"));
  EXPECT_THAT(l.Admit(V4(1), kT0 + absl::Milliseconds(600)), IsEmpty());  // 1.2 tokens
  EXPECT_THAT(l.Admit(V4(9), kT0), IsEmpty());
}

TEST(SourceLimiterTest, ServiceRateCoversAllAddresses) {
  SourceLimiter l(0, 0, 2);
  EXPECT_THAT(l.Admit(V4(1), kT0), IsEmpty());
  EXPECT_THAT(l.Admit(V4(2), kT0), IsEmpty());
  EXPECT_THAT(l.Admit(V4(3), kT0), HasSubstr("for this service"));
  EXPECT_THAT(l.Admit(V4(3), kT0 + absl::Seconds(1)), IsEmpty());
}

TEST(SourceLimiterTest, AFullTableForgetsIdleAddressesAndOtherwiseRefuses) {
  SourceLimiter l(1, 1);
  auto nth = [](uint32_t i) {
    WireAddress a = V4(0);
    a.addr[1] = static_cast<uint8_t>(i >> 8);
    a.addr[2] = static_cast<uint8_t>(i);
    a.addr[3] = static_cast<uint8_t>(i >> 16);
    return a;
  };
  for (uint32_t i = 0; i < SourceLimiter::kMaxSources; ++i) {
    ASSERT_THAT(l.Admit(nth(i), kT0), IsEmpty());
  }
  // All still in flight: a new address is refused, not tracked.
  EXPECT_THAT(l.Admit(V4(200), kT0), HasSubstr("client addresses"));
  EXPECT_EQ(l.tracked(), SourceLimiter::kMaxSources);
  // Once they are done and their buckets have refilled, they are forgotten.
  for (uint32_t i = 0; i < SourceLimiter::kMaxSources; ++i) l.Release(nth(i));
  EXPECT_THAT(l.Admit(V4(200), kT0 + absl::Seconds(2)), IsEmpty());
  EXPECT_EQ(l.tracked(), 1u);
}

}  // namespace
}  // namespace tlsd
