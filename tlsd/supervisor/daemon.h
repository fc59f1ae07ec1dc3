#ifndef TLSD_TLSD_SUPERVISOR_DAEMON_H_
#define TLSD_TLSD_SUPERVISOR_DAEMON_H_

#include <memory>

#include "absl/status/statusor.h"
#include "tlsd/config/config.h"
#include "tlsd/handshaker/runtime.h"
#include "tlsd/tls/credentials.h"

namespace tlsd {

// BuildServices loads every service's certificates, and the keys `keys`
// gives for them, into OpenSSL contexts. Used by start-up (keys from the key
// holder) and by --check-config (keys read locally, with the same checks),
// so a config that checks clean also starts.
absl::Status BuildServices(Runtime& rt, PrivateKeys& keys);

// RunDaemon binds (or takes from systemd) every listener and the control
// socket, starts the handshake threads, tells systemd it is ready, and runs
// until SIGTERM/SIGINT. Returns the process exit code.
int RunDaemon(Config config, unsigned threads_override);

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_DAEMON_H_
