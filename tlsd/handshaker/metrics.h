#ifndef TLSD_TLSD_HANDSHAKER_METRICS_H_
#define TLSD_TLSD_HANDSHAKER_METRICS_H_

// Counters behind `tlsctl status` and the Prometheus endpoint. Written by the
// handshake threads with relaxed atomics (a handshake costs a millisecond of
// CPU; an uncontended atomic add is noise next to it), read by whoever
// renders them. Nothing here allocates on the handshake path except the
// first handshake of a new (version, cipher) pair.

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/wire/messages.h"

namespace tlsd {

// How one connection ended (or moved on): the `outcome=` of its log line.
enum class Outcome : uint8_t {
  kHandedOff,        // kTLS socket passed to a worker
  kRelay,            // worker got a socketpair; tlsd relays in user space
  kHandshakeFailed,  // OpenSSL failed the handshake (the alert it sent is logged)
  kHandshakeTimeout,
  kProxyError,     // a bad or missing PROXY header
  kRefusedLimit,   // max_handshakes_per_source / handshakes_per_second*
  kNoBackend,      // no route, no worker, or the backend's queue was full or timed out
  kRefused,        // ktls/offload = require not met, or sealing failed
  kRelayFailed,    // could not set up the relay
  kRelayError,     // a relayed connection failed later
  kClosed,         // the client or app left before the handoff
  kConnectFailed,  // an outgoing connection's TCP connect failed
  kShutdown,       // tlsd stopped while it still held the connection
  kEvicted,        // sent nothing; closed to make room (too many silent clients)
  kCount,
};
const char* OutcomeName(Outcome o);  // "handed-off", "handshake-failed", ...

// Histogram with fixed upper bounds (seconds), Prometheus-style: bucket i
// counts observations <= bounds[i]; the last bucket is +Inf.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void Observe(absl::Duration d);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum_seconds = 0;
    uint64_t count = 0;
    // Quantile estimates the q-th quantile (0..1) by linear interpolation
    // inside its bucket, like Prometheus' histogram_quantile(); 0 if empty.
    double Quantile(double q) const;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // not cumulative; +Inf last
  std::atomic<uint64_t> sum_ns_{0};
};

// The counters of one service (server side) or one client profile.
class EndpointMetrics {
 public:
  EndpointMetrics();

  void Accepted() { accepted_.fetch_add(1, std::memory_order_relaxed); }
  // In-flight handshakes: Started when a connection is taken on, Ended
  // exactly once when its handshake completes or it is dropped during it.
  void HandshakeStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void HandshakeEnded() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  // Accepted connections that have not sent their first byte (no slot yet).
  void WaitingStarted() { waiting_.fetch_add(1, std::memory_order_relaxed); }
  void WaitingEnded() { waiting_.fetch_sub(1, std::memory_order_relaxed); }
  void Record(Outcome o) {
    outcomes_[static_cast<size_t>(o)].fetch_add(1, std::memory_order_relaxed);
  }
  // A completed handshake: its negotiated version and cipher, how long it took.
  void Negotiated(const ConnectionInfo& info, absl::Duration handshake_time);
  // Where the records of a handed-off connection are processed.
  void DataPaths(DataPath tx, DataPath rx);
  // From the end of the handshake to the worker holding the socket: kTLS
  // install, sealing, the fd pass (and any wait for a worker).
  void Handoff(absl::Duration latency) { handoff_latency_.Observe(latency); }

  struct Snapshot {
    uint64_t accepted = 0;
    int64_t in_flight = 0;
    int64_t waiting = 0;  // accepted, nothing received yet
    std::array<uint64_t, static_cast<size_t>(Outcome::kCount)> outcomes{};
    struct Negotiation {
      std::string version;  // "TLSv1.3"
      std::string cipher;   // OpenSSL's name
      uint64_t count = 0;
    };
    std::vector<Negotiation> negotiated;  // sorted by version, cipher
    // [direction 0 tx / 1 rx][path: ktls-sw, ktls-hw, relay]
    std::array<std::array<uint64_t, 3>, 2> data_paths{};
    Histogram::Snapshot handshake_duration;
    Histogram::Snapshot handoff_latency;
    uint64_t HandshakesOk() const;
    uint64_t Failures() const;  // every outcome but handed-off and relay
  };
  Snapshot Read() const;

 private:
  std::atomic<uint64_t> accepted_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> waiting_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Outcome::kCount)> outcomes_{};
  std::array<std::array<std::atomic<uint64_t>, 3>, 2> data_paths_{};
  Histogram handshake_duration_;
  Histogram handoff_latency_;
  mutable std::mutex mu_;
  struct Cipher {
    std::string name;
    uint64_t count = 0;
  };
  // (version << 16 | cipher suite) -> name and count.
  absl::flat_hash_map<uint32_t, Cipher> negotiated_;  // guarded by mu_
};

// Process-wide counters.
struct GlobalMetrics {
  std::atomic<uint64_t> relay_bytes_from_client{0};
  std::atomic<uint64_t> relay_bytes_to_client{0};
  std::atomic<uint64_t> reloads_ok{0};
  std::atomic<uint64_t> reloads_refused{0};
  // Control records workers relayed back: [type][result].
  // Types: alert, handshake, other; results: continue, end, failed, refused.
  std::array<std::array<std::atomic<uint64_t>, 4>, 3> control_records{};
  absl::Time started = absl::Now();

  void ControlRecord(uint8_t record_type, int result);  // result: 0..3 as above
  static const char* ControlTypeName(size_t i);         // "alert", ...
  static const char* ControlResultName(size_t i);       // "continue", ...
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_METRICS_H_
