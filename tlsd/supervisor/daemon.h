#ifndef TLSD_TLSD_SUPERVISOR_DAEMON_H_
#define TLSD_TLSD_SUPERVISOR_DAEMON_H_

#include <memory>

#include "absl/status/statusor.h"
#include "tlsd/config/config.h"
#include "tlsd/handshaker/runtime.h"

namespace tlsd {

// BuildServices loads every service's certificates and keys into OpenSSL
// contexts. Used by start-up and by --check-config, so a config that checks
// clean also starts.
absl::Status BuildServices(Runtime& rt);

// RunDaemon binds (or takes from systemd) every listener and the control
// socket, starts the handshake threads, tells systemd it is ready, and runs
// until SIGTERM/SIGINT. Returns the process exit code.
int RunDaemon(Config config, unsigned threads_override);

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_DAEMON_H_
