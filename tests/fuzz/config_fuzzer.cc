// libFuzzer target for the config parser, tlsd::ParseConfig (toml++ and
// every validation in tlsd/config/config.cc). The config is trusted input,
// but it is parsed by the privileged supervisor, on reload too, and often
// written by hand or by templating tools: a typo must give a message, never
// a crash or a half-applied config.
//
// Oracles, beyond the sanitizers:
//   - a failure is kInvalidArgument (or, from an NSS lookup of a user or
//     group name, the errno's code) and its message starts "fuzz.toml:";
//     a kInvalidArgument message is "fuzz.toml:LINE: problem" with LINE >= 1;
//   - a success parses again to the same Config (every field compared);
//   - a parsed Config keeps the promises config.h makes: source set, >= 1
//     certificate per service, every backend a service or route names exists.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tests/fuzz/fuzz_oracle.h"
#include "tlsd/config/config.h"

namespace tlsd {
namespace {

constexpr absl::string_view kSource = "fuzz.toml";

void Add(std::string* out, const ListenAddress& l) {
  absl::StrAppend(out, "{", l.host, "|", l.port, "|", l.text, "}");
}

void Add(std::string* out, const DestinationPattern& d) {
  absl::StrAppend(out, "{", d.host, "|", d.any_host, d.suffix, "|", d.port, "|", d.any_port, "|",
                  d.text, "}");
}

// Describe writes every field of a Config, so two configs compare equal
// exactly when their descriptions do.
std::string Describe(const Config& c) {
  std::string out = absl::StrCat("source=", c.source, "\n");
  const GlobalConfig& g = c.global;
  absl::StrAppend(&out, "global ", g.threads, "|", g.control_socket, "|", g.state_dir, "|", g.user,
                  "|", g.log_level, "|", g.admin_gid.has_value(), g.admin_gid.value_or(0), "|",
                  g.metrics_address.has_value(), "|", g.metrics_socket_path, "|", g.metrics_text,
                  "\n");
  if (g.metrics_address) Add(&out, *g.metrics_address);
  for (const ServiceConfig& s : c.services) {
    absl::StrAppend(&out, "service ", s.name, "|", s.line, "|", s.systemd_socket, "|",
                    s.min_version, "|", s.max_version, "|", s.tls12_ciphers, "|",
                    s.tls13_ciphersuites, "|", absl::StrJoin(s.alpn, ","), "|",
                    static_cast<int>(s.client_auth), "|", s.client_ca_path, "|", s.client_crl_path,
                    "|", s.session_tickets, "|", s.ticket_key_file, "|", s.ticket_rotate_seconds,
                    "|", s.session_cache, "|", s.handshake_timeout_ms, "|", s.max_handshakes, "|",
                    s.max_handshakes_per_source, "|", s.handshakes_per_second_per_source, "|",
                    s.handshakes_per_second, "|", static_cast<int>(s.ktls), "|",
                    static_cast<int>(s.offload), "|", s.rx_expect_no_pad, s.tx_zerocopy_ro, "|",
                    s.backend, "|", static_cast<int>(s.unknown_sni), "|", s.proxy_protocol, "\n");
    for (const ListenAddress& l : s.listen) Add(&out, l);
    for (const CertificateConfig& cert : s.certificates) {
      absl::StrAppend(&out, "\n cert ", cert.cert_path, "|", cert.key_path, "|",
                      cert.ocsp_response_path, "|", absl::StrJoin(cert.server_names, ","), "|",
                      cert.line);
    }
    for (const RouteConfig& r : s.routes) {
      absl::StrAppend(&out, "\n route ", r.sni, "|", r.alpn, "|", r.backend, "|", r.line);
    }
    out += "\n";
  }
  for (const BackendConfig& b : c.backends) {
    absl::StrAppend(&out, "backend ", b.name, "|", b.line, "|", static_cast<int>(b.mode), "|",
                    b.socket_path, "|", absl::StrJoin(b.allow_uids, ","), "|",
                    absl::StrJoin(b.allow_gids, ","), "|", b.queue_limit, "|", b.queue_timeout_ms,
                    "\n");
  }
  for (const ClientProfileConfig& p : c.client_profiles) {
    absl::StrAppend(&out, "profile ", p.name, "|", p.line, "|", absl::StrJoin(p.allow_uids, ","),
                    "|", absl::StrJoin(p.allow_gids, ","), "|", p.ca_file, "|", p.cert_path, "|",
                    p.key_path, "|", p.min_version, "|", p.max_version, "|", p.connect_timeout_ms,
                    "|", static_cast<int>(p.ktls), "|", p.session_resumption, "\n");
    for (const DestinationPattern& d : p.destinations) Add(&out, d);
    out += "\n";
  }
  return out;
}

void CheckRejected(const absl::Status& s) {
  FUZZ_REQUIRE(!s.ok());
  if (s.code() != absl::StatusCode::kInvalidArgument) {
    // Only an NSS failure (an errno) may give another code.
    FUZZ_REQUIRE(s.code() != absl::StatusCode::kUnknown && s.code() != absl::StatusCode::kOk);
    FUZZ_REQUIRE(absl::StartsWith(s.message(), absl::StrCat(kSource, ":")));
    return;
  }
  // "fuzz.toml:LINE: problem"
  absl::string_view m = s.message();
  FUZZ_REQUIRE(absl::ConsumePrefix(&m, absl::StrCat(kSource, ":")));
  const size_t colon = m.find(": ");
  FUZZ_REQUIRE(colon != absl::string_view::npos);
  int line = 0;
  FUZZ_REQUIRE(absl::SimpleAtoi(m.substr(0, colon), &line) && line >= 1);
  FUZZ_REQUIRE(colon + 2 < m.size());
}

void CheckPromises(const Config& c) {
  FUZZ_REQUIRE(c.source == kSource);
  for (const ServiceConfig& s : c.services) {
    FUZZ_REQUIRE(!s.name.empty());
    FUZZ_REQUIRE(!s.certificates.empty());
    FUZZ_REQUIRE(!s.listen.empty() || !s.systemd_socket.empty());
    FUZZ_REQUIRE(s.min_version <= s.max_version);
    FUZZ_REQUIRE(!s.backend.empty() || !s.routes.empty());
    if (!s.backend.empty()) FUZZ_REQUIRE(c.FindBackend(s.backend) != nullptr);
    for (const RouteConfig& r : s.routes) {
      FUZZ_REQUIRE(c.FindBackend(r.backend) != nullptr);
      FUZZ_REQUIRE(!r.sni.empty() || !r.alpn.empty());
    }
    FUZZ_REQUIRE(c.FindService(s.name) == &s);
  }
  for (const BackendConfig& b : c.backends) {
    FUZZ_REQUIRE(c.FindBackend(b.name) == &b);
    if (b.mode == BackendMode::kPull) FUZZ_REQUIRE(!b.allow_uids.empty() || !b.allow_gids.empty());
  }
  for (const ClientProfileConfig& p : c.client_profiles) {
    FUZZ_REQUIRE(c.FindClientProfile(p.name) == &p);
    FUZZ_REQUIRE(!p.destinations.empty());
    FUZZ_REQUIRE(!p.allow_uids.empty() || !p.allow_gids.empty());
  }
}

}  // namespace
}  // namespace tlsd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tlsd;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Config> config = ParseConfig(text, kSource);
  if (!config.ok()) {
    CheckRejected(config.status());
    return 0;
  }
  CheckPromises(*config);
  absl::StatusOr<Config> again = ParseConfig(text, kSource);
  FUZZ_REQUIRE(again.ok());
  FUZZ_REQUIRE(Describe(*again) == Describe(*config));
  return 0;
}
