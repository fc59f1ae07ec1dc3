// tlsctl against a running tlsd: status, reload, check-config and certs,
// asserted on tlsctl's JSON (and its exit codes); who may use them
// (SO_PEERCRED, SO_PEERGROUPS); and the Prometheus endpoint, scraped before
// and after handshakes with curl over TCP and over a unix socket.

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kSetpriv[] = "/usr/bin/setpriv";

// Config for these tests: SimpleConfig plus [global] extras and a limit
// that status must show.
std::string Config(const DaemonEnv& env, const std::string& global_extra) {
  return absl::StrReplaceAll(SimpleConfig(env, "max_handshakes_per_source = 7\n"),
                             {{"[global]\n", absl::StrCat("[global]\n", global_extra)}});
}

struct Ctl {
  PeerResult run;
  Json json;  // parsed stdout when --json was given and it parsed
};

Ctl RunCtl(const TestDaemon& d, const std::vector<std::string>& args,
           const std::vector<std::string>& prefix = {}) {
  std::vector<std::string> argv = prefix;
  argv.push_back(BinaryPath("tlsctl"));
  argv.push_back("--socket");
  argv.push_back(d.control());
  argv.insert(argv.end(), args.begin(), args.end());
  Ctl c;
  c.run = RunPeer(argv);
  c.json = Json::parse(c.run.out, nullptr, false);
  return c;
}

// One handshake and a one-byte echo.
bool RoundTrip(const TestDaemon& d) {
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.port(), {});
  if (!c.ok() || !(*c)->Write("x").ok()) return false;
  return (*c)->ReadExactly(1).ok();
}

// A client that is not TLS at all: tlsd fails the handshake.
void NotTls(const TestDaemon& d) {
  PeerResult r =
      RunPeer({kCurl, "-s", "--max-time", "5", absl::StrCat("http://127.0.0.1:", d.port(), "/")});
  (void)r;
}

// Sample finds one sample's value in Prometheus text: `series` is the metric
// name with its labels exactly as tlsd writes them. -1 when absent.
double Sample(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, series) || line.size() <= series.size() ||
        line[series.size()] != ' ') {
      continue;
    }
    double v;
    if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
  }
  return -1;
}

class TlsctlTest : public ::testing::Test {
 protected:
  void Start(const std::string& global_extra, int num_ports = 1) {
    absl::StatusOr<std::unique_ptr<TestDaemon>> d = TestDaemon::Start(
        {.config =
             [global_extra](const DaemonEnv& env) {
               std::string extra = absl::StrReplaceAll(
                   global_extra,
                   {{"@PORT1@", env.ports.size() > 1 ? absl::StrCat(env.port(1)) : ""},
                    {"@DIR@", env.dir}});
               return Config(env, extra);
             },
         .num_ports = num_ports});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
        InProcessBackend::Subscribe(daemon_->control(), "app", EchoHandler());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
  }

  // Status runs `tlsctl --json status` and returns services[0].
  Json Service() {
    Ctl c = RunCtl(*daemon_, {"--json", "status"});
    EXPECT_EQ(c.run.exit_code, 0) << c.run.Describe();
    if (c.json.is_discarded() || !c.json.contains("services")) return Json::object();
    status_ = c.json;
    return c.json["services"][0];
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<InProcessBackend> backend_;
  Json status_;
};

TEST_F(TlsctlTest, StatusCountsHandshakesFailuresAndShowsLimitsAndBackends) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  Json before = Service();
  ASSERT_EQ(before["name"], "web") << status_.dump(2);
  EXPECT_EQ(before["listeners"][0], absl::StrCat("127.0.0.1:", daemon_->port()));
  EXPECT_EQ(before["limits"]["max_handshakes_per_source"], 7);
  EXPECT_EQ(before["handshakes_ok"], 0);

  constexpr int kOk = 3;
  for (int i = 0; i < kOk; ++i) ASSERT_TRUE(RoundTrip(*daemon_));
  NotTls(*daemon_);
  ASSERT_TRUE(
      WaitFor([&] { return Service()["outcomes"]["handshake-failed"] == 1; }, absl::Seconds(10)))
      << status_.dump(2);

