// README's demo, without scripts/demo.sh's build and install steps: the
// same self-signed certificate command, the same TOML shape as demo.sh
// writes, the real tlsd-demo-backend subscribed over the control socket, and
// the exact curl line demo.sh prints. The answer is 200 with the
// connection's metadata.

#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// What scripts/demo.sh writes to $state/tlsd.toml, with $state, $port and
// $(id -u) filled in.
std::string DemoToml(const DaemonEnv& env) {
  return absl::StrCat(
      "# Written by scripts/demo.sh; see policy/examples/tlsd.toml for every option.\n",
      "[global]\n", "control_socket = \"", env.dir, "/control.sock\"\n", "\n", "[[service]]\n",
      "name = \"demo\"\n", "listen = [\"127.0.0.1:", env.port(), "\"]\n", "alpn = [\"http/1.1\"]\n",
      "backend = \"demo\"\n", "\n", "[[service.certificate]]\n", "cert = \"", env.dir,
      "/cert.pem\"\n", "key = \"", env.dir, "/key.pem\"\n", "\n", "[[backend]]\n",
      "name = \"demo\"\n", "mode = \"pull\"\n", "allow_uids = [", getuid(), "]\n");
}

// demo.sh's certificate: self-signed ECDSA P-256 for localhost/127.0.0.1.
absl::Status MakeDemoCert(const DaemonEnv& env) {
  PeerResult r =
      RunPeer({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-days", "825", "-subj", "/CN=localhost", "-addext",
               "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
               absl::StrCat(env.dir, "/key.pem"), "-out", absl::StrCat(env.dir, "/cert.pem")});
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("openssl req: ", r.Describe()));
  return absl::OkStatus();
}

// Parses the demo backend's "key: value" lines.
std::map<std::string, std::string> ParseMetadata(absl::string_view body) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    const size_t colon = line.find(": ");
    if (colon == absl::string_view::npos) {
      if (!line.empty() && line.back() == ':')
        out[std::string(line.substr(0, line.size() - 1))] = "";
      continue;
    }
    out[std::string(line.substr(0, colon))] = std::string(line.substr(colon + 2));
  }
  return out;
}

TEST(DemoTest, ReadmeCurlLineGets200WithConnectionMetadata) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = DemoToml, .prepare = MakeDemoCert});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  const std::string demo_bin = BinaryPath("tlsd-demo-backend");
  ASSERT_EQ(access(demo_bin.c_str(), X_OK), 0) << demo_bin << " is missing";
  absl::StatusOr<std::unique_ptr<BackgroundProcess>> demo =
      BackgroundProcess::Start({demo_bin, "--control", d.control(), "--backend", "demo"},
                               absl::StrCat(d.env().dir, "/demo-backend.log"));
  ASSERT_TRUE(demo.ok()) << demo.status();
  ASSERT_TRUE((*demo)->WaitForOutput("ready:")) << (*demo)->Output();

  TlsStatSnapshot before;
  const std::string cert = absl::StrCat(d.env().dir, "/cert.pem");
  const std::string url = absl::StrCat("https://127.0.0.1:", d.port(), "/");
  // The line demo.sh prints: curl --cacert $state/cert.pem https://127.0.0.1:$port/
  PeerResult r = RunPeer({kCurl, "--cacert", cert, url});
  ASSERT_EQ(r.exit_code, 0) << r.Describe() << "\ntlsd log:\n" << d.Log();
  std::map<std::string, std::string> meta = ParseMetadata(r.out);
  EXPECT_EQ(meta["service"], "demo") << r.out;
  EXPECT_EQ(meta["backend"], "demo") << r.out;
  EXPECT_EQ(meta["alpn"], "http/1.1") << r.out;
  EXPECT_EQ(meta["tls_version"], "TLSv1.3") << r.out;
  EXPECT_EQ(meta["tx_path"], ExpectedPathName()) << r.out;
  EXPECT_EQ(meta["rx_path"], ExpectedPathName()) << r.out;
  EXPECT_EQ(meta["local"], absl::StrCat("127.0.0.1:", d.port())) << r.out;
  EXPECT_THAT(meta["peer"], StartsWith("127.0.0.1:")) << r.out;
  EXPECT_EQ(meta["resumed"], "no") << r.out;
  // The cipher the backend reports is the one tlsd logged for it.
  ASSERT_FALSE(meta["connection_id"].empty()) << r.out;
  uint64_t id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(meta["connection_id"], &id)) << r.out;
  absl::StatusOr<ConnLogLine> line = d.WaitForConnLog(id);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(meta["cipher"], line->Field("cipher")) << r.out << "\n" << line->line;
  EXPECT_THAT(meta["cipher"], StartsWith("TLS_")) << r.out;
  EXPECT_EQ(line->Field("path"), absl::StrCat(ExpectedPathName(), "/", ExpectedPathName()));
  EXPECT_EQ(line->Field("outcome"), KernelKtls() ? "handed-off" : "relay") << line->line;

  // And the status line is 200.
  PeerResult head = RunPeer({kCurl, "--cacert", cert, "--include", url});
  ASSERT_EQ(head.exit_code, 0) << head.Describe();
  EXPECT_THAT(head.out, StartsWith("HTTP/1.1 200 OK\r\n")) << head.out;
  EXPECT_THAT(head.out, HasSubstr("\r\n\r\nconnection_id: ")) << head.out;
  ExpectKtlsCounters(before, 2);
}

