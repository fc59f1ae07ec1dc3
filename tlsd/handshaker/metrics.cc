#include "tlsd/handshaker/metrics.h"

#include <algorithm>

#include "tlsd/handshaker/conn_log.h"

namespace tlsd {
namespace {

// Full handshakes take about a millisecond of CPU here; queueing, slow
// clients and timeouts stretch the tail to seconds.
constexpr double kHandshakeBounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,   1,     2.5,  5,     10};
// The handoff goal is tens of microseconds; a wait for a worker is longer.
constexpr double kHandoffBounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                     0.001,   0.0025,   0.005,   0.01,   0.1,     1};

size_t PathIndex(DataPath p) {
  switch (p) {
    case DataPath::kKernelSoftware:
      return 0;
    case DataPath::kKernelDevice:
      return 1;
    case DataPath::kRelay:
      return 2;
  }
  return 2;
}

}  // namespace

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kHandedOff:
      return "handed-off";
    case Outcome::kRelay:
      return "relay";
    case Outcome::kHandshakeFailed:
      return "handshake-failed";
    case Outcome::kHandshakeTimeout:
      return "handshake-timeout";
    case Outcome::kProxyError:
      return "proxy-error";
    case Outcome::kRefusedLimit:
      return "refused-limit";
    case Outcome::kNoBackend:
      return "no-backend";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kRelayFailed:
      return "relay-failed";
    case Outcome::kRelayError:
      return "relay-error";
    case Outcome::kClosed:
      return "closed";
    case Outcome::kConnectFailed:
      return "connect-failed";
    case Outcome::kShutdown:
      return "shutdown";
    case Outcome::kEvicted:
      return "evicted";
    case Outcome::kCount:
      break;
  }
  return "unknown";
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()), buckets_(bounds.size() + 1) {}

void Histogram::Observe(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), s) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Nanoseconds(d))),
                    std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t total = 0;
  for (const auto& b : buckets_) {
    total += b.load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

double Histogram::Snapshot::Quantile(double q) const {
  if (count == 0) return 0;
  const double rank = q * static_cast<double>(count);
  for (size_t i = 0; i < cumulative.size(); ++i) {
    if (static_cast<double>(cumulative[i]) < rank) continue;
    if (i == bounds.size()) return bounds.empty() ? 0 : bounds.back();  // in +Inf
    const double lower = i == 0 ? 0 : bounds[i - 1];
    const uint64_t below = i == 0 ? 0 : cumulative[i - 1];
    const uint64_t in = cumulative[i] - below;
    if (in == 0) return bounds[i];
    return lower +
           (bounds[i] - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in);
  }
  return bounds.empty() ? 0 : bounds.back();
}

EndpointMetrics::EndpointMetrics()
    : handshake_duration_(kHandshakeBounds), handoff_latency_(kHandoffBounds) {}

void EndpointMetrics::Negotiated(const ConnectionInfo& info, absl::Duration handshake_time) {
  handshake_duration_.Observe(handshake_time);
  const uint32_t key = static_cast<uint32_t>(info.tls_version) << 16 | info.cipher_suite;
  std::lock_guard<std::mutex> lock(mu_);
  Cipher& c = negotiated_[key];
  if (c.name.empty()) c.name = info.cipher_name;
  ++c.count;
}

void EndpointMetrics::DataPaths(DataPath tx, DataPath rx) {
  data_paths_[0][PathIndex(tx)].fetch_add(1, std::memory_order_relaxed);
  data_paths_[1][PathIndex(rx)].fetch_add(1, std::memory_order_relaxed);
}

EndpointMetrics::Snapshot EndpointMetrics::Read() const {
  Snapshot s;
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.in_flight = in_flight_.load(std::memory_order_relaxed);
  s.waiting = waiting_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    s.outcomes[i] = outcomes_[i].load(std::memory_order_relaxed);
  }
  for (size_t d = 0; d < 2; ++d) {
    for (size_t p = 0; p < 3; ++p) s.data_paths[d][p] = data_paths_[d][p].load();
  }
  s.handshake_duration = handshake_duration_.Read();
  s.handoff_latency = handoff_latency_.Read();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, c] : negotiated_) {
      s.negotiated.push_back({TlsVersionName(static_cast<uint16_t>(key >> 16)), c.name, c.count});
    }
  }
  std::sort(s.negotiated.begin(), s.negotiated.end(), [](const auto& a, const auto& b) {
    return std::tie(a.version, a.cipher) < std::tie(b.version, b.cipher);
  });
  return s;
}

uint64_t EndpointMetrics::Snapshot::HandshakesOk() const { return handshake_duration.count; }

uint64_t EndpointMetrics::Snapshot::Failures() const {
  uint64_t n = 0;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto o = static_cast<Outcome>(i);
    if (o != Outcome::kHandedOff && o != Outcome::kRelay) n += outcomes[i];
  }
  return n;
}

void GlobalMetrics::ControlRecord(uint8_t record_type, int result) {
  const size_t type = record_type == 21 ? 0 : record_type == 22 ? 1 : 2;
  const size_t r = static_cast<size_t>(std::clamp(result, 0, 3));
  control_records[type][r].fetch_add(1, std::memory_order_relaxed);
}

const char* GlobalMetrics::ControlTypeName(size_t i) {
  static constexpr const char* kNames[] = {"alert", "handshake", "other"};
  return i < 3 ? kNames[i] : "other";
}

const char* GlobalMetrics::ControlResultName(size_t i) {
  static constexpr const char* kNames[] = {"continue", "end", "failed", "refused"};
  return i < 4 ? kNames[i] : "refused";
}

}  // namespace tlsd
