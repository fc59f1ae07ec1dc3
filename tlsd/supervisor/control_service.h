#ifndef TLSD_TLSD_SUPERVISOR_CONTROL_SERVICE_H_
#define TLSD_TLSD_SUPERVISOR_CONTROL_SERVICE_H_

#include <sys/socket.h>

#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/base/unique_fd.h"
#include "tlsd/supervisor/backends.h"

namespace tlsd {

// ControlService answers local peers on tlsd's control socket. A worker sends
// HELLO{backend}; tlsd checks the backend exists, is a pull backend, and that
// the peer's SO_PEERCRED uid/gid is allowed, then answers HELLO_OK and from
// then on sends it CONNECTION frames, or answers ERROR and closes. A peer that
// sends anything malformed is closed; nothing else is affected.
class ControlService {
 public:
  // Create serves `listener` (a listening SOCK_SEQPACKET socket).
  static absl::StatusOr<std::unique_ptr<ControlService>> Create(UniqueFd listener,
                                                                Backends& backends);
  // fd is readable when OnReady has work; add it to an event loop.
  int fd() const { return epoll_.get(); }
  // OnReady accepts new peers and handles their frames, without blocking.
  void OnReady();

 private:
  struct Peer {
    std::shared_ptr<WorkerLink> link;
    Backend* subscribed = nullptr;
  };
  ControlService(UniqueFd listener, UniqueFd epoll, Backends& backends)
      : listener_(std::move(listener)), epoll_(std::move(epoll)), backends_(backends) {}
  void Accept();
  void OnPeer(uint64_t id);
  void Refuse(uint64_t id, int code, const std::string& why);
  void Close(uint64_t id);

  UniqueFd listener_;
  UniqueFd epoll_;
  Backends& backends_;
  absl::flat_hash_map<uint64_t, Peer> peers_;
  uint64_t next_id_ = 1;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_CONTROL_SERVICE_H_
