#ifndef TLSD_TLSD_CONFIG_CONFIG_H_
#define TLSD_TLSD_CONFIG_CONFIG_H_

// The tlsd configuration: a TOML file parsed and validated in one step into
// plain structs. docs/config.md is the reference for every key and
// policy/examples/tlsd.toml is a complete, commented example.
//
// Everything that can be decided from the text alone is decided here, so a
// bad config fails at startup (or at `tlsd --check-config`) with one precise
// message instead of at the first connection. What cannot be decided from the
// text is left to the code that acts on it: this layer never opens
// certificate, key, CA or ticket-key files (the handshake code loads them, in
// the process that is allowed to hold them), and never binds sockets.
//
// The one exception is user and group names in a backend's allow_uids /
// allow_gids, which are resolved to numbers here (getpwnam_r / getgrnam_r),
// because the access check compares SO_PEERCRED numbers and an unknown name
// must fail the config, not silently allow nobody.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsd {

// KtlsPolicy says what happens when the kernel cannot take a session (no
// "tls" ULP, or a cipher it does not support): kRequire refuses the
// connection with a logged reason; kPrefer relays through a socketpair, which
// is logged and counted, so applications work unchanged on any kernel.
enum class KtlsPolicy { kRequire, kPrefer };

// OffloadPolicy selects NIC offload of kTLS: kOff never asks for it, kAuto
// uses it when the device supports the session and software kTLS otherwise,
// kRequire needs it.
enum class OffloadPolicy { kOff, kAuto, kRequire };

// ClientAuthMode is whether tlsd requests a client certificate (kOptional,
// kRequire) and whether a handshake without one fails (kRequire).
enum class ClientAuthMode { kNone, kOptional, kRequire };

// BackendMode is who opens the tlsd-to-backend connection. kPush: tlsd
// connects to the backend's listening SOCK_SEQPACKET socket. kPull: workers
// connect to tlsd and subscribe to the backend by name.
enum class BackendMode { kPush, kPull };

// UnknownSniPolicy is what happens when a client's SNI matches no
// certificate's server_names: kDefault answers with the first certificate,
// kReject fails the handshake with an unrecognized_name alert.
enum class UnknownSniPolicy { kDefault, kReject };

// ListenAddress is one parsed `listen` entry.
//   "127.0.0.1:8443" -> host "127.0.0.1", port 8443 (IPv4)
//   "[::1]:443"      -> host "::1",       port 443  (IPv6; brackets removed)
//   "*:443"          -> host "*",         port 443  (every IPv6 and IPv4
//                       address: one dual-stack socket, IPV6_V6ONLY=0)
// "0.0.0.0:443" is every IPv4 address only and "[::]:443" every IPv6 address
// only (IPV6_V6ONLY=1); the duplicate-address check relies on the listener
// binding them that way. host is always a numeric address or "*", never a
// name to resolve.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
  std::string text;  // exactly as written, for messages and logs
};

// CertificateConfig is one [[service.certificate]]: a chain and its private
// key, both absolute paths that this layer does not open. server_names (DNS
// names, "*.example.com" wildcards allowed, stored lowercase) select the
// certificate by SNI; an empty list makes it a fallback only. line is the
// table's header line, for errors found later when the files are loaded.
struct CertificateConfig {
  std::string cert_path;
  std::string key_path;
  // A DER OCSP response to staple (kept fresh by a cron job or the CA's
  // tooling; read at start and on reload). Empty: no stapling.
  std::string ocsp_response_path;
  std::vector<std::string> server_names;
  int line = 0;
};

// RouteConfig is one [[service.route]]: connections whose SNI and negotiated
// ALPN match go to `backend`. An empty sni or alpn matches anything, but not
// both are empty. Routes are tried in file order and the first match wins;
// no match falls back to ServiceConfig::backend. sni is stored lowercase and
// may be a "*.example.com" wildcard (one label, like certificate names).
struct RouteConfig {
  std::string sni;
  std::string alpn;
  std::string backend;
  int line = 0;
};

// ServiceConfig is one [[service]]: where tlsd accepts connections, which
// identity it presents, how the TLS session is set up, and where the
// connection goes afterwards. Defaults are the values documented in
// docs/config.md. line is the [[service]] header line.
struct ServiceConfig {
  std::string name;
  int line = 0;
  std::vector<ListenAddress> listen;            // listen, systemd_socket, or both
  std::string systemd_socket;                   // FileDescriptorName= of activated fds
  std::vector<CertificateConfig> certificates;  // >= 1; RSA + ECDSA may mix
  uint16_t min_version = 0x0303;                // TLS 1.2
  uint16_t max_version = 0x0304;                // TLS 1.3
  std::string tls12_ciphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  std::string tls13_ciphersuites =
      "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
      "TLS_CHACHA20_POLY1305_SHA256";
  std::vector<std::string> alpn;  // server preference order
  ClientAuthMode client_auth = ClientAuthMode::kNone;
  std::string client_ca_path;  // set iff client_auth != kNone
  // CRLs for client certificates: a PEM file of CRLs, or a directory of
  // them in OpenSSL's hashed layout (openssl rehash). Re-read on reload.
  std::string client_crl_path;
  bool session_tickets = true;
  std::string ticket_key_file;  // empty = random keys, rotated by tlsd
  uint32_t ticket_rotate_seconds = 3600;
  bool session_cache = true;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t max_handshakes = 1024;
  // Per client address (0 = no limit): handshakes in flight at once, and new
  // handshakes per second. Over either, a connection is closed right after
  // accept(), before any crypto, and logged as outcome=refused-limit.
  uint32_t max_handshakes_per_source = 0;
  uint32_t handshakes_per_second_per_source = 0;
  // New handshakes per second for the whole service (0 = no limit).
  uint32_t handshakes_per_second = 0;
  KtlsPolicy ktls = KtlsPolicy::kPrefer;
  OffloadPolicy offload = OffloadPolicy::kAuto;
  bool rx_expect_no_pad = false;
  bool tx_zerocopy_ro = false;
  std::string backend;  // default backend; empty only when routes exist
  std::vector<RouteConfig> routes;
  UnknownSniPolicy unknown_sni = UnknownSniPolicy::kDefault;
  // Every connection starts with a PROXY protocol v1 or v2 header (from an
  // L4 load balancer); its addresses replace the socket's in the metadata
  // and the logs. Only for listeners that only a proxy can reach.
  bool proxy_protocol = false;
};

