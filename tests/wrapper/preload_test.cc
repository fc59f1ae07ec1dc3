// tls-wrap preload mode end to end: a real tlsd, tls-wrap exec()ing real
// unmodified daemons (Debian's python3 http.server and redis-server, and
// read_logger, a plain-TCP daemon that logs what its read()s return) with the
// shim, and real clients (curl, redis-cli --tls, openssl s_client).
//
// On a host without kTLS the daemons get relay sockets; in the kTLS VM lane
// (TLSD_IN_VM=1) they get kTLS sockets, where a plain read() meeting
// close_notify fails with EIO unless the shim handles it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"
#include "tests/integration/support/memscan.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kRedisServer[] = "/usr/bin/redis-server";
constexpr char kRedisCli[] = "/usr/bin/redis-cli";

std::string WrapBin(absl::string_view name) {
  if (const char* dir = getenv("TLSD_TEST_BIN_DIR"); dir != nullptr && *dir != '\0') {
    return absl::StrCat(dir, "/", name);
  }
  if (name == "tls-wrap") return TLS_WRAP_TEST_WRAP_BIN;
  return TLS_WRAP_TEST_READ_LOGGER_BIN;
}

// A program the test needs: on a host its absence is a skip (with the
// reason), in the VM lane a failure (the lane copies it in).
#define REQUIRE_PROGRAM(path)                                         \
  do {                                                                \
    if (access(path, X_OK) != 0) {                                    \
      if (InVm()) FAIL() << path << " is missing in the VM";          \
      GTEST_SKIP() << "skipped: " << path << " not installed "        \
                   << "(scripts/install-deps.sh --test installs it)"; \
    }                                                                 \
  } while (0)

#ifdef TLSD_SANITIZER_BUILD
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif

// The shim is loaded into uninstrumented daemons: in a sanitizer build it
// and libtlsfd need the sanitizer runtime first in the library list.
#define SKIP_IN_SANITIZER_BUILD()                                                             \
  do {                                                                                        \
    if (kSanitizerBuild) {                                                                    \
      GTEST_SKIP() << "skipped: a sanitizer build's shim cannot be preloaded into "           \
                      "uninstrumented daemons; the RelWithDebInfo stage and the VM lane run " \
                      "this";                                                                 \
    }                                                                                         \
  } while (0)

// tlsd with service "legacy" on port(0), routed to the pull backend
// "wrapped" that `allow_uids` may subscribe to.
std::unique_ptr<TestDaemon> StartTlsd(const std::string& allow_uids) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [allow_uids](const DaemonEnv& env) {
        return absl::StrCat(
            "[global]\ncontrol_socket = \"", env.control, "\"\nstate_dir = \"", env.dir,
            "\"\n\n[[service]]\nname = \"legacy\"\nlisten = [\"127.0.0.1:", env.port(0),
            "\"]\nbackend = \"wrapped\"\n\n[[service.certificate]]\n", "cert = \"", env.cert,
            "\"\nkey = \"", env.key, "\"\n\n[[backend]]\nname = \"wrapped\"\nmode = \"pull\"\n",
            "allow_uids = [", allow_uids, "]\n");
      }});
  if (!d.ok()) {
    ADD_FAILURE() << d.status();
    return nullptr;
  }
  return std::move(*d);
}

