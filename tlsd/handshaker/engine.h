#ifndef TLSD_TLSD_HANDSHAKER_ENGINE_H_
#define TLSD_TLSD_HANDSHAKER_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/base/unique_fd.h"
#include "common/wire/messages.h"
#include "tlsd/handshaker/runtime.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {

struct Conn;

// Engine is one handshake thread: an epoll loop that accepts from every
// listener, drives non-blocking OpenSSL handshakes under a deadline, installs
// kTLS, hands the socket to a backend (queueing briefly when none can take
// it), and relays in user space for connections the kernel could not take.
class Engine {
 public:
  Engine(Runtime& rt, unsigned index);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Init creates the epoll set and registers the listeners.
  absl::Status Init();
  // AddExternal registers another fd in this loop (the control service on
  // thread 0); `on_ready` runs when it is readable.
  absl::Status AddExternal(int fd, std::function<void()> on_ready);
  // Run loops until `stop` is set, then closes every connection it holds.
  void Run(const std::atomic<bool>& stop);
  // BeginDrain makes Run stop accepting and finish the handshakes and
  // queued connections it has (then Drained() is true); it returns once it
  // holds no connection at all, or at `stop`, closing relayed ones. The
  // caller bounds the wait. Thread-safe.
  void BeginDrain() { draining_.store(true); }
  bool Drained() const { return drained_.load(); }
  bool Idle() const { return idle_.load(); }
  // LastLoop is when Run last went round its loop (it does at least every
  // 500 ms), for the systemd watchdog: a thread stuck in a handshake stops
  // it. absl::InfinitePast() before Run starts.
  absl::Time LastLoop() const {
    return absl::FromUnixNanos(last_loop_ns_.load(std::memory_order_relaxed));
  }

  // OutgoingRelay is an outgoing connection (connector.h) whose handshake is
  // done but which the kernel could not take: this engine relays it.
  // `deliver` hands the worker's end of the socketpair to the app that asked
  // (CONNECT_REPLY); the engine keeps its own end.
  struct OutgoingRelay {
    SslPtr ssl;
    UniqueFd tcp;  // ssl borrows it
    ConnectionInfo info;
    absl::Time started;
    EndpointMetrics* metrics;  // the client profile's
    std::function<absl::Status(const ConnectionInfo& info, int fd)> deliver;
  };
  // AdoptRelay queues `relay` for this engine's loop. Thread-safe.
  void AdoptRelay(OutgoingRelay relay);

 private:
  std::atomic<int64_t> last_loop_ns_{absl::ToUnixNanos(absl::InfinitePast())};
  std::atomic<bool> draining_{false};
  std::atomic<bool> drained_{false};
  std::atomic<bool> idle_{false};
  bool accepting_stopped_ = false;  // Run's own: listeners removed for the drain
  enum class Kind : uint8_t { kListener = 1, kTcp = 2, kApp = 3, kExternal = 4 };
  static uint64_t Key(Kind kind, uint64_t value) {
    return (static_cast<uint64_t>(kind) << 56) | value;
  }

  void OnListener(size_t index);
  void BeginTls(Conn& c);
  void ReleaseLimit(Conn& c);
  void ReadProxyHeader(Conn& c);
  void StartConnection(size_t listener_index, UniqueFd sock);
  // The first-byte stage: OnFirstBytes admits a connection whose client has
  // sent something; Admit gives it a handshake slot and starts the PROXY
  // header or TLS; AdmitReady admits those that waited for a slot.
  void OnFirstBytes(Conn& c);
  void Admit(Conn& c);
  void AdmitReady();
  void StopWaiting(Conn& c);
  void ReleaseSlot(Conn& c);
  bool EvictOldestWaiting();
  // RelayPair makes a relay's socketpair, evicting a silent connection
  // (and trying again) when out of fds. errno is set on failure.
  bool RelayPair(int pair[2]);
  void DriveHandshake(Conn& c);
  void OnHandshakeDone(Conn& c);
  void TryHandoff(Conn& c);
  void PumpRelay(Conn& c);
  // StopWatching takes a relayed connection's socket (kTcp or kApp) out of
  // the epoll set after it hung up.
  void StopWatching(Conn& c, Kind kind);
  void Finish(Conn& c, Outcome outcome, absl::string_view detail, bool failure);
  void FailAfterHandshake(Conn& c, Outcome outcome, absl::string_view detail);
  void SetInterest(int fd, uint64_t key, uint32_t events);
  void ArmDeadline(Conn& c, absl::Time deadline);
  void ExpireDeadlines(absl::Time now);
  void RetryQueued();
  void UpdateListenerInterest();
  void Destroy(uint64_t id);
  void DrainInbox();
  void StartRelay(OutgoingRelay relay);

  Runtime& rt_;
  const unsigned index_;
  UniqueFd epoll_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::set<std::pair<absl::Time, uint64_t>> deadlines_;
  std::vector<uint64_t> queued_;         // waiting for a worker, oldest first
  std::vector<size_t> in_handshake_;     // per service index
  std::vector<size_t> handshake_limit_;  // per service index, this thread's share
  std::vector<bool> listener_paused_;    // per listener
  // Accepted connections that have not sent a byte yet, oldest first (ids
  // of ones that moved on are skipped lazily). They hold an fd and a Conn
  // but no handshake slot and no SSL, so a flood of silent clients cannot
  // keep a real one from being accepted; past max_waiting_ the oldest is
  // closed to make room.
  std::deque<uint64_t> waiting_;
  size_t num_waiting_ = 0;
  size_t max_waiting_ = 1024;
  // Per service: connections whose first bytes came while the service was
  // at its handshake bound, in arrival order (no epoll interest meanwhile).
  std::vector<std::deque<uint64_t>> ready_;
  // After EMFILE with nothing to evict, accepting pauses until then.
  absl::Time accept_backoff_until_ = absl::InfinitePast();
  std::vector<std::function<void()>> externals_;
  // AdoptRelay's queue, drained by the loop when inbox_event_ fires.
  UniqueFd inbox_event_;
  std::mutex inbox_mu_;
  std::vector<OutgoingRelay> inbox_;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_ENGINE_H_
