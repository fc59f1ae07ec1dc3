#include "tlsd/supervisor/admin.h"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "absl/time/clock.h"
#include "common/base/logging.h"
#include "tlsd/supervisor/reload.h"
#include "tlsd/tls/ktls.h"

#ifndef TLSD_VERSION
#define TLSD_VERSION "0.0.0"
#endif

namespace tlsd {
namespace {

using Json = nlohmann::ordered_json;

// Certificates expiring within this many days are flagged (tlsctl certs).
constexpr int kExpiryWarningDays = 14;

std::string Dump(const Json& j) {
  // Subjects and SNI come from outside: never let bad UTF-8 make dump() throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json Failure(AdminCommand command, absl::string_view why) {
  return Json{{"ok", false}, {"command", AdminCommandName(command)}, {"error", why}};
}

const char* KtlsName(KtlsPolicy p) { return p == KtlsPolicy::kRequire ? "require" : "prefer"; }

const char* OffloadName(OffloadPolicy p) {
  switch (p) {
    case OffloadPolicy::kOff:
      return "off";
    case OffloadPolicy::kAuto:
      return "auto";
    case OffloadPolicy::kRequire:
      return "require";
  }
  return "off";
}

double Round3(double v) { return static_cast<double>(static_cast<int64_t>(v * 1000 + 0.5)) / 1000; }

Json Counters(const EndpointMetrics::Snapshot& m) {
  Json outcomes = Json::object();
  for (size_t i = 0; i < m.outcomes.size(); ++i) {
    outcomes[OutcomeName(static_cast<Outcome>(i))] = m.outcomes[i];
  }
  Json paths = Json::object();
  static constexpr const char* kPaths[] = {"ktls-sw", "ktls-hw", "relay"};
  for (size_t d = 0; d < 2; ++d) {
    Json dir = Json::object();
    for (size_t p = 0; p < 3; ++p) dir[kPaths[p]] = m.data_paths[d][p];
    paths[d == 0 ? "tx" : "rx"] = dir;
  }
  Json negotiated = Json::array();
  for (const auto& n : m.negotiated) {
    negotiated.push_back({{"version", n.version}, {"cipher", n.cipher}, {"count", n.count}});
  }
  return Json{
      {"handshakes_ok", m.HandshakesOk()},
      {"failures", m.Failures()},
      {"outcomes", outcomes},
      {"data_paths", paths},
      {"negotiated", negotiated},
      {"handshake_ms",
       {{"p50", Round3(m.handshake_duration.Quantile(0.5) * 1e3)},
        {"p99", Round3(m.handshake_duration.Quantile(0.99) * 1e3)}}},
      {"handoff_us",
       {{"p50", Round3(m.handoff_latency.Quantile(0.5) * 1e6)},
        {"p99", Round3(m.handoff_latency.Quantile(0.99) * 1e6)}}},
  };
}

}  // namespace

bool AdminAllowed(int sock, const struct ucred& cred, std::optional<uint32_t> admin_gid) {
  if (cred.uid == 0) return true;
  if (!admin_gid.has_value()) return false;
  if (cred.gid == *admin_gid) return true;
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 8; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return std::find(groups.begin(), groups.end(), *admin_gid) != groups.end();
    }
    if (errno != ERANGE) return false;
    groups.resize(len / sizeof(gid_t) + 1);  // the kernel said how many
  }
  return false;
}

std::string Admin::Handle(AdminCommand command) {
  switch (command) {
    case AdminCommand::kStatus:
      return Status();
    case AdminCommand::kCerts:
      return Certs();
    case AdminCommand::kReload: {
      absl::StatusOr<std::string> done = Reload();
      if (!done.ok()) return Dump(Failure(command, done.status().message()));
      return Dump(Json{{"ok", true}, {"command", "reload"}, {"message", *done}});
    }
    case AdminCommand::kCheckConfig: {
      std::lock_guard<std::mutex> lock(reload_mu_);
      absl::StatusOr<PreparedReload> checked = PrepareReload(rt_, keys_);
      if (!checked.ok()) return Dump(Failure(command, checked.status().message()));
      return Dump(Json{{"ok", true},
                       {"command", "check-config"},
                       {"config", rt_.config.source},
                       {"services", checked->services.size()},
                       {"certificates", checked->certificates},
                       {"message", absl::StrCat(rt_.config.source, ": ok; a reload would apply ",
                                                checked->services.size(), " service(s), ",
                                                checked->certificates, " certificate(s)")}});
    }
  }
  return Dump(Failure(command, "unknown command"));
}

absl::StatusOr<std::string> Admin::Reload() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  sd_notify(0, "RELOADING=1\nSTATUS=reloading");
  absl::StatusOr<std::string> reloaded = tlsd::Reload(rt_, keys_);
  if (reloaded.ok()) {
    rt_.metrics.reloads_ok.fetch_add(1, std::memory_order_relaxed);
    TLSD_LOG(Notice) << *reloaded;
  } else {
    rt_.metrics.reloads_refused.fetch_add(1, std::memory_order_relaxed);
    TLSD_LOG(Error) << "reload refused: " << reloaded.status().message()
                    << "; still serving the previous configuration";
  }
  sd_notifyf(0, "READY=1\nSTATUS=serving %zu service(s) on %s%s", rt_.services.size(),
             listening_.c_str(), reloaded.ok() ? "" : " (last reload refused)");
  return reloaded;
}

