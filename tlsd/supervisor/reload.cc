#include "tlsd/supervisor/reload.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tlsd {
namespace {

std::string Uids(const std::vector<uint32_t>& v) { return absl::StrJoin(v, ","); }

// What of a service a reload cannot change, as one comparable string.
std::string Fixed(const ServiceConfig& s) {
  std::vector<std::string> listen;
  for (const ListenAddress& a : s.listen) listen.push_back(a.text);
  std::string routes;
  for (const RouteConfig& r : s.routes)
    absl::StrAppend(&routes, r.sni, "/", r.alpn, ">", r.backend, ";");
  return absl::StrCat("listen=", absl::StrJoin(listen, ","), " systemd_socket=", s.systemd_socket,
                      " handshake_timeout_ms=", s.handshake_timeout_ms,
                      " max_handshakes=", s.max_handshakes, " ktls=", static_cast<int>(s.ktls),
                      " offload=", static_cast<int>(s.offload),
                      " rx_expect_no_pad=", s.rx_expect_no_pad,
                      " tx_zerocopy_ro=", s.tx_zerocopy_ro, " proxy_protocol=", s.proxy_protocol,
                      " max_handshakes_per_source=", s.max_handshakes_per_source,
                      " handshakes_per_second_per_source=", s.handshakes_per_second_per_source,
                      " handshakes_per_second=", s.handshakes_per_second, " backend=", s.backend,
                      " routes=", routes, " unknown_sni=", static_cast<int>(s.unknown_sni));
}

std::string Fixed(const BackendConfig& b) {
  return absl::StrCat(b.name, " mode=", static_cast<int>(b.mode), " socket=", b.socket_path,
                      " uids=", Uids(b.allow_uids), " gids=", Uids(b.allow_gids),
                      " queue_limit=", b.queue_limit, " queue_timeout_ms=", b.queue_timeout_ms);
}

std::string Fixed(const ClientProfileConfig& p) {
  std::vector<std::string> dest;
  for (const DestinationPattern& d : p.destinations) dest.push_back(d.text);
  return absl::StrCat(p.name, " uids=", Uids(p.allow_uids), " gids=", Uids(p.allow_gids),
                      " destinations=", absl::StrJoin(dest, ","), " ca=", p.ca_file,
                      " cert=", p.cert_path, " key=", p.key_path, " versions=", p.min_version, "-",
                      p.max_version, " timeout=", p.connect_timeout_ms,
                      " ktls=", static_cast<int>(p.ktls), " resumption=", p.session_resumption);
}

std::string Fixed(const GlobalConfig& g) {
  return absl::StrCat("threads=", g.threads, " control_socket=", g.control_socket,
                      " state_dir=", g.state_dir, " user=", g.user, " log_level=", g.log_level,
                      " admin_group=", g.admin_gid.has_value() ? absl::StrCat(*g.admin_gid) : "-",
                      " metrics_listen=", g.metrics_text);
}

}  // namespace

std::string RestartOnlyChange(const Config& running, const Config& next) {
  if (Fixed(running.global) != Fixed(next.global)) return "[global] changed";
  if (running.services.size() != next.services.size()) return "services were added or removed";
  for (size_t i = 0; i < running.services.size(); ++i) {
    const ServiceConfig& a = running.services[i];
    const ServiceConfig& b = next.services[i];
    if (a.name != b.name) return absl::StrCat("service '", a.name, "' was renamed or moved");
    if (Fixed(a) != Fixed(b)) {
      return absl::StrCat("service '", a.name,
                          "': listeners, routing, timeouts or kTLS settings changed");
    }
  }
  if (running.backends.size() != next.backends.size()) return "backends were added or removed";
  for (size_t i = 0; i < running.backends.size(); ++i) {
    if (Fixed(running.backends[i]) != Fixed(next.backends[i])) {
      return absl::StrCat("backend '", running.backends[i].name, "' changed");
    }
  }
  if (running.client_profiles.size() != next.client_profiles.size()) {
    return "client profiles were added or removed";
  }
  for (size_t i = 0; i < running.client_profiles.size(); ++i) {
    if (Fixed(running.client_profiles[i]) != Fixed(next.client_profiles[i])) {
      return absl::StrCat("client profile '", running.client_profiles[i].name, "' changed");
    }
  }
  return "";
}

absl::StatusOr<PreparedReload> PrepareReload(const Runtime& rt, PrivateKeys& keys) {
  absl::StatusOr<Config> next = LoadConfigFile(rt.config.source);
  if (!next.ok()) return next.status();
  if (std::string change = RestartOnlyChange(rt.config, *next); !change.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(change, ": that needs a restart, not a reload"));
  }
  PreparedReload prepared;
  for (size_t i = 0; i < next->services.size(); ++i) {
    std::shared_ptr<const ServiceTls> running = rt.services[i]->Tls();
    absl::StatusOr<std::unique_ptr<ServiceTls>> tls =
        ServiceTls::Create(next->services[i], next->source, keys, running.get());
    if (!tls.ok()) return tls.status();
    prepared.services.push_back(std::move(*tls));
    prepared.certificates += next->services[i].certificates.size();
  }
  return prepared;
}

absl::StatusOr<std::string> Reload(Runtime& rt, PrivateKeys& keys) {
  absl::StatusOr<PreparedReload> prepared = PrepareReload(rt, keys);
  if (!prepared.ok()) return prepared.status();
  for (size_t i = 0; i < prepared->services.size(); ++i) {
    rt.services[i]->SetTls(std::move(prepared->services[i]));
  }
  return absl::StrCat("reloaded ", rt.config.source, ": ", prepared->services.size(),
                      " service(s), ", prepared->certificates, " certificate(s)");
}

}  // namespace tlsd