// StartWrapped runs `daemon` under tls-wrap preload, taking over `port`, and
// waits until the shim has subscribed and the daemon says `ready`.
std::unique_ptr<BackgroundProcess> StartWrapped(const TestDaemon& tlsd, int port,
                                                const std::vector<std::string>& daemon,
                                                absl::string_view ready,
                                                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {
      WrapBin("tls-wrap"), "preload", "--control", tlsd.control(),
      "--backend",         "wrapped", "--port",    std::to_string(port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("--");
  argv.insert(argv.end(), daemon.begin(), daemon.end());
  const std::string out = absl::StrCat(tlsd.env().dir, "/wrapped-", port, ".log");
  absl::StatusOr<std::unique_ptr<BackgroundProcess>> p = BackgroundProcess::Start(argv, out);
  if (!p.ok()) {
    ADD_FAILURE() << p.status();
    return nullptr;
  }
  const std::string subscribed = absl::StrCat("tls-wrap preload: port ", port, ": connections");
  if (!(*p)->WaitForOutput(subscribed, absl::Seconds(30)) ||
      !(*p)->WaitForOutput(ready, absl::Seconds(30))) {
    ADD_FAILURE() << "the wrapped daemon did not come up; its output:\n"
                  << (*p)->Output() << "\ntlsd:\n"
                  << tlsd.Log();
    return nullptr;
  }
  return std::move(*p);
}

// PlainPortRefuses: the daemon's own port was never opened on the network.
bool PlainPortRefuses(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool refused =
      connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno == ECONNREFUSED;
  close(s);
  return refused;
}

// Every connection tlsd handed to the wrapped daemon took the path this
// kernel allows: kTLS both ways in the VM, relay on a host.
void ExpectHandedOff(const TestDaemon& tlsd, int connections) {
  std::vector<ConnLogLine> lines;
  // A relayed connection has a second line when the relay ends.
  for (const ConnLogLine& l : tlsd.ConnLogLines()) {
    if (!absl::StartsWith(l.Field("outcome"), "relay-")) lines.push_back(l);
  }
  ASSERT_EQ(static_cast<int>(lines.size()), connections) << tlsd.Log();
  const std::string path = absl::StrCat(ExpectedPathName(), "/", ExpectedPathName());
  for (const ConnLogLine& l : lines) {
    EXPECT_EQ(l.Field("path"), path) << l.line;
    EXPECT_EQ(l.Field("outcome"), KernelKtls() ? "handed-off" : "relay") << l.line;
  }
}

TEST(PreloadTest, PythonHttpServerServesAFileToCurl) {
  TLSD_IT_CHECK_KERNEL();
  SKIP_IN_SANITIZER_BUILD();
  REQUIRE_PROGRAM(kPython);
  std::unique_ptr<TestDaemon> tlsd = StartTlsd(std::to_string(getuid()));
  ASSERT_NE(tlsd, nullptr);
  TempDir www;
  const std::string blob = RandomBytes(4 << 20);
  ASSERT_TRUE(WriteFile(www.path() + "/blob.bin", blob).ok());
  const int port = PickFreePort();
  TlsStatSnapshot before;
  std::unique_ptr<BackgroundProcess> py =
      StartWrapped(*tlsd, port,
                   {kPython, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                    www.path(), std::to_string(port)},
                   "Serving HTTP on");
  ASSERT_NE(py, nullptr);
  EXPECT_TRUE(PlainPortRefuses(port)) << "the daemon's plain port must not be open";

  const std::string got = www.path() + "/got.bin";
  PeerResult r = RunPeer({kCurl, "-sS", "--cacert", tlsd->env().ca, "-o", got, "-w", "%{http_code}",
                          absl::StrCat("https://localhost:", tlsd->port(), "/blob.bin")},
                         {.timeout = absl::Seconds(120)});
  ASSERT_EQ(r.exit_code, 0) << r.Describe() << "\n" << py->Output();
  EXPECT_EQ(r.out, "200");
  absl::StatusOr<std::string> body = ReadFile(got);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(body->size(), blob.size());
  EXPECT_EQ(Sha256Hex(*body), Sha256Hex(blob));
  // http.server logs the client's address as accept() gave it: the TLS
  // client's, from tlsd's metadata.
  EXPECT_TRUE(py->WaitForOutput("127.0.0.1 - - ")) << py->Output();
  EXPECT_THAT(py->Output(), HasSubstr("\"GET /blob.bin HTTP/1.1\" 200"));
  ASSERT_TRUE(tlsd->WaitForConnLog(1).ok()) << tlsd->Log();
  ExpectHandedOff(*tlsd, 1);
  ExpectKtlsCounters(before, 1);
}

TEST(PreloadTest, RedisAnswersSetAndGetFromRedisCliOverTls) {
  TLSD_IT_CHECK_KERNEL();
  SKIP_IN_SANITIZER_BUILD();
  REQUIRE_PROGRAM(kRedisServer);
  REQUIRE_PROGRAM(kRedisCli);
  std::unique_ptr<TestDaemon> tlsd = StartTlsd(std::to_string(getuid()));
  ASSERT_NE(tlsd, nullptr);
  const int port = PickFreePort();
  TlsStatSnapshot before;
  std::unique_ptr<BackgroundProcess> redis =
      StartWrapped(*tlsd, port,
                   {kRedisServer, "--port", std::to_string(port), "--bind", "127.0.0.1", "--save",
                    "", "--appendonly", "no", "--dir", tlsd->env().dir, "--daemonize", "no"},
                   "Ready to accept connections");
  ASSERT_NE(redis, nullptr);
  EXPECT_TRUE(PlainPortRefuses(port));

  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {
        kRedisCli,   "--tls", "--cacert",  tlsd->env().ca, "--sni",
        "localhost", "-h",    "127.0.0.1", "-p",           std::to_string(tlsd->port())};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunPeer(argv, {.timeout = absl::Seconds(60)});
  };
  const std::string value = "value through tls-wrap " + RandomHex(8);
  PeerResult set = cli({"SET", "greeting", value});
  ASSERT_EQ(set.exit_code, 0) << set.Describe() << redis->Output();
  EXPECT_EQ(set.out, "OK\n");
  PeerResult get = cli({"GET", "greeting"});
  ASSERT_EQ(get.exit_code, 0) << get.Describe();
  EXPECT_EQ(get.out, value + "\n");
  // Redis sees the TLS client's address (getpeername through the shim), and
  // tlsd's listening address as the local one.
  PeerResult list = cli({"CLIENT", "LIST"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_THAT(list.out, HasSubstr("addr=127.0.0.1:"));
  EXPECT_THAT(list.out, HasSubstr(absl::StrCat("laddr=127.0.0.1:", tlsd->port())));
  ASSERT_TRUE(tlsd->WaitForConnLog(3).ok()) << tlsd->Log();
  ExpectHandedOff(*tlsd, 3);
  ExpectKtlsCounters(before, 3);
}

// read_logger's lines for one connection, from "conn" to "fds".
std::vector<std::string> LoggerLines(const BackgroundProcess& p) {
  return absl::StrSplit(p.Output(), '\n', absl::SkipEmpty());
}

// One s_client session: a line, its echo, then end of input (close_notify).
void SayHelloAndClose(const TestDaemon& tlsd) {
  PeerResult r = RunPeer(
      {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", tlsd.port()), "-servername",
       "localhost", "-CAfile", tlsd.env().ca, "-verify_return_error", "-quiet", "-no_ign_eof"},
      {.stdin_data = "hello\n",
       .close_stdin_after_stdout_has = "echo: hello",
       .timeout = absl::Seconds(30)});
  EXPECT_THAT(r.out, HasSubstr("echo: hello\n")) << r.Describe();
}

class PreloadEofTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PreloadEofTest, ClientCloseNotifyIsEndOfFileForTheDaemon) {
  TLSD_IT_CHECK_KERNEL();
  SKIP_IN_SANITIZER_BUILD();
  std::unique_ptr<TestDaemon> tlsd = StartTlsd(std::to_string(getuid()));
  ASSERT_NE(tlsd, nullptr);
  const int port = PickFreePort();
  std::unique_ptr<BackgroundProcess> logger = StartWrapped(
      *tlsd, port, {WrapBin("read_logger"), "--accept", GetParam(), std::to_string(port)},
      "listening");
  ASSERT_NE(logger, nullptr);
  // Two connections, one after the other: both end with end-of-file, and
  // the daemon has as many fds open after the second as after the first.
  for (int i = 1; i <= 2; ++i) {
    SayHelloAndClose(*tlsd);
    ASSERT_TRUE(WaitFor(
        [&] {
          int n = 0;
          for (const std::string& l : LoggerLines(*logger)) n += absl::StartsWith(l, "fds ");
          return n == i;
        },
        absl::Seconds(20)))
        << logger->Output();
  }
  std::vector<std::string> lines = LoggerLines(*logger);
  std::vector<std::string> fds;
  int eofs = 0;
  for (const std::string& l : lines) {
    EXPECT_FALSE(absl::StartsWith(l, "error")) << "a read failed: " << logger->Output();
    if (l == "eof") ++eofs;
    if (absl::StartsWith(l, "fds ")) fds.push_back(l);
  }
  EXPECT_EQ(eofs, 2) << logger->Output();
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(fds[0], fds[1]) << "the daemon's fd count grew between connections";
  EXPECT_THAT(logger->Output(), HasSubstr("read 6\neof\n"));
  EXPECT_THAT(logger->Output(), HasSubstr("conn peer=127.0.0.1:"));
  ExpectHandedOff(*tlsd, 2);
}

INSTANTIATE_TEST_SUITE_P(AcceptModes, PreloadEofTest,
                         ::testing::Values("block", "select", "poll", "epoll"));

// TLS 1.3 KeyUpdates (s_client's K, then k) between echoed lines reach tlsd
// through the shim's read, never the daemon: on the host tlsd answers them
// in its relay, on 7.x the kernel rekeys (tls_stat), on 6.1, which cannot,
// tlsd ends the connection with close_notify and the daemon reads
// end-of-file. In no case does a read fail.
TEST(PreloadTest, KeyUpdatesAreAnsweredByTlsdNotSeenByTheDaemon) {
  TLSD_IT_CHECK_KERNEL();
  SKIP_IN_SANITIZER_BUILD();
  const bool can_rekey = !KernelKtls() || TlsStatSnapshot().Has("TlsRxRekeyOk");
  std::unique_ptr<TestDaemon> tlsd = StartTlsd(std::to_string(getuid()));
  ASSERT_NE(tlsd, nullptr);
  const int port = PickFreePort();
  std::unique_ptr<BackgroundProcess> logger =
      StartWrapped(*tlsd, port, {WrapBin("read_logger"), "--accept", "epoll", std::to_string(port)},
                   "listening");
  ASSERT_NE(logger, nullptr);
  TlsStatSnapshot before;
  PeerOptions opts;
  opts.stdin_data = "ping-1\n";
  opts.stdin_script = {
      {"ping-1", "K\n"}, {"KEYUPDATE", "ping-2\n"}, {"ping-2", "k\n"}, {"KEYUPDATE", "ping-3\n"}};
  opts.close_stdin_after_stdout_has = "ping-3";
  opts.timeout = absl::Seconds(60);
  PeerResult r = RunPeer(
      {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", tlsd->port()), "-servername",
       "localhost", "-CAfile", tlsd->env().ca, "-verify_return_error", "-tls1_3", "-msg"},
      opts);
  ASSERT_FALSE(r.timed_out) << r.Describe() << "\n" << tlsd->Log();
  ASSERT_TRUE(logger->WaitForOutput("fds ", absl::Seconds(20))) << logger->Output();
  const std::string out = logger->Output();
  EXPECT_THAT(out, Not(HasSubstr("error"))) << out;
  if (!can_rekey) {
    EXPECT_THAT(out, HasSubstr("read 7\neof\n"));
    EXPECT_THAT(r.out, HasSubstr("Alert [length 0002], warning close_notify")) << r.Describe();
    EXPECT_TRUE(tlsd->WaitForLog("cannot rekey")) << tlsd->Log();
    return;
  }
  EXPECT_THAT(out, HasSubstr("read 7\nread 7\nread 7\neof\n"));
  EXPECT_THAT(r.out, HasSubstr("echo: ping-3")) << r.Describe();
  if (KernelKtls()) {
    EXPECT_EQ(before.Delta("TlsRxRekeyOk"), 2);
    EXPECT_EQ(before.Delta("TlsTxRekeyOk"), 1);
  }
}

// The control for the test above: the same daemon reading with a system call
// the shim does not see meets the kTLS socket's EIO at close_notify. So it is
// the shim that turns the alert into end-of-file.
TEST(PreloadTest, AReadTheShimDoesNotSeeFailsWithEioOnKtls) {
  TLSD_IT_REQUIRE_KTLS_OR_SKIP();
  SKIP_IN_SANITIZER_BUILD();
  std::unique_ptr<TestDaemon> tlsd = StartTlsd(std::to_string(getuid()));
  ASSERT_NE(tlsd, nullptr);
  const int port = PickFreePort();
  std::unique_ptr<BackgroundProcess> logger = StartWrapped(
      *tlsd, port, {WrapBin("read_logger"), "--raw-read", std::to_string(port)}, "listening");
  ASSERT_NE(logger, nullptr);
  SayHelloAndClose(*tlsd);
  ASSERT_TRUE(logger->WaitForOutput("fds ", absl::Seconds(20))) << logger->Output();
  EXPECT_THAT(logger->Output(), HasSubstr("read 6\nerror EIO\n"));
}

// The wrapped daemon runs as its own user (tls-wrap --user), cannot open
// tlsd's key file, cannot read a kTLS socket's keys back (seccomp), and its
// memory holds no byte of the private key, while tlsd's key holder's does
// (which shows the scan would find it).
TEST(PreloadTest, WrappedDaemonCannotReachKeyMaterial) {
  TLSD_IT_CHECK_KERNEL();
  SKIP_IN_SANITIZER_BUILD();
  if (geteuid() != 0) GTEST_SKIP() << "skipped: needs root to start the daemon as another user";
  passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr) << "no user 'nobody'";
  std::unique_ptr<TestDaemon> tlsd = StartTlsd(absl::StrCat(nobody->pw_uid));
  ASSERT_NE(tlsd, nullptr);
  const int port = PickFreePort();
  std::unique_ptr<BackgroundProcess> logger = StartWrapped(
      *tlsd, port, {WrapBin("read_logger"), "--probe-key", tlsd->env().key, std::to_string(port)},
      "listening", {"--user", "nobody"});
  ASSERT_NE(logger, nullptr);
  SayHelloAndClose(*tlsd);
  ASSERT_TRUE(logger->WaitForOutput("fds ", absl::Seconds(20))) << logger->Output();
  const std::string out = logger->Output();
  EXPECT_THAT(out, HasSubstr("dropped root: now user 'nobody'"));
  EXPECT_THAT(out, HasSubstr("open-key EACCES"));
  // On kTLS the kernel would return the traffic key; the shim's filter
  // refuses. (On a relay socket there is no key either way; EPERM shows the
  // filter is in place.)
  EXPECT_THAT(out, HasSubstr("getsockopt-tls EPERM"));
  EXPECT_THAT(out, HasSubstr("eof"));

  absl::StatusOr<std::vector<std::string>> needles = PrivateKeyNeedles(tlsd->env().key);
  ASSERT_TRUE(needles.ok()) << needles.status();
  absl::StatusOr<MemScanResult> in_daemon = ScanProcessMemory(logger->pid(), *needles);
  ASSERT_TRUE(in_daemon.ok()) << in_daemon.status();
  ASSERT_GT(tlsd->KeyHolderPid(), 0) << tlsd->Log();
  absl::StatusOr<MemScanResult> in_tlsd = ScanProcessMemory(tlsd->KeyHolderPid(), *needles);
  ASSERT_TRUE(in_tlsd.ok()) << in_tlsd.status();
  printf(
      "[ memscan ] daemon: %zu bytes in %zu mappings; tlsd's key holder: %zu bytes in %zu "
      "mappings\n",
      in_daemon->bytes_scanned, in_daemon->mappings_scanned, in_tlsd->bytes_scanned,
      in_tlsd->mappings_scanned);
  EXPECT_GT(in_daemon->bytes_scanned, 1u << 20);
  EXPECT_TRUE(in_tlsd->found[0] || in_tlsd->found[1])
      << "the private key is not found in tlsd's key holder either: the scan proves nothing";
  EXPECT_FALSE(in_daemon->found[0]) << "the private key (big-endian) is in the daemon's memory";
  EXPECT_FALSE(in_daemon->found[1]) << "the private key (little-endian) is in the daemon's memory";
}

TEST(PreloadTest, ARefusedSubscriptionFailsTheDaemonsListenWithTheReason) {
  SKIP_IN_SANITIZER_BUILD();
  // tlsd allows another uid only: the daemon's listen() fails, and both the
  // shim's reason and the daemon's own error are in its output.
  std::unique_ptr<TestDaemon> tlsd = StartTlsd("4242");
  ASSERT_NE(tlsd, nullptr);
  const int port = PickFreePort();
  const std::string out = absl::StrCat(tlsd->env().dir, "/refused.log");
  absl::StatusOr<std::unique_ptr<BackgroundProcess>> p = BackgroundProcess::Start(
      {WrapBin("tls-wrap"), "preload", "--control", tlsd->control(), "--backend", "wrapped",
       "--port", std::to_string(port), "--", WrapBin("read_logger"), std::to_string(port)},
      out);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->WaitForOutput("bind/listen", absl::Seconds(20))) << (*p)->Output();
  EXPECT_THAT(
      (*p)->Output(),
      HasSubstr("tls-wrap preload: cannot subscribe to backend 'wrapped' at " + tlsd->control()));
  EXPECT_THAT((*p)->Output(), Not(HasSubstr("listening")));
}

