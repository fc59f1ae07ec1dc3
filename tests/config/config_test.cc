#include "tlsd/config/config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsd {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;

// Every raw string below starts its first line right after R"( so that the
// line numbers in expected messages can be counted from the text.

// A config that uses every key, with non-default values wherever possible.
constexpr absl::string_view kFullConfig = R"([global]
threads = 4
control_socket = "/run/tlsd/ctl.sock"
state_dir = "/var/lib/tlsd-test"
user = "tlsd"
log_level = "debug"

[[service]]
name = "web"
listen = ["127.0.0.1:8443", "[::1]:8443"]
systemd_socket = "web-https"
min_version = "1.3"
max_version = "1.3"
tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"
tls13_ciphersuites = "TLS_AES_256_GCM_SHA384"
alpn = ["h2", "http/1.1"]
client_auth = "optional"
client_ca = "/etc/tlsd/clients.pem"
session_tickets = true
ticket_key_file = "/etc/tlsd/tickets.key"
ticket_rotate_seconds = 600
session_cache = false
handshake_timeout_ms = 5000
max_handshakes = 256
ktls = "require"
offload = "require"
rx_expect_no_pad = true
tx_zerocopy_ro = true
backend = "app"
unknown_sni = "reject"

[[service.certificate]]
cert = "/etc/tlsd/web-ecdsa.crt"
key = "/etc/tlsd/web-ecdsa.key"
server_names = ["Example.COM", "*.example.com"]

[[service.certificate]]
cert = "/etc/tlsd/web-rsa.crt"
key = "/etc/tlsd/web-rsa.key"

[[service.route]]
sni = "api.example.com"
alpn = "h2"
backend = "api"

[[service.route]]
alpn = "http/1.1"
backend = "app"

[[service]]
name = "mail"
listen = ["*:993"]
backend = "imap"
[[service.certificate]]
cert = "/etc/tlsd/mail.crt"
key = "/etc/tlsd/mail.key"

[[backend]]
name = "app"
mode = "push"
socket = "/run/app/tlsd.sock"
allow_uids = [0, "root"]
queue_limit = 8
queue_timeout_ms = 500

[[backend]]
name = "api"
mode = "pull"
allow_gids = ["root", 4242]

[[backend]]
name = "imap"
mode = "pull"
allow_uids = [1000]
)";

TEST(ConfigTest, FullConfigParsesToExpectedValues) {
  absl::StatusOr<Config> config = ParseConfig(kFullConfig, "full.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->source, "full.toml");

  const GlobalConfig& g = config->global;
  EXPECT_EQ(g.threads, 4u);
  EXPECT_EQ(g.control_socket, "/run/tlsd/ctl.sock");
  EXPECT_EQ(g.state_dir, "/var/lib/tlsd-test");
  EXPECT_EQ(g.user, "tlsd");
  EXPECT_EQ(g.log_level, "debug");

  ASSERT_EQ(config->services.size(), 2u);
  const ServiceConfig& web = config->services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.line, 8);
  ASSERT_EQ(web.listen.size(), 2u);
  EXPECT_EQ(web.listen[0].host, "127.0.0.1");
  EXPECT_EQ(web.listen[0].port, 8443);
  EXPECT_EQ(web.listen[0].text, "127.0.0.1:8443");
  EXPECT_EQ(web.listen[1].host, "::1");
  EXPECT_EQ(web.listen[1].port, 8443);
  EXPECT_EQ(web.listen[1].text, "[::1]:8443");
  EXPECT_EQ(web.systemd_socket, "web-https");
  EXPECT_EQ(web.min_version, 0x0304);
  EXPECT_EQ(web.max_version, 0x0304);
  EXPECT_EQ(web.tls12_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(web.tls13_ciphersuites, "TLS_AES_256_GCM_SHA384");
  EXPECT_THAT(web.alpn, ElementsAre("h2", "http/1.1"));
  EXPECT_EQ(web.client_auth, ClientAuthMode::kOptional);
  EXPECT_EQ(web.client_ca_path, "/etc/tlsd/clients.pem");
  EXPECT_TRUE(web.session_tickets);
  EXPECT_EQ(web.ticket_key_file, "/etc/tlsd/tickets.key");
  EXPECT_EQ(web.ticket_rotate_seconds, 600u);
  EXPECT_FALSE(web.session_cache);
  EXPECT_EQ(web.handshake_timeout_ms, 5000u);
  EXPECT_EQ(web.max_handshakes, 256u);
  EXPECT_EQ(web.ktls, KtlsPolicy::kRequire);
  EXPECT_EQ(web.offload, OffloadPolicy::kRequire);
  EXPECT_TRUE(web.rx_expect_no_pad);
  EXPECT_TRUE(web.tx_zerocopy_ro);
  EXPECT_EQ(web.backend, "app");
  EXPECT_EQ(web.unknown_sni, UnknownSniPolicy::kReject);

  ASSERT_EQ(web.certificates.size(), 2u);
  EXPECT_EQ(web.certificates[0].cert_path, "/etc/tlsd/web-ecdsa.crt");
  EXPECT_EQ(web.certificates[0].key_path, "/etc/tlsd/web-ecdsa.key");
  // SNI is case-insensitive; names are stored lowercase.
  EXPECT_THAT(web.certificates[0].server_names, ElementsAre("example.com", "*.example.com"));
  EXPECT_EQ(web.certificates[0].line, 32);
  EXPECT_EQ(web.certificates[1].cert_path, "/etc/tlsd/web-rsa.crt");
  EXPECT_EQ(web.certificates[1].key_path, "/etc/tlsd/web-rsa.key");
  EXPECT_TRUE(web.certificates[1].server_names.empty());
  EXPECT_EQ(web.certificates[1].line, 37);

  ASSERT_EQ(web.routes.size(), 2u);
  EXPECT_EQ(web.routes[0].sni, "api.example.com");
  EXPECT_EQ(web.routes[0].alpn, "h2");
  EXPECT_EQ(web.routes[0].backend, "api");
  EXPECT_EQ(web.routes[0].line, 41);
  EXPECT_EQ(web.routes[1].sni, "");
  EXPECT_EQ(web.routes[1].alpn, "http/1.1");
  EXPECT_EQ(web.routes[1].backend, "app");
  EXPECT_EQ(web.routes[1].line, 46);

  const ServiceConfig& mail = config->services[1];
  EXPECT_EQ(mail.name, "mail");
  ASSERT_EQ(mail.listen.size(), 1u);
  EXPECT_EQ(mail.listen[0].host, "*");
  EXPECT_EQ(mail.listen[0].port, 993);
  EXPECT_EQ(mail.backend, "imap");

  ASSERT_EQ(config->backends.size(), 3u);
  const BackendConfig& app = config->backends[0];
  EXPECT_EQ(app.name, "app");
  EXPECT_EQ(app.line, 58);
  EXPECT_EQ(app.mode, BackendMode::kPush);
  EXPECT_EQ(app.socket_path, "/run/app/tlsd.sock");
  EXPECT_THAT(app.allow_uids, ElementsAre(0u, 0u));  // "root" resolved
  EXPECT_TRUE(app.allow_gids.empty());
  EXPECT_EQ(app.queue_limit, 8u);
  EXPECT_EQ(app.queue_timeout_ms, 500u);
  const BackendConfig& api = config->backends[1];
  EXPECT_EQ(api.mode, BackendMode::kPull);
  EXPECT_TRUE(api.socket_path.empty());
  EXPECT_THAT(api.allow_gids, ElementsAre(0u, 4242u));
  EXPECT_THAT(config->backends[2].allow_uids, ElementsAre(1000u));

  EXPECT_EQ(config->FindBackend("api"), &config->backends[1]);
  EXPECT_EQ(config->FindBackend("nope"), nullptr);
  EXPECT_EQ(config->FindService("mail"), &config->services[1]);
  EXPECT_EQ(config->FindService("nope"), nullptr);
}

TEST(ConfigTest, KeyMayBeAnOpensslStoreUri) {
  for (const std::string key : {"file:/etc/tlsd/k.pem", "pkcs11:token=tlsd;object=web"}) {
    absl::StatusOr<Config> config = ParseConfig(absl::StrCat(R"([[service]]
name = "web"
listen = ["0.0.0.0:443"]
backend = "app"
[[service.certificate]]
cert = "/c"
key = ")",
                                                             key, R"("
[[backend]]
name = "app"
mode = "push"
socket = "/s"
)"),
                                                "uri.toml");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->services[0].certificates[0].key_path, key);
  }
}

