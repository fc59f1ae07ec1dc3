#ifndef TLSD_TLSD_HANDSHAKER_SOURCE_LIMITER_H_
#define TLSD_TLSD_HANDSHAKER_SOURCE_LIMITER_H_

// SourceLimiter bounds what one client address can make tlsd do: handshakes
// in flight at once, and new handshakes per second (a token bucket whose
// burst is one second's worth); and new handshakes per second for the whole
// service (the service's concurrency bound is max_handshakes). It is asked right after accept(),
// before any crypto, so that refusing is as cheap as closing a socket. Shared by all handshake
// threads of a service (a mutex; one short lookup per connection).
//
// Memory is bounded: at most kMaxSources addresses are tracked; when the
// table is full, addresses with nothing in flight and a full bucket are
// forgotten, and if that frees nothing a new address is refused (so many
// distinct sources at once is itself a flood).

#include <stddef.h>
#include <stdint.h>

#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/wire/messages.h"

namespace tlsd {

class SourceLimiter {
 public:
  static constexpr size_t kMaxSources = 1 << 16;

  // Per address: handshakes in flight, new handshakes a second; for the
  // whole service: new handshakes a second. 0 means no limit.
  SourceLimiter(uint32_t max_in_flight, uint32_t per_second, uint32_t service_per_second = 0)
      : max_in_flight_(max_in_flight),
        per_second_(per_second),
        service_per_second_(service_per_second),
        service_tokens_(service_per_second) {}

  bool enabled() const {
    return max_in_flight_ != 0 || per_second_ != 0 || service_per_second_ != 0;
  }

  // Admit counts a new handshake from `source` and returns "", or refuses
  // it and returns why. An admitted handshake must be Released once.
  std::string Admit(const WireAddress& source, absl::Time now);
  void Release(const WireAddress& source);

  size_t tracked() const;

 private:
  struct State {
    uint32_t in_flight = 0;
    double tokens = 0;
    absl::Time refilled;
  };
  static std::string Key(const WireAddress& a);

  const uint32_t max_in_flight_;
  const uint32_t per_second_;
  const uint32_t service_per_second_;
  mutable std::mutex mu_;
  double service_tokens_;
  absl::Time service_refilled_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, State> sources_;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_SOURCE_LIMITER_H_
