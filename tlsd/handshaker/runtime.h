#ifndef TLSD_TLSD_HANDSHAKER_RUNTIME_H_
#define TLSD_TLSD_HANDSHAKER_RUNTIME_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/base/unique_fd.h"
#include "tlsd/config/config.h"
#include "tlsd/control/control_records.h"
#include "tlsd/control/sealed_state.h"
#include "tlsd/handshaker/client_tls.h"
#include "tlsd/handshaker/metrics.h"
#include "tlsd/handshaker/service_tls.h"
#include "tlsd/handshaker/source_limiter.h"
#include "tlsd/supervisor/backends.h"

namespace tlsd {

// A service as the engine sees it: its config and its TLS contexts.
// `config` is the start-up configuration (listeners, timeouts, kTLS policy,
// routing: what a reload does not change); the TLS contexts (certificates,
// keys, versions, ciphers, ALPN, client authentication, tickets) can be
// swapped by a reload. A connection keeps the contexts it started with.
struct ServiceRuntime {
  size_t index;  // position in Runtime::services
  const ServiceConfig* config;
  // max_handshakes_per_source / handshakes_per_second_per_source, shared by
  // every handshake thread.
  std::unique_ptr<SourceLimiter> limiter;
  // Counted by every handshake thread (atomics); mutable because services
  // are otherwise shared read-only.
  mutable EndpointMetrics metrics;

  std::shared_ptr<const ServiceTls> Tls() const {
    std::lock_guard<std::mutex> lock(tls_mu);
    return tls;
  }
  void SetTls(std::shared_ptr<const ServiceTls> next) {
    std::lock_guard<std::mutex> lock(tls_mu);
    tls = std::move(next);
  }

 private:
  mutable std::mutex tls_mu;
  std::shared_ptr<const ServiceTls> tls;
};

// One listening TCP socket, shared by every handshake thread (each has it in
// its own epoll with EPOLLEXCLUSIVE, so one wake-up per connection).
struct Listener {
  UniqueFd fd;
  const ServiceRuntime* service;
  std::string description;  // "127.0.0.1:8443" or "systemd:web"
};

// Runtime is everything the handshake threads share. Built once at start-up;
// immutable afterwards except for the thread-safe members (metrics, backends).
struct Runtime {
  Config config;
  // Where the services' private keys are (the key holder process); declared
  // before the services, whose contexts use it, so that it outlives them.
  std::unique_ptr<PrivateKeys> private_keys;
  std::vector<std::unique_ptr<ServiceRuntime>> services;
  std::vector<Listener> listeners;
  std::unique_ptr<Backends> backends;
  // One per [[client_profile]], in config order (outgoing connections).
  std::vector<std::unique_ptr<ClientTls>> client_profiles;
  // Seals per-connection state for workers, so tlsd keeps no table of
  // handed-off connections; opens it again when a control record comes back.
  std::unique_ptr<Sealer> sealer = Sealer::Random();
  ControlRecordPolicy control_policy;
  GlobalMetrics metrics;
  std::atomic<uint64_t> next_connection_id{1};
  unsigned num_threads = 1;
  // RLIMIT_NOFILE in force (read before the sandbox, which has no getrlimit).
  uint64_t fd_limit = 1024;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_RUNTIME_H_
