#ifndef TLSD_TLSD_SUPERVISOR_BACKENDS_H_
#define TLSD_TLSD_SUPERVISOR_BACKENDS_H_

#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/unique_fd.h"
#include "common/wire/messages.h"
#include "tlsd/config/config.h"

namespace tlsd {

// WorkerLink is one SOCK_SEQPACKET connection to a worker: a pull subscriber
// that connected to tlsd's control socket, or a push link tlsd opened to a
// backend's socket. Shared (shared_ptr) between the thread that owns its
// lifetime and handshake threads that send on it, so an fd is never closed
// while another thread may still use its number.
struct WorkerLink {
  UniqueFd sock;
  struct ucred cred {};
};

// PeerAllowed: the peer's uid is in `uids` or its gid in `gids`.
bool PeerAllowed(const struct ucred& cred, const std::vector<uint32_t>& uids,
                 const std::vector<uint32_t>& gids);

// Backend hands connections to the workers of one configured backend.
// Thread-safe.
class Backend {
 public:
  explicit Backend(const BackendConfig& config) : config_(config) {}

  const BackendConfig& config() const { return config_; }

  // Allowed reports whether a local peer may serve this backend: its uid is in
  // allow_uids or its gid in allow_gids (both empty = no restriction, which the
  // config permits only for push backends, whose socket path is the trust
  // anchor).
  bool Allowed(const struct ucred& cred) const;

  // Handoff sends CONNECTION(info) with `fd` to one worker, round robin,
  // without blocking. kUnavailable when no worker could take it right now (the
  // caller queues and retries); the fd is then still the caller's. On success
  // the worker holds its own copy and the caller must close theirs.
  absl::Status Handoff(const ConnectionInfo& info, int fd);

  // Pull mode: subscribers come and go as the control service sees them.
  void AddSubscriber(std::shared_ptr<WorkerLink> link);
  void RemoveSubscriber(const WorkerLink* link);
  size_t NumWorkers();

  // Bounded wait queue accounting (queue_limit), shared by all threads.
  bool TryReserveQueueSlot();
  void ReleaseQueueSlot();
  // Connections waiting for a worker of this backend, all threads together.
  uint32_t QueueDepth() const { return queued_.load(std::memory_order_relaxed); }

 private:
  // ConnectPush opens a new push link and checks the peer's credentials.
  absl::StatusOr<std::shared_ptr<WorkerLink>> ConnectPush();
  void Drop(const WorkerLink* link);

  const BackendConfig config_;
  std::mutex mu_;
  std::vector<std::shared_ptr<WorkerLink>> links_;
  size_t next_ = 0;
  std::atomic<uint32_t> queued_{0};
};

// Backends is the set of configured backends, by name.
class Backends {
 public:
  explicit Backends(const Config& config);
  Backend* Find(absl::string_view name) const;

 private:
  absl::flat_hash_map<std::string, std::unique_ptr<Backend>> by_name_;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_BACKENDS_H_
