#include "tlsd/tlsctl/render.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tlsd::tlsctl {
namespace {

using Json = nlohmann::ordered_json;

// Value reads a field tlsd always sends; a missing one renders as "?" rather
// than aborting: an older or newer tlsd may differ.
std::string Value(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "?";
  const Json& v = j.at(key);
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string Strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  if (j.is_object() && j.contains(key) && j.at(key).is_array()) {
    for (const Json& v : j.at(key)) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out.empty() ? "-" : absl::StrJoin(out, ", ");
}

// NonZero lists the non-zero members of an object of counters ("a=1 b=2").
std::string NonZero(const Json& j) {
  std::vector<std::string> out;
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (v.is_number() && v.get<double>() != 0) out.push_back(absl::StrCat(k, "=", v.dump()));
    }
  }
  return out.empty() ? "none" : absl::StrJoin(out, " ");
}

void RenderCounters(const Json& s, std::string& out) {
  const Json outcomes = s.value("outcomes", Json::object());
  Json failures = Json::object();
  for (const auto& [k, v] : outcomes.items()) {
    if (k != "handed-off" && k != "relay") failures[k] = v;
  }
  absl::StrAppend(&out, "    handshakes ok ", Value(s, "handshakes_ok"), ", failures ",
                  Value(s, "failures"), " (", NonZero(failures), ")\n");
  absl::StrAppend(&out, "    handed off ", Value(outcomes, "handed-off"), " with kTLS, ",
                  Value(outcomes, "relay"), " relayed\n");
  const Json paths = s.value("data_paths", Json::object());
  absl::StrAppend(&out, "    data path tx: ", NonZero(paths.value("tx", Json::object())),
                  "; rx: ", NonZero(paths.value("rx", Json::object())), "\n");
  const Json negotiated = s.value("negotiated", Json::array());
  for (const Json& n : negotiated) {
    absl::StrAppend(&out, "    ", Value(n, "version"), " ", Value(n, "cipher"), ": ",
                    Value(n, "count"), "\n");
  }
  const Json hs = s.value("handshake_ms", Json::object());
  const Json ho = s.value("handoff_us", Json::object());
  absl::StrAppend(&out, "    handshake p50 ", Value(hs, "p50"), " ms, p99 ", Value(hs, "p99"),
                  " ms; handoff p50 ", Value(ho, "p50"), " us, p99 ", Value(ho, "p99"), " us\n");
}

std::string RenderStatus(const Json& j) {
  std::string out = absl::StrCat(
      "tlsd ", Value(j, "version"), ", pid ", Value(j, "pid"), ", up ", Value(j, "uptime_seconds"),
      " s, ", Value(j, "threads"), " handshake thread(s), kernel TLS ",
      j.value("kernel_tls", false) ? "available" : "not available", "\nconfig ", Value(j, "config"),
      "; reloads ", NonZero(j.value("reloads", Json::object())), "\n");
  const Json services = j.value("services", Json::array());
  for (const Json& s : services) {
    absl::StrAppend(&out, "\nservice ", Value(s, "name"), ": listening on ",
                    Strings(s, "listeners"), "\n");
    const Json limits = s.value("limits", Json::object());
    absl::StrAppend(&out, "    ktls ", Value(s, "ktls"), ", offload ", Value(s, "offload"),
                    ", proxy_protocol ", Value(s, "proxy_protocol"), "\n");
    absl::StrAppend(&out, "    limits: max_handshakes ", Value(limits, "max_handshakes"),
                    ", per source ", Value(limits, "max_handshakes_per_source"), ", per second ",
                    Value(limits, "handshakes_per_second"), ", per second per source ",
                    Value(limits, "handshakes_per_second_per_source"), " (0 = no limit)\n");
    absl::StrAppend(&out, "    in flight ", Value(s, "handshakes_in_flight"),
                    ", waiting for a first byte ", Value(s, "connections_waiting"), ", accepted ",
                    Value(s, "accepted"), "\n");
    RenderCounters(s, out);
  }
  const Json profiles = j.value("client_profiles", Json::array());
  for (const Json& p : profiles) {
    absl::StrAppend(&out, "\nclient profile ", Value(p, "name"), " (ktls ", Value(p, "ktls"),
                    ")\n");
    RenderCounters(p, out);
  }
  const Json backends = j.value("backends", Json::array());
  if (!backends.empty()) absl::StrAppend(&out, "\nbackends:\n");
  for (const Json& b : backends) {
    absl::StrAppend(&out, "    ", Value(b, "name"), " (", Value(b, "mode"),
                    "): ", Value(b, "health"), ", ", Value(b, "workers"), " worker(s), queue ",
                    Value(b, "queue_depth"), "/", Value(b, "queue_limit"), "\n");
  }
  const Json relay = j.value("relay_bytes", Json::object());
  absl::StrAppend(&out, "\nrelayed bytes: from clients ", Value(relay, "from_client"),
                  ", to clients ", Value(relay, "to_client"), "\n");
  std::vector<std::string> control;
  const Json records = j.value("control_records", Json::object());
  for (const auto& [type, results] : records.items()) {
    const std::string nz = NonZero(results);
    if (nz != "none") control.push_back(absl::StrCat(type, ": ", nz));
  }
  absl::StrAppend(
      &out, "control records: ", control.empty() ? "none" : absl::StrJoin(control, "; "), "\n");
  return out;
}

std::string RenderCerts(const Json& j) {
  std::string out;
  const Json certs = j.value("certificates", Json::array());
  for (const Json& c : certs) {
    const bool soon = c.value("expires_soon", false);
    absl::StrAppend(
        &out, Value(c, "service"), ": ", Value(c, "subject"), "\n",
        "    names: ", Strings(c, "dns_names"),
        c.value("ip_addresses", Json::array()).empty()
            ? ""
            : absl::StrCat("; addresses: ", Strings(c, "ip_addresses")),
        "\n    issuer: ", Value(c, "issuer"), "\n    valid ", Value(c, "not_before"), " to ",
        Value(c, "not_after"), " (", Value(c, "days_left"), " days left)",
        soon ? absl::StrCat("  WARNING: expires within ", Value(j, "warning_days"), " days") : "",
        "\n    sha256 ", Value(c, "sha256"), "\n");
  }
  absl::StrAppend(&out, certs.size(), " certificate(s), ", Value(j, "expiring_soon"),
                  " expiring within ", Value(j, "warning_days"), " days\n");
  return out;
}

}  // namespace

std::string RenderText(const Json& answer) {
  if (!answer.value("ok", false)) {
    return absl::StrCat(Value(answer, "command"), " failed: ", Value(answer, "error"), "\n");
  }
  const std::string command = answer.value("command", "");
  if (command == "status") return RenderStatus(answer);
  if (command == "certs") return RenderCerts(answer);
  return absl::StrCat(Value(answer, "message"), "\n");  // reload, check-config
}

}  // namespace tlsd::tlsctl
