#include "tlsd/supervisor/metrics_text.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#ifndef TLSD_VERSION
#define TLSD_VERSION "0.0.0"
#endif

namespace tlsd {
namespace {

// Label values are config names, cipher names and version strings; escape
// what the exposition format requires anyway.
std::string Escape(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

class Writer {
 public:
  void Family(absl::string_view name, absl::string_view type, absl::string_view help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  // labels: already formatted, k="v" pairs joined with commas (may be empty).
  void Sample(absl::string_view name, absl::string_view labels, double value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                    Number(value), "\n");
  }
  void Histogram(absl::string_view name, absl::string_view labels, const Histogram::Snapshot& h) {
    const std::string sep = labels.empty() ? "" : ",";
    for (size_t i = 0; i < h.cumulative.size(); ++i) {
      const std::string le = i < h.bounds.size() ? Number(h.bounds[i]) : "+Inf";
      Sample(absl::StrCat(name, "_bucket"), absl::StrCat(labels, sep, "le=\"", le, "\""),
             static_cast<double>(h.cumulative[i]));
    }
    Sample(absl::StrCat(name, "_sum"), labels, h.sum_seconds);
    Sample(absl::StrCat(name, "_count"), labels, static_cast<double>(h.count));
  }
  std::string Take() { return std::move(out_); }

 private:
  static std::string Number(double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
    return absl::StrFormat("%.9g", v);
  }
  std::string out_;
};

std::string Label(absl::string_view key, absl::string_view value) {
  return absl::StrCat(key, "=\"", Escape(value), "\"");
}

// One endpoint family (services or client profiles) for every metric.
struct Endpoint {
  std::string label;  // service="web" or profile="upstream"
  EndpointMetrics::Snapshot m;
};

}  // namespace

std::string RenderPrometheus(const Runtime& rt) {
  std::vector<Endpoint> endpoints;
  for (const auto& s : rt.services) {
    endpoints.push_back({Label("service", s->config->name), s->metrics.Read()});
  }
  for (const auto& p : rt.client_profiles) {
    endpoints.push_back({Label("profile", p->config().name), p->metrics().Read()});
  }
  Writer w;
  w.Family("tlsd_build_info", "gauge", "tlsd's version.");
  w.Sample("tlsd_build_info", Label("version", TLSD_VERSION), 1);
  w.Family("tlsd_start_time_seconds", "gauge", "When this tlsd process started (Unix time).");
  w.Sample("tlsd_start_time_seconds", "",
           static_cast<double>(absl::ToUnixSeconds(rt.metrics.started)));

  w.Family("tlsd_connections_accepted_total", "counter", "TCP connections accepted.");
  for (const Endpoint& e : endpoints) {
    if (e.label.starts_with("service=")) {
      w.Sample("tlsd_connections_accepted_total", e.label, static_cast<double>(e.m.accepted));
    }
  }
  w.Family("tlsd_connection_outcomes_total", "counter",
           "Connections by outcome, as logged (outcome=).");
  for (const Endpoint& e : endpoints) {
    for (size_t i = 0; i < e.m.outcomes.size(); ++i) {
      w.Sample("tlsd_connection_outcomes_total",
               absl::StrCat(e.label, ",", Label("outcome", OutcomeName(static_cast<Outcome>(i)))),
               static_cast<double>(e.m.outcomes[i]));
    }
  }
  w.Family("tlsd_handshakes_total", "counter",
           "Completed TLS handshakes by negotiated version and cipher.");
  for (const Endpoint& e : endpoints) {
    for (const auto& n : e.m.negotiated) {
      w.Sample(
          "tlsd_handshakes_total",
          absl::StrCat(e.label, ",", Label("version", n.version), ",", Label("cipher", n.cipher)),
          static_cast<double>(n.count));
    }
  }
  w.Family("tlsd_handshakes_in_flight", "gauge", "Handshakes in progress.");
  for (const Endpoint& e : endpoints) {
    if (e.label.starts_with("service=")) {
      w.Sample("tlsd_handshakes_in_flight", e.label, static_cast<double>(e.m.in_flight));
    }
  }
  w.Family("tlsd_connections_waiting", "gauge",
           "Accepted connections that have not sent their first byte yet (no handshake slot).");
  for (const Endpoint& e : endpoints) {
    if (e.label.starts_with("service=")) {
      w.Sample("tlsd_connections_waiting", e.label, static_cast<double>(e.m.waiting));
    }
  }
  w.Family("tlsd_handshake_duration_seconds", "histogram",
           "From accept (or connect) to the end of the TLS handshake.");
  for (const Endpoint& e : endpoints) {
    w.Histogram("tlsd_handshake_duration_seconds", e.label, e.m.handshake_duration);
  }
  w.Family("tlsd_handoff_latency_seconds", "histogram",
           "From the end of the handshake until the worker holds the socket (kTLS install, "
           "sealing, fd pass, any wait for a worker).");
  for (const Endpoint& e : endpoints) {
    if (e.label.starts_with("service=")) {
      w.Histogram("tlsd_handoff_latency_seconds", e.label, e.m.handoff_latency);
    }
  }
  w.Family("tlsd_data_path_total", "counter",
           "Handed-off connections by direction and where their records are processed "
           "(ktls-sw, ktls-hw: kernel TLS; relay: tlsd in user space).");
  static constexpr const char* kPaths[] = {"ktls-sw", "ktls-hw", "relay"};
  for (const Endpoint& e : endpoints) {
    for (size_t d = 0; d < 2; ++d) {
      for (size_t p = 0; p < 3; ++p) {
        w.Sample("tlsd_data_path_total",
                 absl::StrCat(e.label, ",", Label("direction", d == 0 ? "tx" : "rx"), ",",
                              Label("path", kPaths[p])),
                 static_cast<double>(e.m.data_paths[d][p]));
      }
    }
  }
  w.Family("tlsd_relay_bytes_total", "counter", "Plaintext bytes relayed in user space.");
  w.Sample("tlsd_relay_bytes_total", Label("direction", "from_client"),
           static_cast<double>(rt.metrics.relay_bytes_from_client.load()));
  w.Sample("tlsd_relay_bytes_total", Label("direction", "to_client"),
           static_cast<double>(rt.metrics.relay_bytes_to_client.load()));
  w.Family("tlsd_control_records_total", "counter",
           "Control records workers relayed back to tlsd, by record type and result.");
  for (size_t t = 0; t < rt.metrics.control_records.size(); ++t) {
    for (size_t r = 0; r < rt.metrics.control_records[t].size(); ++r) {
      w.Sample("tlsd_control_records_total",
               absl::StrCat(Label("type", GlobalMetrics::ControlTypeName(t)), ",",
                            Label("result", GlobalMetrics::ControlResultName(r))),
               static_cast<double>(rt.metrics.control_records[t][r].load()));
    }
  }
  w.Family("tlsd_reloads_total", "counter", "Reloads by result.");
  w.Sample("tlsd_reloads_total", Label("result", "ok"),
           static_cast<double>(rt.metrics.reloads_ok.load()));
  w.Sample("tlsd_reloads_total", Label("result", "refused"),
           static_cast<double>(rt.metrics.reloads_refused.load()));
  w.Family("tlsd_backend_queue_depth", "gauge", "Connections waiting for a worker.");
  for (const BackendConfig& b : rt.config.backends) {
    if (Backend* backend = rt.backends->Find(b.name)) {
      w.Sample("tlsd_backend_queue_depth", Label("backend", b.name),
               static_cast<double>(backend->QueueDepth()));
    }
  }
  w.Family("tlsd_backend_workers", "gauge",
           "Workers connected (pull: subscribers; push: open links).");
  for (const BackendConfig& b : rt.config.backends) {
    if (Backend* backend = rt.backends->Find(b.name)) {
      w.Sample("tlsd_backend_workers", Label("backend", b.name),
               static_cast<double>(backend->NumWorkers()));
    }
  }
  return w.Take();
}

}  // namespace tlsd