  Json s = Service();
  printf("[ tlsctl ] status after %d handshakes and 1 non-TLS client: %s\n", kOk, s.dump().c_str());
  EXPECT_EQ(s["handshakes_ok"], kOk);
  EXPECT_EQ(s["accepted"], kOk + 1);
  EXPECT_EQ(s["handshakes_in_flight"], 0);
  EXPECT_EQ(s["outcomes"]["handshake-failed"], 1);
  // Relayed connections our client drops without close_notify end as
  // relay-error; failures counts every ending that is not a handoff.
  EXPECT_EQ(s["failures"], 1 + s["outcomes"]["relay-error"].get<int>());
  EXPECT_EQ(s["outcomes"]["handed-off"].get<int>() + s["outcomes"]["relay"].get<int>(), kOk);
  // Where the records went: kTLS in the VM, relay on a host without it.
  const std::string path = ExpectedPathName();
  EXPECT_EQ(s["data_paths"]["tx"][path], kOk) << s.dump(2);
  ASSERT_EQ(s["negotiated"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["negotiated"][0]["version"], "TLSv1.3");
  EXPECT_EQ(s["negotiated"][0]["count"], kOk);
  EXPECT_GT(s["handshake_ms"]["p50"].get<double>(), 0);

  ASSERT_EQ(status_["backends"].size(), 1u);
  const Json& b = status_["backends"][0];
  EXPECT_EQ(b["name"], "app");
  EXPECT_EQ(b["mode"], "pull");
  EXPECT_EQ(b["workers"], 1);
  EXPECT_EQ(b["health"], "ready");
  EXPECT_EQ(b["queue_depth"], 0);
  EXPECT_EQ(status_["pid"], daemon_->pid());

  // The text form says the same for people.
  Ctl text = RunCtl(*daemon_, {"status"});
  EXPECT_EQ(text.run.exit_code, 0) << text.run.Describe();
  EXPECT_THAT(text.run.out, HasSubstr("service web: listening on 127.0.0.1:"));
  EXPECT_THAT(text.run.out, HasSubstr(absl::StrCat("handshakes ok ", kOk, ", failures ")));
  EXPECT_THAT(text.run.out, HasSubstr("handshake-failed=1"));
  EXPECT_THAT(text.run.out, HasSubstr("per source 7"));
  EXPECT_THAT(text.run.out, HasSubstr("app (pull): ready, 1 worker(s), queue 0/"));
}

// Install replaces the served certificate and key (renamed into place).
void Install(const TestDaemon& d, const std::string& cert_pem, const std::string& key_pem) {
  ASSERT_TRUE(WriteFile(d.env().dir + "/next.pem", cert_pem).ok());
  ASSERT_TRUE(WriteFile(d.env().dir + "/next.key", key_pem, 0600).ok());
  ASSERT_EQ(rename((d.env().dir + "/next.key").c_str(), d.env().key.c_str()), 0);
  ASSERT_EQ(rename((d.env().dir + "/next.pem").c_str(), d.env().cert.c_str()), 0);
}

TEST_F(TlsctlTest, ReloadCheckConfigAndCerts) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  Ctl certs = RunCtl(*daemon_, {"--json", "certs"});
  ASSERT_EQ(certs.run.exit_code, 0) << certs.run.Describe();
  ASSERT_EQ(certs.json["certificates"].size(), 1u) << certs.run.out;
  const Json& first = certs.json["certificates"][0];
  EXPECT_EQ(first["service"], "web");
  EXPECT_THAT(first["dns_names"].dump(), HasSubstr("\"localhost\""));
  EXPECT_GT(first["days_left"].get<int>(), 14);
  EXPECT_EQ(first["expires_soon"], false);
  EXPECT_EQ(certs.json["expiring_soon"], 0);

  // A broken config: check-config and reload both refuse it, with the
  // reason, and exit 1; tlsd goes on serving.
  absl::StatusOr<std::string> good = ReadFile(daemon_->config_path());
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(WriteFile(daemon_->config_path(), *good + "\n[[service\n").ok());
  Ctl bad_check = RunCtl(*daemon_, {"--json", "check-config"});
  EXPECT_EQ(bad_check.run.exit_code, 1) << bad_check.run.Describe();
  EXPECT_EQ(bad_check.json["ok"], false);
  EXPECT_THAT(bad_check.json["error"].get<std::string>(),
              HasSubstr(absl::StrCat(daemon_->config_path(), ":")));
  Ctl bad_reload = RunCtl(*daemon_, {"reload"});
  EXPECT_EQ(bad_reload.run.exit_code, 1) << bad_reload.run.Describe();
  EXPECT_THAT(bad_reload.run.err, HasSubstr("reload failed: "));
  EXPECT_TRUE(RoundTrip(*daemon_));
  ASSERT_TRUE(WriteFile(daemon_->config_path(), *good).ok());