TEST(ConfigTest, MinimalConfigGetsDefaults) {
  absl::StatusOr<Config> config = ParseConfig(R"([[service]]
name = "web"
listen = ["0.0.0.0:443"]
backend = "app"
[[service.certificate]]
cert = "/c"
key = "/k"
[[backend]]
name = "app"
mode = "push"
socket = "/s"
)",
                                              "min.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->global.threads, 0u);
  EXPECT_EQ(config->global.control_socket, "/run/tlsd/control.sock");
  EXPECT_EQ(config->global.state_dir, "/var/lib/tlsd");
  EXPECT_EQ(config->global.user, "");
  EXPECT_EQ(config->global.log_level, "info");

  const ServiceConfig& s = config->services.at(0);
  const ServiceConfig defaults;
  EXPECT_EQ(s.min_version, 0x0303);
  EXPECT_EQ(s.max_version, 0x0304);
  EXPECT_EQ(s.tls12_ciphers, defaults.tls12_ciphers);
  EXPECT_EQ(s.tls13_ciphersuites, defaults.tls13_ciphersuites);
  EXPECT_TRUE(s.alpn.empty());
  EXPECT_EQ(s.client_auth, ClientAuthMode::kNone);
  EXPECT_TRUE(s.client_ca_path.empty());
  EXPECT_TRUE(s.session_tickets);
  EXPECT_TRUE(s.ticket_key_file.empty());
  EXPECT_EQ(s.ticket_rotate_seconds, 3600u);
  EXPECT_TRUE(s.session_cache);
  EXPECT_EQ(s.handshake_timeout_ms, 10000u);
  EXPECT_EQ(s.max_handshakes, 1024u);
  EXPECT_EQ(s.ktls, KtlsPolicy::kPrefer);
  EXPECT_EQ(s.offload, OffloadPolicy::kAuto);
  EXPECT_FALSE(s.rx_expect_no_pad);
  EXPECT_FALSE(s.tx_zerocopy_ro);
  EXPECT_TRUE(s.routes.empty());
  EXPECT_EQ(s.unknown_sni, UnknownSniPolicy::kDefault);

  const BackendConfig& b = config->backends.at(0);
  EXPECT_TRUE(b.allow_uids.empty());
  EXPECT_TRUE(b.allow_gids.empty());
  EXPECT_EQ(b.queue_limit, 64u);
  EXPECT_EQ(b.queue_timeout_ms, 2000u);
}

