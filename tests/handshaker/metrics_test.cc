// Metrics: the histogram's buckets and quantiles, and what an endpoint's
// snapshot derives (failures, negotiated pairs) - pure logic, no sockets.

#include "tlsd/handshaker/metrics.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace tlsd {
namespace {

constexpr double kBounds[] = {1, 2, 4};

TEST(HistogramTest, BucketsAreUpperInclusiveAndCumulative) {
  Histogram h(kBounds);
  h.Observe(absl::Milliseconds(500));
  h.Observe(absl::Seconds(1));  // on a bound: counted in le="1"
  h.Observe(absl::Milliseconds(1500));
  h.Observe(absl::Seconds(3));
  h.Observe(absl::Seconds(9));  // +Inf
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 15.0);
}

TEST(HistogramTest, QuantileInterpolatesInsideTheBucket) {
  Histogram h(kBounds);
  EXPECT_EQ(h.Read().Quantile(0.5), 0);  // empty
  h.Observe(absl::Milliseconds(500));
  h.Observe(absl::Milliseconds(1500));
  h.Observe(absl::Milliseconds(1600));
  h.Observe(absl::Seconds(3));
  const Histogram::Snapshot s = h.Read();
  // Rank 2 of 4 falls in (1, 2], which holds ranks 2 and 3: halfway.
  EXPECT_DOUBLE_EQ(s.Quantile(0.5), 1.5);
  EXPECT_DOUBLE_EQ(s.Quantile(1.0), 4);
  Histogram tail(kBounds);
  tail.Observe(absl::Seconds(100));
  EXPECT_DOUBLE_EQ(tail.Read().Quantile(0.99), 4);  // +Inf reports the last bound
}

TEST(EndpointMetricsTest, SnapshotCountsOutcomesPairsAndInFlight) {
  EndpointMetrics m;
  m.Accepted();
  m.Accepted();
  m.HandshakeStarted();
  m.HandshakeStarted();
  m.HandshakeEnded();
  ConnectionInfo a;
  a.tls_version = 0x0304;
  a.cipher_suite = 0x1301;
  a.cipher_name = "TLS_AES_128_GCM_SHA256";
  ConnectionInfo b = a;
  b.tls_version = 0x0303;
  b.cipher_suite = 0xc02b;
  b.cipher_name = "ECDHE-ECDSA-AES128-GCM-SHA256";
  m.Negotiated(a, absl::Milliseconds(1));
  m.Negotiated(a, absl::Milliseconds(2));
  m.Negotiated(b, absl::Milliseconds(3));
  m.Record(Outcome::kHandedOff);
  m.Record(Outcome::kRelay);
  m.Record(Outcome::kHandshakeFailed);
  m.Record(Outcome::kRefusedLimit);
  m.DataPaths(DataPath::kKernelSoftware, DataPath::kRelay);
  const EndpointMetrics::Snapshot s = m.Read();
  EXPECT_EQ(s.accepted, 2u);
  EXPECT_EQ(s.in_flight, 1);
  EXPECT_EQ(s.HandshakesOk(), 3u);
  EXPECT_EQ(s.Failures(), 2u);
  ASSERT_EQ(s.negotiated.size(), 2u);
  EXPECT_EQ(s.negotiated[0].version, "TLSv1.2");
  EXPECT_EQ(s.negotiated[0].count, 1u);
  EXPECT_EQ(s.negotiated[1].cipher, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(s.negotiated[1].count, 2u);
  EXPECT_EQ(s.data_paths[0][0], 1u);  // tx ktls-sw
  EXPECT_EQ(s.data_paths[1][2], 1u);  // rx relay
}

TEST(OutcomeTest, EveryOutcomeHasItsOwnName) {
  std::set<std::string> names;
  for (size_t i = 0; i < static_cast<size_t>(Outcome::kCount); ++i) {
    const std::string name = OutcomeName(static_cast<Outcome>(i));
    EXPECT_NE(name, "unknown") << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(Outcome::kCount));
}

}  // namespace
}  // namespace tlsd
