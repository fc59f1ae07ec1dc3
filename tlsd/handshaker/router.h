#ifndef TLSD_TLSD_HANDSHAKER_ROUTER_H_
#define TLSD_TLSD_HANDSHAKER_ROUTER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "tlsd/config/config.h"

namespace tlsd {

// RouteBackend picks the backend for a finished handshake: the first route
// whose sni (exact, or "*.suffix" for one label) and alpn both match (an empty
// field matches anything), else the service's default backend. Returns an
// empty string when nothing matches and there is no default.
std::string RouteBackend(const ServiceConfig& service, absl::string_view sni,
                         absl::string_view alpn);

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_ROUTER_H_