// Exec mode, here too so that it runs on kTLS in the VM lane (the shell test
// exec_mode_test.sh covers more on the host): a /bin/sh script answers
// s_client, sees the connection's metadata, and its read loop ends with
// end-of-file when the client sends close_notify.
TEST(ExecModeTest, ShellScriptSeesTheMetadataAndEndOfFile) {
  TLSD_IT_CHECK_KERNEL();
  std::unique_ptr<TestDaemon> tlsd = StartTlsd(std::to_string(getuid()));
  ASSERT_NE(tlsd, nullptr);
  const std::string reads = tlsd->env().dir + "/reads.log";
  const std::string script =
      "env | grep -E '^(TLS_|REMOTE_|LOCAL_)' | sort; "
      "while IFS= read -r l; do echo \"echo: $l\"; echo line >>" +
      reads +
      "; done; "
      "echo end-of-file >>" +
      reads;
  const std::string out = tlsd->env().dir + "/exec.log";
  absl::StatusOr<std::unique_ptr<BackgroundProcess>> wrap = BackgroundProcess::Start(
      {WrapBin("tls-wrap"), "exec", "--control", tlsd->control(), "--backend", "wrapped",
       "--max-children", "2", "--", "/bin/sh", "-c", script},
      out);
  ASSERT_TRUE(wrap.ok()) << wrap.status();
  ASSERT_TRUE((*wrap)->WaitForOutput("serving backend", absl::Seconds(20))) << (*wrap)->Output();
  PeerResult r = RunPeer(
      {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", tlsd->port()), "-servername",
       "localhost", "-CAfile", tlsd->env().ca, "-verify_return_error", "-quiet", "-no_ign_eof"},
      {.stdin_data = "hello\n",
       .close_stdin_after_stdout_has = "echo: hello",
       .timeout = absl::Seconds(30)});
  ASSERT_FALSE(r.timed_out) << r.Describe();
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  auto has = [&](const std::string& l) {
    return std::find(lines.begin(), lines.end(), l) != lines.end();
  };
  EXPECT_TRUE(has("TLS_SERVICE=legacy")) << r.out;
  EXPECT_TRUE(has("TLS_SNI=localhost")) << r.out;
  EXPECT_TRUE(has("TLS_VERSION=TLSv1.3")) << r.out;
  EXPECT_TRUE(has(absl::StrCat("TLS_KTLS_TX=", ExpectedPathName()))) << r.out;
  EXPECT_TRUE(has(absl::StrCat("TLS_KTLS_RX=", ExpectedPathName()))) << r.out;
  EXPECT_TRUE(has("REMOTE_ADDR=127.0.0.1")) << r.out;
  EXPECT_TRUE(has(absl::StrCat("LOCAL_PORT=", tlsd->port()))) << r.out;
  EXPECT_TRUE(has("TLS_RESUMED=0")) << r.out;
  EXPECT_TRUE(has("echo: hello")) << r.out;
  EXPECT_TRUE(WaitFor([&] { return ReadFile(reads).value_or("") == "line\nend-of-file\n"; },
                      absl::Seconds(10)))
      << ReadFile(reads).value_or("(no log)");
  ExpectHandedOff(*tlsd, 1);
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
