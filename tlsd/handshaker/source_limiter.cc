#include "tlsd/handshaker/source_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tlsd {

std::string SourceLimiter::Key(const WireAddress& a) {
  // The address without the port: limits are per host.
  const size_t n = a.family == 4 ? 4 : 16;
  return std::string(1, static_cast<char>(a.family)) +
         std::string(reinterpret_cast<const char*>(a.addr.data()), n);
}

std::string SourceLimiter::Admit(const WireAddress& source, absl::Time now) {
  if (!enabled()) return "";
  const std::string key = Key(source);
  std::lock_guard<std::mutex> lock(mu_);
  if (service_per_second_ != 0) {
    if (service_refilled_ != absl::InfinitePast()) {
      service_tokens_ = std::min<double>(
          service_per_second_,
          service_tokens_ + absl::ToDoubleSeconds(now - service_refilled_) * service_per_second_);
    }
    service_refilled_ = now;
    if (service_tokens_ < 1) {
      return absl::StrCat("more than ", service_per_second_,
                          " handshakes a second for this service (handshakes_per_second)");
    }
  }
  auto it = sources_.find(key);
  if (it == sources_.end()) {
    if (sources_.size() >= kMaxSources) {
      // Forget addresses that are back to where a new one starts: nothing in
      // flight and a full bucket.
      for (auto e = sources_.begin(); e != sources_.end();) {
        const State& s = e->second;
        if (s.in_flight == 0 &&
            s.tokens + absl::ToDoubleSeconds(now - s.refilled) * per_second_ >= per_second_) {
          sources_.erase(e++);
        } else {
          ++e;
        }
      }
    }
    if (sources_.size() >= kMaxSources) {
      return absl::StrCat(kMaxSources, " client addresses have handshakes in flight or recent");
    }
    it = sources_.emplace(key, State{0, static_cast<double>(per_second_), now}).first;
  }
  State& s = it->second;
  if (max_in_flight_ != 0 && s.in_flight >= max_in_flight_) {
    return absl::StrCat(s.in_flight, " handshakes in flight from this address (",
                        "max_handshakes_per_source = ", max_in_flight_, ")");
  }
  if (per_second_ != 0) {
    s.tokens = std::min<double>(per_second_,
                                s.tokens + absl::ToDoubleSeconds(now - s.refilled) * per_second_);
    s.refilled = now;
    if (s.tokens < 1) {
      return absl::StrCat(
          "more than ", per_second_,
          " handshakes a second from this address (handshakes_per_second_per_source)");
    }
    s.tokens -= 1;
  }
  if (service_per_second_ != 0) service_tokens_ -= 1;
  ++s.in_flight;
  return "";
}

void SourceLimiter::Release(const WireAddress& source) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sources_.find(Key(source));
  if (it == sources_.end()) return;
  State& s = it->second;
  if (s.in_flight > 0) --s.in_flight;
  // Nothing in flight and no rate to remember: forget the address. (With a
  // rate, idle addresses are swept when the table is full.)
  if (s.in_flight == 0 && per_second_ == 0) sources_.erase(it);
}

size_t SourceLimiter::tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sources_.size();
}

}  // namespace tlsd