// BackendConfig is one [[backend]]: a named destination for connections.
// allow_uids / allow_gids are numeric (names were resolved at parse time):
// for pull, the peers allowed to subscribe; for push, the owners the peer of
// `socket_path` must have. A pull backend always has at least one entry.
// line is the [[backend]] header line.
struct BackendConfig {
  std::string name;
  int line = 0;
  BackendMode mode = BackendMode::kPush;
  std::string socket_path;  // push only: absolute path, SOCK_SEQPACKET
  std::vector<uint32_t> allow_uids;
  std::vector<uint32_t> allow_gids;
  uint32_t queue_limit = 64;
  uint32_t queue_timeout_ms = 2000;
};

// DestinationPattern is one entry of a client profile's `destinations`:
// "HOST:PORT" where HOST is a DNS name, "*.example.com" (any name under
// example.com, at any depth, not example.com itself), "*" (any host), an
// IPv4 address or a bracketed IPv6 address; PORT is a number or "*".
struct DestinationPattern {
  std::string host;  // lowercase; "" when any_host; without "*." when suffix
  bool any_host = false;
  bool suffix = false;  // "*.host"
  uint16_t port = 0;    // 0 when any_port
  bool any_port = false;
  std::string text;  // as written

  // Matches reports whether `host` (a name, any case, or an address as the
  // app wrote it, without brackets) and `port` fall under this pattern.
  bool Matches(absl::string_view host, uint16_t port) const;
};

// ClientProfileConfig is one [[client_profile]]: who may ask tlsd for
// outgoing connections (CONNECT), to where, and how tlsd verifies and
// presents itself. line is the table's header line.
struct ClientProfileConfig {
  std::string name;
  int line = 0;
  std::vector<uint32_t> allow_uids;  // at least one of the two lists
  std::vector<uint32_t> allow_gids;
  std::vector<DestinationPattern> destinations;  // >= 1
  std::string ca_file;                           // empty: OpenSSL's default trust store
  std::string cert_path;                         // client identity (both or neither)
  std::string key_path;
  uint16_t min_version = 0x0303;
  uint16_t max_version = 0x0304;
  uint32_t connect_timeout_ms = 10000;  // TCP connect and handshake together
  KtlsPolicy ktls = KtlsPolicy::kPrefer;
  bool session_resumption = true;  // keep sessions per destination and resume
};

// GlobalConfig is the [global] table: process-wide settings.
struct GlobalConfig {
  uint32_t threads = 0;  // handshake threads; 0 = one per online CPU
  std::string control_socket = "/run/tlsd/control.sock";
  std::string state_dir = "/var/lib/tlsd";
  std::string user;                // drop to it when started as root; empty = do not
  std::string log_level = "info";  // error|warning|notice|info|debug
  // Besides root, members (primary or supplementary) of this group may use
  // the admin commands (tlsctl). Unset: root only.
  std::optional<uint32_t> admin_gid;
  // Where Prometheus metrics are served (HTTP GET /metrics): a loopback
  // address (metrics_address) or a unix socket path (metrics_socket_path);
  // neither set: no metrics endpoint. metrics_text is as written.
  std::optional<ListenAddress> metrics_address;
  std::string metrics_socket_path;
  std::string metrics_text;
};

// Config is a whole, validated configuration. Every backend a service or
// route names exists, names are unique, and no two services listen on
// overlapping addresses or share a systemd socket name.
struct Config {
  std::string source;  // the source_name / path it was parsed from
  GlobalConfig global;
  std::vector<ServiceConfig> services;
  std::vector<BackendConfig> backends;
  std::vector<ClientProfileConfig> client_profiles;

  // FindClientProfile returns the profile called `name`, or nullptr.
  const ClientProfileConfig* FindClientProfile(absl::string_view name) const;
  // FindBackend returns the backend called `name`, or nullptr. The pointer
  // is into `backends` and lives as long as this Config is not modified.
  const BackendConfig* FindBackend(absl::string_view name) const;
  // FindService returns the service called `name`, or nullptr, like
  // FindBackend.
  const ServiceConfig* FindService(absl::string_view name) const;
};

// ParseConfig parses and validates TOML text. source_name is used in error
// messages and copied to Config::source. On failure the status is
// kInvalidArgument with the message "SOURCE:LINE: problem" for the first
// problem found: a TOML syntax error; else the first invalid table in file
// order; else the cross-table problem (duplicate name, overlapping listen
// address, undefined backend...) nearest the top. The one other code comes
// from an NSS failure while resolving allow_uids/allow_gids names (not "no
// such user", which is kInvalidArgument): it is the errno's code. Never
// opens files; may block in NSS for user and group names.
absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view source_name);

// LoadConfigFile reads the file at `path` (at most 1 MiB) and calls
// ParseConfig with `path` as the source name. A file that cannot be read
// gives "PATH: cannot read: <strerror>" with the errno's status code.
absl::StatusOr<Config> LoadConfigFile(absl::string_view path);

}  // namespace tlsd

#endif  // TLSD_TLSD_CONFIG_CONFIG_H_
