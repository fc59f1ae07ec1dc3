#include "tlsd/handshaker/router.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace tlsd {
namespace {

bool SniMatches(absl::string_view pattern, absl::string_view sni) {
  if (pattern.empty()) return true;
  if (absl::StartsWith(pattern, "*.")) {
    size_t dot = sni.find('.');
    return dot != absl::string_view::npos && dot > 0 &&
           absl::EqualsIgnoreCase(sni.substr(dot + 1), pattern.substr(2));
  }
  return absl::EqualsIgnoreCase(pattern, sni);
}

}  // namespace

std::string RouteBackend(const ServiceConfig& service, absl::string_view sni,
                         absl::string_view alpn) {
  for (const RouteConfig& route : service.routes) {
    if (SniMatches(route.sni, sni) && (route.alpn.empty() || route.alpn == alpn)) {
      return route.backend;
    }
  }
  return service.backend;
}

}  // namespace tlsd