// Every key the parser accepts, by table, kept by hand. The example sets
// nearly all of them and must parse, so a key here that the parser does not
// know fails ShippedExampleParses; a key added to the parser must be added
// here, which makes it show up in review of the docs.
constexpr absl::string_view kAllKeys[] = {
    // [global]
    "threads", "control_socket", "state_dir", "user", "log_level", "admin_group", "metrics_listen",
    // [[service]]
    "name", "listen", "systemd_socket", "min_version", "max_version", "tls12_ciphers",
    "tls13_ciphersuites", "alpn", "client_auth", "client_ca", "session_tickets", "ticket_key_file",
    "ticket_rotate_seconds", "session_cache", "handshake_timeout_ms", "max_handshakes", "ktls",
    "offload", "rx_expect_no_pad", "tx_zerocopy_ro", "backend", "unknown_sni",
    // [[service.certificate]]
    "cert", "key", "server_names",
    // [[service.route]]
    "sni",
    // [[backend]]
    "mode", "socket", "allow_uids", "allow_gids", "queue_limit", "queue_timeout_ms",
    // [[client_profile]]
    "destinations", "ca_file", "connect_timeout_ms", "session_resumption"};

std::string ReadWholeFile(const char* path) {
  std::string out;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) {
    return out;
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    out.append(buf, n);
  }
  close(fd);
  return out;
}

TEST(ConfigTest, ExampleAndDocsMentionEveryKey) {
  const std::string example = ReadWholeFile(TLSD_EXAMPLE_CONFIG);
  const std::string docs = ReadWholeFile(TLSD_CONFIG_DOCS);
  for (absl::string_view key : kAllKeys) {
    // Set, or shown commented out, at the start of a line.
    EXPECT_TRUE(absl::StrContains(example, absl::StrCat("\n", key, " = ")) ||
                absl::StrContains(example, absl::StrCat("\n# ", key, " = ")))
        << key << " missing from " << TLSD_EXAMPLE_CONFIG;
    EXPECT_TRUE(absl::StrContains(docs, absl::StrCat("| `", key, "` |")))
        << key << " missing from the key tables in " << TLSD_CONFIG_DOCS;
  }
}

TEST(ConfigTest, ShippedExampleParses) {
  absl::StatusOr<Config> config = LoadConfigFile(TLSD_EXAMPLE_CONFIG);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->source, TLSD_EXAMPLE_CONFIG);
  EXPECT_FALSE(config->services.empty());
  EXPECT_FALSE(config->backends.empty());
}

// --- Broken configs: one per message. --------------------------------------

struct BrokenCase {
  const char* name;
  absl::string_view toml;
  const char* message;  // the exact, complete status message
};

// Reused pieces, each a whole number of lines. GOOD_SVC is lines 1-7 (name
// on 2, listen on 3, backend on 4, its certificate on 5-7); PUSH_APP is four
// lines defining backend 'app'.
#define SVC_HEAD "[[service]]\nname = \"web\"\n"
#define SVC_CERT "[[service.certificate]]\ncert = \"/c\"\nkey = \"/k\"\n"
#define PUSH_APP "[[backend]]\nname = \"app\"\nmode = \"push\"\nsocket = \"/s\"\n"
#define GOOD_SVC SVC_HEAD "listen = [\"127.0.0.1:443\"]\nbackend = \"app\"\n" SVC_CERT

