#ifndef TLSD_TLSD_SUPERVISOR_ADMIN_H_
#define TLSD_TLSD_SUPERVISOR_ADMIN_H_

// The operator's commands (tlsctl, docs/man/tlsctl.8), answered on the
// control socket: status, reload, check-config, certs. Each answer is one
// JSON object with "ok" and, when false, "error".

#include <sys/socket.h>

#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/wire/messages.h"
#include "tlsd/handshaker/runtime.h"
#include "tlsd/tls/credentials.h"

namespace tlsd {

// AdminAllowed: the peer on `sock` (credentials `cred`) is root, or has
// `admin_gid` as its primary or one of its supplementary groups (SO_PEERGROUPS:
// the groups it had when it connected, as the kernel recorded them).
bool AdminAllowed(int sock, const struct ucred& cred, std::optional<uint32_t> admin_gid);

class Admin {
 public:
  // `listening` describes the listeners, for systemd's STATUS= line.
  Admin(Runtime& rt, PrivateKeys& keys, std::string listening)
      : rt_(rt), keys_(keys), listening_(std::move(listening)) {}

  // Handle runs one command and returns its JSON answer. A reload or a
  // config check blocks the calling thread while certificates and keys load.
  std::string Handle(AdminCommand command);

  // Reload as SIGHUP does it (either way in, one at a time): logs the
  // outcome, tells systemd (RELOADING=1, then READY=1 and STATUS=), counts it.
  absl::StatusOr<std::string> Reload();

 private:
  std::string Status() const;
  std::string Certs() const;

  Runtime& rt_;
  PrivateKeys& keys_;
  const std::string listening_;
  std::mutex reload_mu_;  // a reload and a config check at a time
};

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_ADMIN_H_
