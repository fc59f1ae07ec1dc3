#ifndef TLSD_TLSD_HANDSHAKER_CONNECTOR_H_
#define TLSD_TLSD_HANDSHAKER_CONNECTOR_H_

// Connector makes outgoing TLS connections for local apps (CONNECT): it
// resolves and connects, runs the client handshake with the profile's trust
// store and identity, installs kTLS and returns the socket, sealed state and
// metadata to the app; when the kernel cannot take the session it hands the
// connection to an engine to relay (ktls = prefer) or fails (require).
//
// Each request runs in a thread of its own, bounded in number and in time
// (the profile's connect_timeout_ms covers resolution, connect and
// handshake), so a slow server never stalls tlsd's event loops. Who may ask
// for what (SO_PEERCRED, destination patterns) is checked by the caller.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "common/wire/frame.h"
#include "common/wire/messages.h"
#include "tlsd/handshaker/client_tls.h"
#include "tlsd/handshaker/engine.h"
#include "tlsd/handshaker/runtime.h"

namespace tlsd {

class Connector {
 public:
  // Reply sends one frame (and `fd` if >= 0) to the app that asked.
  using Reply =
      std::function<absl::Status(MsgType type, const std::vector<uint8_t>& payload, int fd)>;
  using AdoptRelay = std::function<void(Engine::OutgoingRelay relay)>;

  // At most this many requests in flight; more are refused with EAGAIN.
  static constexpr int kMaxInFlight = 64;

  Connector(Runtime& rt, AdoptRelay adopt_relay) : rt_(rt), adopt_relay_(std::move(adopt_relay)) {}
  // Waits for the requests in flight (each ends within its timeout).
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // Start serves `request` with `profile` in a new thread; `reply` gets
  // CONNECT_REPLY (with the socket) or ERROR. kResourceExhausted, and no
  // thread, when kMaxInFlight requests are running.
  absl::Status Start(const ClientTls& profile, ConnectRequest request, Reply reply);

 private:
  void Run(const ClientTls& profile, const ConnectRequest& request, const Reply& reply);

  Runtime& rt_;
  AdoptRelay adopt_relay_;
  std::mutex mu_;
  std::condition_variable idle_;
  int in_flight_ = 0;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_CONNECTOR_H_