std::string Admin::Status() const {
  Json services = Json::array();
  for (const auto& svc : rt_.services) {
    const ServiceConfig& c = *svc->config;
    Json listeners = Json::array();
    for (const Listener& l : rt_.listeners) {
      if (l.service == svc.get()) listeners.push_back(l.description);
    }
    const EndpointMetrics::Snapshot m = svc->metrics.Read();
    Json s{
        {"name", c.name},
        {"listeners", listeners},
        {"ktls", KtlsName(c.ktls)},
        {"offload", OffloadName(c.offload)},
        {"proxy_protocol", c.proxy_protocol},
        {"limits",
         {{"max_handshakes", c.max_handshakes},
          {"max_handshakes_per_source", c.max_handshakes_per_source},
          {"handshakes_per_second_per_source", c.handshakes_per_second_per_source},
          {"handshakes_per_second", c.handshakes_per_second},
          {"handshake_timeout_ms", c.handshake_timeout_ms}}},
        {"handshakes_in_flight", m.in_flight},
        {"connections_waiting", m.waiting},
        {"accepted", m.accepted},
    };
    s.update(Counters(m));
    services.push_back(std::move(s));
  }
  Json profiles = Json::array();
  for (const auto& p : rt_.client_profiles) {
    Json j{{"name", p->config().name}, {"ktls", KtlsName(p->config().ktls)}};
    j.update(Counters(p->metrics().Read()));
    profiles.push_back(std::move(j));
  }
  Json backends = Json::array();
  for (const BackendConfig& b : rt_.config.backends) {
    Backend* backend = rt_.backends->Find(b.name);
    if (backend == nullptr) continue;
    const size_t workers = backend->NumWorkers();
    const bool pull = b.mode == BackendMode::kPull;
    backends.push_back({
        {"name", b.name},
        {"mode", pull ? "pull" : "push"},
        {"socket", b.socket_path},
        // A pull backend with no subscriber cannot take a connection; a
        // push backend is connected to on demand, so 0 links is normal.
        {"health",
         pull ? (workers > 0 ? "ready" : "no-workers") : (workers > 0 ? "connected" : "idle")},
        {"workers", workers},
        {"queue_depth", backend->QueueDepth()},
        {"queue_limit", b.queue_limit},
    });
  }
  Json control = Json::object();
  for (size_t t = 0; t < rt_.metrics.control_records.size(); ++t) {
    Json by_result = Json::object();
    for (size_t r = 0; r < rt_.metrics.control_records[t].size(); ++r) {
      by_result[GlobalMetrics::ControlResultName(r)] = rt_.metrics.control_records[t][r].load();
    }
    control[GlobalMetrics::ControlTypeName(t)] = by_result;
  }
  const Json j{
      {"ok", true},
      {"command", "status"},
      {"version", TLSD_VERSION},
      {"pid", getpid()},
      {"config", rt_.config.source},
      {"uptime_seconds", absl::ToInt64Seconds(absl::Now() - rt_.metrics.started)},
      {"threads", rt_.num_threads},
      {"kernel_tls", KernelHasTlsUlp()},
      {"reloads",
       {{"ok", rt_.metrics.reloads_ok.load()}, {"refused", rt_.metrics.reloads_refused.load()}}},
      {"services", services},
      {"client_profiles", profiles},
      {"backends", backends},
      {"relay_bytes",
       {{"from_client", rt_.metrics.relay_bytes_from_client.load()},
        {"to_client", rt_.metrics.relay_bytes_to_client.load()}}},
      {"control_records", control},
  };
  return Dump(j);
}

std::string Admin::Certs() const {
  const absl::Time now = absl::Now();
  Json certs = Json::array();
  size_t expiring = 0;
  for (const auto& svc : rt_.services) {
    for (const CertSummary& c : svc->Tls()->Certificates()) {
      const int64_t days_left = absl::ToInt64Hours(c.not_after - now) / 24;
      const bool soon = c.not_after - now < absl::Hours(24 * kExpiryWarningDays);
      expiring += soon ? 1 : 0;
      certs.push_back({
          {"service", svc->config->name},
          {"subject", c.subject},
          {"issuer", c.issuer},
          {"dns_names", c.dns_names},
          {"ip_addresses", c.ip_addresses},
          {"not_before", absl::FormatTime(absl::RFC3339_sec, c.not_before, absl::UTCTimeZone())},
          {"not_after", absl::FormatTime(absl::RFC3339_sec, c.not_after, absl::UTCTimeZone())},
          {"days_left", days_left},
          {"expires_soon", soon},
          {"sha256", c.sha256},
      });
    }
  }
  return Dump(Json{{"ok", true},
                   {"command", "certs"},
                   {"warning_days", kExpiryWarningDays},
                   {"expiring_soon", expiring},
                   {"certificates", certs}});
}

}  // namespace tlsd
