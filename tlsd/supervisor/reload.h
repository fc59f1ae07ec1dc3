#ifndef TLSD_TLSD_SUPERVISOR_RELOAD_H_
#define TLSD_TLSD_SUPERVISOR_RELOAD_H_

// Reload (SIGHUP, systemctl reload): read the config file again and swap
// each service's TLS contexts - certificates and keys, versions, ciphers,
// ALPN, client authentication, session tickets - without touching a
// connection: handshakes in progress finish with the contexts they started
// with, handed-off connections never depended on them.
//
// Everything else (listeners, routing, timeouts, kTLS policy, PROXY protocol,
// handshake limits, backends, client profiles, [global]) needs a restart: a reload that changes any
// of it is refused, naming what changed, and so is one whose config does not parse or whose
// certificates or keys do not load. A refused reload changes nothing; tlsd goes on with what it
// had.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tlsd/config/config.h"
#include "tlsd/handshaker/runtime.h"
#include "tlsd/tls/credentials.h"

namespace tlsd {

// RestartOnlyChange describes the first difference between `running` and
// `next` that a reload cannot apply, or returns "" if there is none.
std::string RestartOnlyChange(const Config& running, const Config& next);

// A reload's new contexts: built and checked, not yet in force.
struct PreparedReload {
  std::vector<std::shared_ptr<const ServiceTls>> services;  // by service index
  size_t certificates = 0;
};

// PrepareReload does everything a reload checks - re-reads rt.config.source,
// refuses restart-only changes, builds every service's contexts with `keys`
// - and applies nothing (tlsctl check-config stops here).
absl::StatusOr<PreparedReload> PrepareReload(const Runtime& rt, PrivateKeys& keys);

// Reload prepares and then swaps every service's contexts, all or none.
// Returns a summary for the log.
absl::StatusOr<std::string> Reload(Runtime& rt, PrivateKeys& keys);

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_RELOAD_H_