const BrokenCase kBroken[] = {
    {"TomlSyntaxError", "[[service]]\nname = \"web\nlisten = []\n",
     "t.toml:2: syntax error in string: unescaped control characters other "
     "than TAB (U+0009) are explicitly prohibited"},
    {"TomlDuplicateKey", SVC_HEAD "name = \"again\"\n",
     "t.toml:3: syntax error in key-value pair: cannot redefine existing "
     "string 'name'"},
    {"UnknownTopLevelKey", GOOD_SVC PUSH_APP "[servce]\n",
     "t.toml:12: unknown top-level key 'servce' (did you mean 'service'?)"},
    {"GlobalKeyAboveEveryHeader", "threads = 4\n[global]\n",
     "t.toml:1: unknown top-level key 'threads' (it belongs under a [global] header)"},
    {"ServiceKeyAboveEveryHeader", "listen = [\"127.0.0.1:443\"]\n",
     "t.toml:1: unknown top-level key 'listen' (it belongs under a [[service]] header)"},
    {"UnknownServiceKeyWithSuggestion", SVC_HEAD "listne = [\"127.0.0.1:443\"]\n",
     "t.toml:3: unknown key 'listne' in [[service]] (did you mean 'listen'?)"},
    {"UnknownCertificateKey", GOOD_SVC "crt = \"/x\"\n" PUSH_APP,
     "t.toml:8: unknown key 'crt' in [[service.certificate]] (did you mean "
     "'cert'?)"},
    {"UnknownGlobalKeyWithoutSuggestion", "[global]\ncolour = \"blue\"\n",
     "t.toml:2: unknown key 'colour' in [global]"},
    {"UnknownBackendKey", GOOD_SVC PUSH_APP "sockets = \"/t\"\n",
     "t.toml:12: unknown key 'sockets' in [[backend]] (did you mean "
     "'socket'?)"},
    {"ServiceWithoutName", "[[service]]\nlisten = [\"127.0.0.1:443\"]\n",
     "t.toml:1: [[service]] is missing required key 'name'"},
    {"DuplicateServiceName",
     GOOD_SVC PUSH_APP SVC_HEAD "listen = [\"127.0.0.1:444\"]\nbackend = \"app\"\n" SVC_CERT,
     "t.toml:13: duplicate service name 'web' (first defined at line 2)"},
    {"DuplicateBackendName", GOOD_SVC PUSH_APP PUSH_APP,
     "t.toml:13: duplicate backend name 'app' (first defined at line 9)"},
    {"NoListenNoSystemdSocket", SVC_HEAD "backend = \"app\"\n" SVC_CERT,
     "t.toml:1: service 'web' has neither listen nor systemd_socket: it "
     "would accept no connections"},
    {"ListenWithoutPort", SVC_HEAD "listen = [\"127.0.0.1\"]\n",
     "t.toml:3: listen address '127.0.0.1' has no port (expected HOST:PORT)"},
    {"ListenPortZero", SVC_HEAD "listen = [\"127.0.0.1:0\"]\n",
     "t.toml:3: listen address '127.0.0.1:0': port must be from 1 to 65535, "
     "got '0'"},
    {"ListenPortTooLarge", SVC_HEAD "listen = [\n  \"127.0.0.1:443\",\n  \"[::]:65536\",\n]\n",
     "t.toml:5: listen address '[::]:65536': port must be from 1 to 65535, "
     "got '65536'"},
    {"ListenHostName", SVC_HEAD "listen = [\"localhost:443\"]\n",
     "t.toml:3: listen address 'localhost:443': host 'localhost' is not an "
     "IPv4 address, a bracketed IPv6 address or '*'"},
    {"ListenBracketedIpv4", SVC_HEAD "listen = [\"[127.0.0.1]:443\"]\n",
     "t.toml:3: listen address '[127.0.0.1]:443': '127.0.0.1' in brackets is "
     "not an IPv6 address"},
    {"ListenDuplicateAcrossServices",
     GOOD_SVC PUSH_APP "[[service]]\nname = \"two\"\nlisten = [\"127.0.0.1:443\"]\n"
                       "backend = \"app\"\n" SVC_CERT,
     "t.toml:14: listen address '127.0.0.1:443' is already used by service "
     "'web' (line 3)"},
    {"ListenOverlapsWildcard",
     GOOD_SVC PUSH_APP "[[service]]\nname = \"two\"\nlisten = [\"*:443\"]\n"
                       "backend = \"app\"\n" SVC_CERT,
     "t.toml:14: listen address '*:443' overlaps '127.0.0.1:443' of service "
     "'web' (line 3)"},
    {"DuplicateSystemdSocket",
     SVC_HEAD "systemd_socket = \"https\"\nbackend = \"app\"\n" SVC_CERT PUSH_APP
              "[[service]]\nname = \"two\"\nsystemd_socket = \"https\"\n"
              "backend = \"app\"\n" SVC_CERT,
     "t.toml:14: systemd_socket 'https' is already used by service 'web' "
     "(line 3)"},
    {"InvalidSystemdSocketName", SVC_HEAD "systemd_socket = \"a:b\"\n",
     "t.toml:3: systemd_socket 'a:b' is not a valid FileDescriptorName= (at "
     "most 255 printable ASCII characters, no ':')"},
    {"ServiceWithoutCertificate",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\nbackend = \"app\"\n" PUSH_APP,
     "t.toml:1: service 'web' has no [[service.certificate]]: it needs at "
     "least one cert and key"},
    {"CertificateWithoutKey",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n"
              "[[service.certificate]]\ncert = \"/c\"\n",
     "t.toml:4: [[service.certificate]] is missing required key 'key'"},
    {"CertificateWithoutCert",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n"
              "[[service.certificate]]\nkey = \"/k\"\n",
     "t.toml:4: [[service.certificate]] is missing required key 'cert'"},
    {"CertificateTableNotArray",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n"
              "[service.certificate]\ncert = \"/c\"\n",
     "t.toml:4: certificate must be an array of tables "
     "([[service.certificate]]), got table"},
    {"RelativeCertPath",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n"
              "[[service.certificate]]\ncert = \"certs/web.pem\"\n",
     "t.toml:5: cert must be an absolute path, got 'certs/web.pem'"},
    {"RelativeKeyPath",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n"
              "[[service.certificate]]\ncert = \"/c\"\nkey = \"keys/web.key\"\n",
     "t.toml:6: key must be an absolute path or an OpenSSL store URI (file:..., pkcs11:...), "
     "got 'keys/web.key'"},
    {"BadServerName",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n"
              "[[service.certificate]]\nserver_names = [\"ok.example\", \"a..b\"]\n",
     "t.toml:5: server_names entry 'a..b' is not a DNS name or '*.' "
     "wildcard"},
    {"MinVersionAboveMax",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\nbackend = \"app\"\n"
              "min_version = \"1.3\"\nmax_version = \"1.2\"\n" SVC_CERT,
     "t.toml:6: min_version '1.3' is greater than max_version '1.2'"},
    {"VersionOneOneRefused", SVC_HEAD "min_version = \"1.1\"\n",
     "t.toml:3: min_version '1.1' is not supported: tlsd supports only TLS "
     "\"1.2\" and \"1.3\""},
    {"VersionWrittenAsFloat", SVC_HEAD "max_version = 1.3\n",
     "t.toml:3: max_version must be a quoted string (\"1.2\" or \"1.3\"), "
     "got float 1.3"},
    {"UnknownKtlsValue", SVC_HEAD "ktls = \"on\"\n",
     "t.toml:3: ktls 'on' is not one of: require, prefer"},
    {"UnknownOffloadValue", SVC_HEAD "offload = \"yes\"\n",
     "t.toml:3: offload 'yes' is not one of: off, auto, require"},
    {"UnknownBackendMode", "[[backend]]\nname = \"app\"\nmode = \"poll\"\n",
     "t.toml:3: mode 'poll' is not one of: push, pull"},
    {"UnknownLogLevel", "[global]\nlog_level = \"verbose\"\n",
     "t.toml:2: log_level 'verbose' is not one of: error, warning, notice, "
     "info, debug"},
    {"ClientAuthWithoutCa",
     GOOD_SVC "[[service]]\nname = \"two\"\nclient_auth = \"require\"\n"
              "listen = [\"127.0.0.1:444\"]\nbackend = \"app\"\n" SVC_CERT,
     "t.toml:10: client_auth 'require' needs client_ca, the CA bundle that "
     "verifies client certificates"},
    {"ClientCaWithoutClientAuth",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\nbackend = \"app\"\n"
              "client_ca = \"/ca.pem\"\n" SVC_CERT,
     "t.toml:5: client_ca is set but client_auth is 'none': client "
     "certificates would never be requested"},
    {"TicketKeyFileWithoutTickets",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\nbackend = \"app\"\n"
              "session_tickets = false\nticket_key_file = \"/t.key\"\n" SVC_CERT,
     "t.toml:6: ticket_key_file is set but session_tickets is false"},
    {"UndefinedBackend",
     GOOD_SVC "[[backend]]\nname = \"ap\"\nmode = \"push\"\n"
              "socket = \"/s\"\n",
     "t.toml:4: backend 'app' is not defined by any [[backend]] (did you mean "
     "'ap'?)"},
    {"UndefinedRouteBackend",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n" SVC_CERT
              "[[service.route]]\nsni = \"a.example\"\nbackend = \"nope\"\n" PUSH_APP,
     "t.toml:9: route backend 'nope' is not defined by any [[backend]]"},
    {"RouteWithoutSniOrAlpn",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n" SVC_CERT "[[service.route]]\nbackend = \"app\"\n",
     "t.toml:7: [[service.route]] needs sni, alpn or both: a route matching "
     "every connection is the service's backend key"},
    {"RouteWithoutBackend",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n" SVC_CERT "[[service.route]]\nsni = \"a.example\"\n",
     "t.toml:7: [[service.route]] is missing required key 'backend'"},
    {"RouteAlpnNotOffered",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\nalpn = [\"http/1.1\"]\n" SVC_CERT
              "[[service.route]]\nalpn = \"h2\"\nbackend = \"app\"\n",
     "t.toml:8: route alpn 'h2' is not in the service's alpn list, so the "
     "route could never match"},
    {"RouteShadowedByEarlierRoute",
     SVC_HEAD "listen = [\"127.0.0.1:443\"]\n" SVC_CERT
              "[[service.route]]\nsni = \"*.example.com\"\nbackend = \"app\"\n"
              "[[service.route]]\nsni = \"api.example.com\"\nbackend = \"app\"\n",
     "t.toml:10: route (sni 'api.example.com', alpn any) can never match: "
     "the route at line 7 matches first"},
    {"ServiceWithNowhereToGo", SVC_HEAD "listen = [\"127.0.0.1:443\"]\n" SVC_CERT,
     "t.toml:1: service 'web' has no backend and no [[service.route]]: its "
     "connections would have nowhere to go"},
    {"RejectUnknownSniWithoutServerNames",
     GOOD_SVC "[[service]]\nname = \"two\"\nlisten = [\"127.0.0.1:444\"]\n"
              "backend = \"app\"\nunknown_sni = \"reject\"\n" SVC_CERT,
     "t.toml:12: unknown_sni 'reject' needs server_names on at least one "
     "certificate: otherwise every client sending SNI is refused"},
    {"PushBackendWithoutSocket", GOOD_SVC "[[backend]]\nname = \"app\"\nmode = \"push\"\n",
     "t.toml:8: push backend 'app' needs socket, the path of its "
     "SOCK_SEQPACKET listening socket"},
    {"PullBackendWithSocket",
     GOOD_SVC "[[backend]]\nname = \"app\"\nmode = \"pull\"\n"
              "socket = \"/s\"\nallow_uids = [0]\n",
     "t.toml:11: pull backend 'app' must not have a socket: pull workers "
     "connect to tlsd"},
    {"PullBackendOpenToEveryone", GOOD_SVC "[[backend]]\nname = \"app\"\nmode = \"pull\"\n",
     "t.toml:8: pull backend 'app' has no allow_uids or allow_gids: that "
     "would let any local user subscribe and receive its connections"},
    {"BackendWithoutMode", GOOD_SVC "[[backend]]\nname = \"app\"\n",
     "t.toml:8: backend 'app' is missing required key 'mode' (\"push\" or "
     "\"pull\")"},
    {"BackendWithoutName", "[[backend]]\nmode = \"push\"\n",
     "t.toml:1: [[backend]] is missing required key 'name'"},
    {"SocketPathTooLong",
     "[global]\ncontrol_socket = \"/run/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"\n",
     // Long values are cut at 80 characters in messages.
     "t.toml:2: control_socket '/run/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aa...' is 119 bytes long: unix socket paths are limited to 107"},
    {"AllowUidsUnknownUser",
     "[[backend]]\nname = \"app\"\nmode = \"pull\"\n"
     "allow_uids = [\"no-such-user-tlsd-test\"]\n",
     "t.toml:4: allow_uids entry 'no-such-user-tlsd-test': no such user"},
    {"AllowGidsUnknownGroup",
     "[[backend]]\nname = \"app\"\nmode = \"pull\"\n"
     "allow_gids = [0, \"no-such-group-tlsd-test\"]\n",
     "t.toml:4: allow_gids entry 'no-such-group-tlsd-test': no such group"},
    {"AllowUidsQuotedNumber",
     "[[backend]]\nname = \"app\"\nmode = \"pull\"\nallow_uids = [\"99999\"]\n",
     "t.toml:4: allow_uids entry '99999': no such user (write numeric ids "
     "without quotes)"},
    {"AllowUidsNegative", "[[backend]]\nname = \"app\"\nmode = \"pull\"\nallow_uids = [-1]\n",
     "t.toml:4: allow_uids entry -1 is not a valid user id (0 to 4294967294)"},
    {"HandshakeTimeoutZero", SVC_HEAD "handshake_timeout_ms = 0\n",
     "t.toml:3: handshake_timeout_ms must be between 1 and 300000, got 0"},
    {"HandshakeTimeoutTooLong", SVC_HEAD "handshake_timeout_ms = 300001\n",
     "t.toml:3: handshake_timeout_ms must be between 1 and 300000, got "
     "300001"},
    {"HandshakeTimeoutIsString", SVC_HEAD "handshake_timeout_ms = \"10s\"\n",
     "t.toml:3: handshake_timeout_ms must be an integer, got string '10s'"},
    {"MaxHandshakesZero", SVC_HEAD "max_handshakes = 0\n",
     "t.toml:3: max_handshakes must be at least 1, got 0"},
    {"NegativeQueueLimit", "[[backend]]\nname = \"app\"\nqueue_limit = -1\n",
     "t.toml:3: queue_limit must not be negative, got -1"},
    {"QueueTimeoutAboveU32", "[[backend]]\nname = \"app\"\nqueue_timeout_ms = 4294967296\n",
     "t.toml:3: queue_timeout_ms must be at most 4294967295, got 4294967296"},
    {"TicketRotateZero", SVC_HEAD "ticket_rotate_seconds = 0\n",
     "t.toml:3: ticket_rotate_seconds must be between 1 and 604800, got 0"},
    {"TooManyThreads", "[global]\nthreads = 100000\n",
     "t.toml:2: threads must be at most 1024, got 100000"},
    {"BoolGivenString", SVC_HEAD "session_tickets = \"yes\"\n",
     "t.toml:3: session_tickets must be true or false, got string 'yes'"},
    {"ListenNotArray", SVC_HEAD "listen = \"127.0.0.1:443\"\n",
     "t.toml:3: listen must be an array of strings, got string "
     "'127.0.0.1:443'"},
    {"ListenEntryNotString", SVC_HEAD "listen = [443]\n",
     "t.toml:3: listen entries must be strings, got integer 443"},
    {"AlpnEntryDuplicate", SVC_HEAD "alpn = [\"h2\", \"h2\"]\n",
     "t.toml:3: alpn entry 'h2' is listed twice"},
    {"AlpnEntryEmpty", SVC_HEAD "alpn = [\"\"]\n",
     "t.toml:3: alpn entry '' must be 1 to 255 bytes"},
    {"EmptyString", SVC_HEAD "tls12_ciphers = \"\"\n", "t.toml:3: tls12_ciphers must not be empty"},
    {"NulInString", SVC_HEAD "backend = \"a\\u0000b\"\n",
     "t.toml:3: backend 'a\\000b' must not contain a NUL character"},
    {"BadNameCharacters", "[[service]]\nname = \"my web\"\n",
     "t.toml:2: name 'my web' must be 1 to 64 characters from A-Z a-z 0-9 . "
     "_ -"},
    {"ServiceIsPlainTable", "[service]\nname = \"web\"\n",
     "t.toml:1: service must be an array of tables ([[service]]), got table"},
    {"ServiceArrayOfNumbers", "service = [1, 2]\n",
     "t.toml:1: service must be an array of tables ([[service]]), got array "
     "containing integer 1"},
    {"GlobalIsArray", "[[global]]\nthreads = 1\n",
     "t.toml:1: global must be a table ([global]), got array"},
    {"NoServices", "[global]\nthreads = 2\n" PUSH_APP,
     "t.toml:1: no [[service]] or [[client_profile]] is defined: tlsd would have nothing "
     "to do"},
    {"ProfileWithoutDestinations", "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\n",
     "t.toml:1: client profile 'up' is missing required key 'destinations' (HOST:PORT patterns "
     "it may connect to)"},
    {"ProfileWithoutAllowList", "[[client_profile]]\nname = \"up\"\ndestinations = [\"a:1\"]\n",
     "t.toml:1: client profile 'up' has no allow_uids or allow_gids: no local user could use it"},
    {"ProfileDestinationWithoutPort",
     "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\ndestinations = [\"example.com\"]\n",
     "t.toml:4: destination 'example.com' is not HOST:PORT (HOST a name, *.name, *, an IPv4 "
     "address or [IPv6]; PORT a number or *)"},
    {"ProfileDestinationBadPort",
     "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\ndestinations = [\"a.b:0\"]\n",
     "t.toml:4: destination 'a.b:0': port '0' is not 1..65535 or *"},
    {"ProfileDestinationBadHost",
     "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\ndestinations = [\"a_b:443\"]\n",
     "t.toml:4: destination 'a_b:443': 'a_b' is not a DNS name, *.name, * or an address (IPv6 "
     "in brackets)"},
    {"ProfileDestinationBareIpv6",
     "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\ndestinations = [\"::1:443\"]\n",
     "t.toml:4: destination '::1:443': '::1' is not a DNS name, *.name, * or an address (IPv6 "
     "in brackets)"},
    {"ProfileCertWithoutKey",
     "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\ndestinations = [\"*:443\"]\n"
     "cert = \"/c\"\n",
     "t.toml:5: client profile 'up' has cert without key: a client identity needs both"},
    {"DuplicateProfile",
     "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\ndestinations = [\"*:443\"]\n"
     "[[client_profile]]\nname = \"up\"\nallow_uids = [0]\ndestinations = [\"*:443\"]\n",
     "t.toml:6: duplicate client profile name 'up' (first defined at line 2)"},
};

TEST(ClientProfileTest, ParsesAndMatchesDestinations) {
  absl::StatusOr<Config> config = ParseConfig(R"([[client_profile]]
name = "up"
allow_uids = [0]
allow_gids = [0]
destinations = ["api.Example.com:443", "*.internal:*", "127.0.0.1:8443", "[::1]:8443"]
ca_file = "/etc/ssl/ca.pem"
cert = "/c"
key = "/k"
min_version = "1.3"
connect_timeout_ms = 2500
ktls = "require"
session_resumption = false
)",
                                              "t.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->client_profiles.size(), 1u);
  const ClientProfileConfig& p = config->client_profiles[0];
  EXPECT_EQ(p.name, "up");
  EXPECT_EQ(p.line, 1);
  EXPECT_EQ(p.ca_file, "/etc/ssl/ca.pem");
  EXPECT_EQ(p.cert_path, "/c");
  EXPECT_EQ(p.min_version, 0x0304);
  EXPECT_EQ(p.connect_timeout_ms, 2500u);
  EXPECT_EQ(p.ktls, KtlsPolicy::kRequire);
  EXPECT_FALSE(p.session_resumption);
  EXPECT_EQ(config->FindClientProfile("up"), &p);
  EXPECT_EQ(config->FindClientProfile("down"), nullptr);
  ASSERT_EQ(p.destinations.size(), 4u);
  auto allowed = [&](absl::string_view host, uint16_t port) {
    for (const DestinationPattern& d : p.destinations) {
      if (d.Matches(host, port)) return true;
    }
    return false;
  };
  EXPECT_TRUE(allowed("api.example.com", 443));
  EXPECT_TRUE(allowed("API.EXAMPLE.COM.", 443));
  EXPECT_FALSE(allowed("api.example.com", 444));
  EXPECT_FALSE(allowed("x.api.example.com", 443));
  EXPECT_TRUE(allowed("db.internal", 5432));
  EXPECT_TRUE(allowed("a.b.internal", 1));
  EXPECT_FALSE(allowed("internal", 1)) << "*.internal is below internal, not internal itself";
  EXPECT_FALSE(allowed("evilinternal", 1));
  EXPECT_TRUE(allowed("127.0.0.1", 8443));
  EXPECT_FALSE(allowed("127.0.0.2", 8443));
  EXPECT_TRUE(allowed("::1", 8443));
}

// Printed by gtest when a case fails; the default is a hex dump.
void PrintTo(const BrokenCase& c, std::ostream* os) { *os << c.name; }

class BrokenConfigTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenConfigTest, FailsWithExactMessage) {
  const BrokenCase& c = GetParam();
  absl::StatusOr<Config> config = ParseConfig(c.toml, "t.toml");
  ASSERT_FALSE(config.ok()) << "parsed:\n" << c.toml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(config.status().message()), c.message) << "config:\n" << c.toml;
}