  // A certificate that expires in 5 days: check-config accepts it without
  // applying it; reload applies it; certs warns.
  const std::string dir = daemon_->env().dir;
  PeerResult made =
      RunPeer({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-days", "5", "-subj", "/CN=short-lived.test", "-addext",
               "subjectAltName=DNS:short-lived.test,IP:127.0.0.1", "-keyout", dir + "/short.key",
               "-out", dir + "/short.pem"});
  ASSERT_EQ(made.exit_code, 0) << made.Describe();
  ASSERT_NO_FATAL_FAILURE(Install(*daemon_, ReadFile(dir + "/short.pem").value_or(""),
                                  ReadFile(dir + "/short.key").value_or("")));
  Ctl check = RunCtl(*daemon_, {"--json", "check-config"});
  EXPECT_EQ(check.run.exit_code, 0) << check.run.Describe();
  EXPECT_EQ(check.json["ok"], true);
  EXPECT_EQ(check.json["certificates"], 1);
  Ctl still = RunCtl(*daemon_, {"--json", "certs"});
  EXPECT_EQ(still.json["certificates"][0]["sha256"], first["sha256"])
      << "check-config applied the new certificate";

  Ctl reload = RunCtl(*daemon_, {"reload"});
  EXPECT_EQ(reload.run.exit_code, 0) << reload.run.Describe();
  EXPECT_THAT(reload.run.out, HasSubstr("reloaded "));
  Ctl soon = RunCtl(*daemon_, {"--json", "certs"});
  ASSERT_EQ(soon.run.exit_code, 0) << soon.run.Describe();
  const Json& c = soon.json["certificates"][0];
  EXPECT_EQ(c["subject"], "CN=short-lived.test");
  EXPECT_EQ(c["dns_names"], Json::array({"short-lived.test"}));
  EXPECT_EQ(c["ip_addresses"], Json::array({"127.0.0.1"}));
  EXPECT_EQ(c["expires_soon"], true);
  EXPECT_LE(c["days_left"].get<int>(), 5);
  EXPECT_EQ(soon.json["expiring_soon"], 1);
  Ctl soon_text = RunCtl(*daemon_, {"certs"});
  EXPECT_THAT(soon_text.run.out, HasSubstr("WARNING: expires within 14 days"));

  Ctl after = RunCtl(*daemon_, {"--json", "status"});
  EXPECT_EQ(after.json["reloads"]["ok"], 1);
  EXPECT_EQ(after.json["reloads"]["refused"], 1);
}

TEST_F(TlsctlTest, OnlyRootAndTheAdminGroupMayAsk) {
  ASSERT_NO_FATAL_FAILURE(Start("admin_group = 65534\n"));
  // nobody must be able to reach the socket at all for the check to matter.
  ASSERT_EQ(chmod(daemon_->env().dir.c_str(), 0711), 0);
  const std::vector<std::string> as_nobody = {kSetpriv, "--reuid=65534", "--regid=65533",
                                              "--clear-groups"};
  Ctl refused = RunCtl(*daemon_, {"status"}, as_nobody);
  EXPECT_EQ(refused.run.exit_code, 77) << refused.run.Describe();
  EXPECT_THAT(refused.run.err, HasSubstr("may not use admin commands"));
  EXPECT_TRUE(daemon_->WaitForLog("refused admin command 'status' from pid"));
  // The same uid with 65534 (nogroup) as a supplementary group: allowed
  // (SO_PEERGROUPS), and as its primary group (SO_PEERCRED).
  Ctl supplementary = RunCtl(*daemon_, {"--json", "status"},
                             {kSetpriv, "--reuid=65534", "--regid=65533", "--groups=65534"});
  EXPECT_EQ(supplementary.run.exit_code, 0) << supplementary.run.Describe();
  EXPECT_EQ(supplementary.json["ok"], true);
  Ctl primary =
      RunCtl(*daemon_, {"status"}, {kSetpriv, "--reuid=65534", "--regid=65534", "--clear-groups"});
  EXPECT_EQ(primary.run.exit_code, 0) << primary.run.Describe();
}