// --file: every request is answered with the file, written with sendfile(2)
// on the handed-off socket (kTLS: the kernel encrypts it; relay: into the
// socketpair). bench/ measures bulk throughput with it.
TEST(DemoTest, FileOptionAnswersWithTheFileIntact) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = DemoToml, .prepare = MakeDemoCert});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  const std::string file = absl::StrCat(d.env().dir, "/bulk.bin");
  const std::string content = RandomBytes(3 * 1024 * 1024 + 17);  // not a multiple of a record
  ASSERT_TRUE(WriteFile(file, content).ok());
  const std::string demo_bin = BinaryPath("tlsd-demo-backend");

  // Its usage errors, before any connection.
  PeerResult both =
      RunPeer({demo_bin, "--control", d.control(), "--backend", "demo", "--echo", "--file", file});
  EXPECT_EQ(both.exit_code, 64) << both.Describe();
  EXPECT_THAT(both.err, HasSubstr("--echo and --file exclude each other"));
  PeerResult missing = RunPeer({demo_bin, "--control", d.control(), "--backend", "demo", "--file",
                                absl::StrCat(d.env().dir, "/nonexistent")});
  EXPECT_EQ(missing.exit_code, 1) << missing.Describe();
  EXPECT_THAT(missing.err, HasSubstr("nonexistent: No such file or directory"));

  absl::StatusOr<std::unique_ptr<BackgroundProcess>> demo = BackgroundProcess::Start(
      {demo_bin, "--control", d.control(), "--backend", "demo", "--file", file},
      absl::StrCat(d.env().dir, "/demo-backend.log"));
  ASSERT_TRUE(demo.ok()) << demo.status();
  ASSERT_TRUE((*demo)->WaitForOutput("ready:")) << (*demo)->Output();
  TlsStatSnapshot before;
  const std::string got = absl::StrCat(d.env().dir, "/got.bin");
  PeerResult r = RunPeer({kCurl, "--silent", "--show-error", "--cacert",
                          absl::StrCat(d.env().dir, "/cert.pem"), "--output", got,
                          absl::StrCat("https://127.0.0.1:", d.port(), "/anything")});
  ASSERT_EQ(r.exit_code, 0) << r.Describe() << "\ntlsd log:\n" << d.Log();
  absl::StatusOr<std::string> body = ReadFile(got);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(body->size(), content.size());
  EXPECT_EQ(Sha256Hex(*body), Sha256Hex(content));
  ExpectKtlsCounters(before, 1);
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