INSTANTIATE_TEST_SUITE_P(AllMessages, BrokenConfigTest, ::testing::ValuesIn(kBroken),
                         [](const ::testing::TestParamInfo<BrokenCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(BrokenConfigTableTest, MessagesArePairwiseDistinct) {
  std::set<std::string> seen;
  for (const BrokenCase& c : kBroken) {
    EXPECT_TRUE(seen.insert(c.message).second) << "repeated: " << c.message;
  }
  EXPECT_GE(seen.size(), 20u);
}

TEST(BrokenConfigTableTest, MessagesFollowTheHouseFormat) {
  for (const BrokenCase& c : kBroken) {
    // FILE:LINE: problem, starting lowercase (or with a [[table]] name),
    // no trailing period.
    EXPECT_THAT(c.message, MatchesRegex("t\\.toml:[1-9][0-9]*: [a-z\\[].*"));
    EXPECT_FALSE(absl::EndsWith(c.message, ".")) << c.message;
  }
}

// --- Ordering: the first error is the first one in the file. ---------------

TEST(ConfigOrderTest, ReportsFirstErrorInFileOrderAcrossTables) {
  // Both tables are broken. toml++ iterates a table's keys sorted by name,
  // which would visit [[backend]] first; the service's error comes first in
  // the file, so it is the one reported.
  absl::StatusOr<Config> config = ParseConfig(
      "[[service]]\nname = \"web\"\nktls = \"maybe\"\n"
      "[[backend]]\nname = \"app\"\nmode = \"poll\"\n",
      "t.toml");
  EXPECT_EQ(config.status().message(), "t.toml:3: ktls 'maybe' is not one of: require, prefer");
}

TEST(ConfigOrderTest, ReportsFirstErrorInFileOrderWithinTable) {
  // "zzz" sorts after "ktls" but is written first.
  absl::StatusOr<Config> config =
      ParseConfig("[[service]]\nname = \"web\"\nzzz = 1\nktls = \"maybe\"\n", "t.toml");
  EXPECT_EQ(config.status().message(), "t.toml:3: unknown key 'zzz' in [[service]]");
}

TEST(ConfigOrderTest, CrossChecksReportLowestLine) {
  // Both services reference undefined backends; the first one wins even
  // though the duplicate-name check runs first.
  absl::StatusOr<Config> config =
      ParseConfig(GOOD_SVC
                  "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:444\"]\n"
                  "backend = \"app\"\n" SVC_CERT,
                  "t.toml");
  EXPECT_EQ(config.status().message(), "t.toml:4: backend 'app' is not defined by any [[backend]]");
}

TEST(ConfigListenTest, SameServiceDuplicateAndFamilyRules) {
  // Exact duplicates within one service are refused too.
  EXPECT_EQ(ParseConfig(SVC_HEAD "listen = [\"[::1]:443\", \"[0:0::1]:443\"]\n"
                                 "backend = \"app\"\n" SVC_CERT PUSH_APP,
                        "t.toml")
                .status()
                .message(),
            "t.toml:3: listen address '[0:0::1]:443' is already used by "
            "service 'web' (line 3)");
  // 0.0.0.0 and :: are separate families (the listener binds :: V6ONLY);
  // the same port on different specific addresses is fine.
  EXPECT_TRUE(ParseConfig(SVC_HEAD "listen = [\"0.0.0.0:443\", \"[::]:443\", "
                                   "\"127.0.0.1:8443\", \"127.0.0.2:8443\"]\n"
                                   "backend = \"app\"\n" SVC_CERT PUSH_APP,
                          "t.toml")
                  .ok());
  EXPECT_EQ(ParseConfig(SVC_HEAD "listen = [\"127.0.0.1:443\", \"0.0.0.0:443\"]\n"
                                 "backend = \"app\"\n" SVC_CERT PUSH_APP,
                        "t.toml")
                .status()
                .message(),
            "t.toml:3: listen address '0.0.0.0:443' overlaps '127.0.0.1:443' "
            "of service 'web' (line 3)");
}

TEST(ConfigRouteTest, SpecificBeforeGeneralIsAllowed) {
  absl::StatusOr<Config> config =
      ParseConfig(SVC_HEAD "listen = [\"127.0.0.1:443\"]\nalpn = [\"h2\"]\n" SVC_CERT
                           "[[service.route]]\nsni = \"api.example.com\"\nalpn = \"h2\"\n"
                           "backend = \"app\"\n"
                           "[[service.route]]\nsni = \"*.example.com\"\nbackend = \"app\"\n"
                           "[[service.route]]\nalpn = \"h2\"\nbackend = \"app\"\n"
                           "[[service.route]]\nsni = \"a.b.example.com\"\n"
                           "backend = \"app\"\n" PUSH_APP,
                  "t.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->services[0].routes.size(), 4u);
  EXPECT_TRUE(config->services[0].backend.empty());
}

TEST(ConfigTest, InlineTablesWork) {
  absl::StatusOr<Config> config = ParseConfig(
      // TOML 1.0 inline tables must fit on one line.
      R"(service = [{ name = "web", listen = ["127.0.0.1:1"], backend = "app", certificate = [{ cert = "/c", key = "/k" }] }]
backend = [{ name = "app", mode = "push", socket = "/s" }]
)",
      "t.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->services[0].certificates[0].key_path, "/k");
}

// --- LoadConfigFile. --------------------------------------------------------

class TempFile {
 public:
  explicit TempFile(absl::string_view contents) {
    const char* dir = getenv("TEST_TMPDIR");
    path_ = absl::StrCat(dir != nullptr ? dir : "/tmp", "/tlsd-config-XXXXXX");
    const int fd = mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    close(fd);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LoadConfigFileTest, MissingFileIsNotFound) {
  absl::StatusOr<Config> config = LoadConfigFile("/nonexistent/tlsd-config-test.toml");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(config.status().message(),
            "/nonexistent/tlsd-config-test.toml: cannot read: No such file or "
            "directory");
}

// --- [global] admin_group and metrics_listen. --------------------------------

// Global parses `global_lines` (starting on line 2) in front of a valid
// service and backend.
absl::StatusOr<Config> Global(const std::string& global_lines) {
  return ParseConfig(absl::StrCat("[global]\n", global_lines,
                                  "\n[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:8443\"]\n"
                                  "backend = \"app\"\n[[service.certificate]]\n"
                                  "cert = \"/c.pem\"\nkey = \"/k.pem\"\n"
                                  "[[backend]]\nname = \"app\"\nmode = \"pull\"\n"
                                  "allow_uids = [0]\n"),
                     "t.toml");
}

TEST(GlobalAdminMetricsTest, DefaultsAreRootOnlyAndNoMetrics) {
  absl::StatusOr<Config> c = Global("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->global.admin_gid.has_value());
  EXPECT_FALSE(c->global.metrics_address.has_value());
  EXPECT_EQ(c->global.metrics_socket_path, "");
}

TEST(GlobalAdminMetricsTest, AcceptsGroupsAndLoopbackOrUnixMetrics) {
  absl::StatusOr<Config> c = Global("admin_group = \"root\"\nmetrics_listen = \"127.0.0.1:9410\"");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->global.admin_gid, 0u);
  ASSERT_TRUE(c->global.metrics_address.has_value());
  EXPECT_EQ(c->global.metrics_address->port, 9410);
  c = Global("admin_group = 4242\nmetrics_listen = \"[::1]:9410\"");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->global.admin_gid, 4242u);
  EXPECT_EQ(c->global.metrics_address->host, "::1");
  c = Global("metrics_listen = \"/run/tlsd/metrics.sock\"");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->global.metrics_socket_path, "/run/tlsd/metrics.sock");
  EXPECT_FALSE(c->global.metrics_address.has_value());
}

TEST(GlobalAdminMetricsTest, ErrorsNameTheLineAndTheProblem) {
  EXPECT_EQ(Global("metrics_listen = \"0.0.0.0:9410\"").status().message(),
            "t.toml:2: metrics_listen '0.0.0.0:9410' must be a loopback address "
            "(127.0.0.1:PORT, [::1]:PORT) or an absolute unix socket path");
  EXPECT_EQ(Global("\nmetrics_listen = \"*:9410\"").status().message(),
            "t.toml:3: metrics_listen '*:9410' must be a loopback address "
            "(127.0.0.1:PORT, [::1]:PORT) or an absolute unix socket path");
  EXPECT_THAT(
      std::string(Global("admin_group = \"no-such-group-tlsd\"").status().message()),
      ::testing::HasSubstr("t.toml:2: admin_group entry 'no-such-group-tlsd': no such group"));
  EXPECT_THAT(std::string(Global("admin_group = [1]").status().message()),
              ::testing::StartsWith("t.toml:2: admin_group must be a group name or number, got "));
}

TEST(LoadConfigFileTest, ErrorsNameThePath) {
  TempFile file("[global]\nthreads = -1\n");
  absl::StatusOr<Config> config = LoadConfigFile(file.path());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            absl::StrCat(file.path(), ":2: threads must not be negative, got -1"));
}

TEST(LoadConfigFileTest, RefusesHugeFile) {
  TempFile file(std::string((1 << 20) + 1, '#'));
  absl::StatusOr<Config> config = LoadConfigFile(file.path());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            absl::StrCat(file.path(), ": config file is larger than 1048576 bytes"));
}

TEST(LoadConfigFileTest, DirectoryIsAnError) {
  absl::StatusOr<Config> config = LoadConfigFile("/");
  EXPECT_EQ(config.status().message(), "/: cannot read: Is a directory");
}

}  // namespace
}  // namespace tlsd