TEST_F(TlsctlTest, ExitCodesForUsageAndAnAbsentDaemon) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  Ctl usage = RunCtl(*daemon_, {"frobnicate"});
  EXPECT_EQ(usage.run.exit_code, 64) << usage.run.Describe();
  PeerResult absent =
      RunPeer({BinaryPath("tlsctl"), "--socket", daemon_->env().dir + "/nothing.sock", "status"});
  EXPECT_EQ(absent.exit_code, 69) << absent.Describe();
  EXPECT_THAT(absent.err, HasSubstr("cannot reach tlsd"));
}

TEST_F(TlsctlTest, MetricsEndpointCountersMoveWithHandshakes) {
  ASSERT_NO_FATAL_FAILURE(Start("metrics_listen = \"127.0.0.1:@PORT1@\"\n", 2));
  const std::string url = absl::StrCat("http://127.0.0.1:", daemon_->port(1), "/metrics");
  auto scrape = [&] {
    PeerResult r = RunPeer({kCurl, "-sS", "--fail", "--max-time", "10", url});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return r.out;
  };
  const std::string before = scrape();
  EXPECT_THAT(before, HasSubstr("# TYPE tlsd_handshake_duration_seconds histogram"));
  EXPECT_EQ(Sample(before, "tlsd_connections_accepted_total{service=\"web\"}"), 0) << before;
  constexpr int kOk = 4;
  for (int i = 0; i < kOk; ++i) ASSERT_TRUE(RoundTrip(*daemon_));
  NotTls(*daemon_);
  std::string after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = scrape();
        return Sample(after,
                      "tlsd_connection_outcomes_total{service=\"web\",outcome=\"handshake-"
                      "failed\"}") == 1;
      },
      absl::Seconds(10)))
      << after;
  printf("[ tlsctl ] metrics after %d handshakes:\n%s\n", kOk, after.c_str());
  EXPECT_EQ(Sample(after, "tlsd_connections_accepted_total{service=\"web\"}"), kOk + 1);
  EXPECT_EQ(Sample(after, "tlsd_handshake_duration_seconds_count{service=\"web\"}"), kOk);
  EXPECT_EQ(Sample(after, "tlsd_handoff_latency_seconds_count{service=\"web\"}"), kOk);
  EXPECT_EQ(Sample(after, absl::StrCat("tlsd_data_path_total{service=\"web\",direction=\"rx\","
                                       "path=\"",
                                       ExpectedPathName(), "\"}")),
            kOk);
  // By version and cipher: whatever suite was chosen, the TLS 1.3 total is kOk.
  double tls13 = 0;
  for (absl::string_view line : absl::StrSplit(after, '\n')) {
    if (absl::StartsWith(line, "tlsd_handshakes_total{service=\"web\",version=\"TLSv1.3\"")) {
      double v = 0;
      ASSERT_TRUE(absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) << line;
      tls13 += v;
    }
  }
  EXPECT_EQ(tls13, kOk) << after;
  EXPECT_EQ(Sample(after, "tlsd_backend_workers{backend=\"app\"}"), 1);
  EXPECT_EQ(Sample(after, "tlsd_backend_queue_depth{backend=\"app\"}"), 0);
  EXPECT_EQ(Sample(after, "tlsd_handshakes_in_flight{service=\"web\"}"), 0);

  PeerResult missing =
      RunPeer({kCurl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
               absl::StrCat("http://127.0.0.1:", daemon_->port(1), "/other")});
  EXPECT_EQ(missing.out, "404") << missing.Describe();
}

TEST_F(TlsctlTest, MetricsOnAUnixSocket) {
  ASSERT_NO_FATAL_FAILURE(Start("metrics_listen = \"@DIR@/metrics.sock\"\n"));
  ASSERT_TRUE(RoundTrip(*daemon_));
  PeerResult r = RunPeer({kCurl, "-sS", "--fail", "--max-time", "10", "--unix-socket",
                          daemon_->env().dir + "/metrics.sock", "http://tlsd/metrics"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Sample(r.out, "tlsd_handshake_duration_seconds_count{service=\"web\"}"), 1) << r.out;
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
