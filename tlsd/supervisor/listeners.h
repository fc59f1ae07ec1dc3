#ifndef TLSD_TLSD_SUPERVISOR_LISTENERS_H_
#define TLSD_TLSD_SUPERVISOR_LISTENERS_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/base/unique_fd.h"
#include "tlsd/config/config.h"

namespace tlsd {

// ListenTcp binds and listens on one configured address (non-blocking,
// CLOEXEC, SO_REUSEADDR; "*" binds [::] dual-stack).
absl::StatusOr<UniqueFd> ListenTcp(const ListenAddress& address);

// SystemdSockets takes the fds passed by socket activation (LISTEN_FDS with
// FileDescriptorName=), keyed by name, and unsets the LISTEN_* variables so
// children do not inherit them. Empty when not socket-activated.
class SystemdSockets {
 public:
  static absl::StatusOr<SystemdSockets> Take();
  // TakeTcpListener removes and returns the fd named `name` after checking it
  // is a listening TCP socket (sd_is_socket_inet); errors name the problem.
  absl::StatusOr<UniqueFd> TakeTcpListener(const std::string& name);
  // TakeUnixListener likewise for a listening AF_UNIX SOCK_SEQPACKET socket.
  absl::StatusOr<UniqueFd> TakeUnixListener(const std::string& name);
  // TakeFd removes and returns the fd named `name` whatever it is (a memfd
  // from systemd's fd store, say); kNotFound if none was passed.
  absl::StatusOr<UniqueFd> TakeFd(const std::string& name);
  bool empty() const { return fds_.empty(); }

 private:
  absl::flat_hash_map<std::string, UniqueFd> fds_;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_LISTENERS_H_
