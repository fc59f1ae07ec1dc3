// The key holder boundary, end to end on the real tlsd: after real
// handshakes the private key's secret is in the holder's memory and nowhere
// in the handshake engine's (all readable mappings, through /proc/PID/mem),
// the holder has no network socket, and a process of tlsd's own user cannot
// read the holder's memory or the key file.

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"
#include "tests/integration/support/memscan.h"

namespace tlsd {
namespace integration {
namespace {

// Inodes of every TCP and UDP socket on the system.
std::set<std::string> NetworkSocketInodes() {
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"}) {
    absl::StatusOr<std::string> text = ReadFile(table);
    if (!text.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (f.size() > 9 && f[0] != "sl") inodes.insert(std::string(f[9]));
    }
  }
  return inodes;
}

void Handshakes(const TestDaemon& d, int n) {
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(d.port(), {});
    ASSERT_TRUE(c.ok()) << c.status() << "\n" << d.Log();
    ASSERT_TRUE((*c)->Write("ping").ok());
    absl::StatusOr<std::string> echo = (*c)->ReadExactly(4);
    ASSERT_TRUE(echo.ok()) << echo.status();
  }
}

// In a sanitizer build the processes map terabytes of shadow memory, which a
// whole-memory scan would read page by page.
#ifdef TLSD_SANITIZER_BUILD
#define SKIP_MEMSCAN_IN_SANITIZER_BUILD() \
  GTEST_SKIP() << "skipped: sanitizer shadow memory makes a whole-memory scan impractical"
#else
#define SKIP_MEMSCAN_IN_SANITIZER_BUILD() (void)0
#endif

TEST(KeyHolderTest, PrivateKeyIsInTheHolderAndNotInTheEngine) {
  SKIP_MEMSCAN_IN_SANITIZER_BUILD();
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe((*d)->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  Handshakes(**d, 3);

  const pid_t holder = (*d)->KeyHolderPid();
  ASSERT_GT(holder, 0) << (*d)->Log();
  EXPECT_EQ(ReadFile(absl::StrCat("/proc/", holder, "/comm")).value_or(""), "tlsd-keyholder\n");
  absl::StatusOr<std::vector<std::string>> needles = PrivateKeyNeedles((*d)->env().key);
  ASSERT_TRUE(needles.ok()) << needles.status();
  absl::StatusOr<MemScanResult> engine = ScanProcessMemory((*d)->pid(), *needles);
  ASSERT_TRUE(engine.ok()) << engine.status();
  absl::StatusOr<MemScanResult> keys = ScanProcessMemory(holder, *needles);
  ASSERT_TRUE(keys.ok()) << keys.status();
  printf(
      "[ memscan ] engine pid %d: %zu bytes in %zu mappings; key holder pid %d: %zu bytes in "
      "%zu mappings\n",
      (*d)->pid(), engine->bytes_scanned, engine->mappings_scanned, holder, keys->bytes_scanned,
      keys->mappings_scanned);
  EXPECT_GT(engine->bytes_scanned, 1u << 20);
  EXPECT_TRUE(keys->found[0] || keys->found[1])
      << "the key holder's memory has no copy of the key: the scan would prove nothing";
  EXPECT_FALSE(engine->found[0]) << "the private key (big-endian) is in the engine's memory";
  EXPECT_FALSE(engine->found[1]) << "the private key (little-endian) is in the engine's memory";

  // Both run under their seccomp profiles (policy/seccomp/), in filter mode.
#ifndef TLSD_SANITIZER_BUILD
  for (pid_t pid : {(*d)->pid(), holder}) {
    absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
    ASSERT_TRUE(status.ok());
    EXPECT_THAT(*status, ::testing::HasSubstr("Seccomp:\t2\n")) << "pid " << pid;
    EXPECT_THAT(*status, ::testing::HasSubstr("NoNewPrivs:\t1\n")) << "pid " << pid;
  }
#endif

  // The holder touches no network: none of its fds is a TCP or UDP socket.
  const std::set<std::string> net = NetworkSocketInodes();
  ASSERT_FALSE(net.empty()) << "tlsd's own listener should be in /proc/net/tcp";
  int sockets = 0;
  for (int fd = 0; fd < 256; ++fd) {
    char link[64] = {};
    if (readlink(absl::StrCat("/proc/", holder, "/fd/", fd).c_str(), link, sizeof link - 1) < 0) {
      continue;
    }
    absl::string_view l(link);
    if (!absl::ConsumePrefix(&l, "socket:[") || !absl::ConsumeSuffix(&l, "]")) continue;
    ++sockets;
    EXPECT_EQ(net.count(std::string(l)), 0u) << "the key holder holds a network socket, fd " << fd;
  }
  EXPECT_GT(sockets, 0) << "the holder's signing channels";
}

// Session-ticket keys too: after tickets were issued and opened (TLS 1.2
// and 1.3 resumptions) with a shared ticket_key_file, its master keys are
// in the holder's memory and nowhere in the engine's, which only ever got
// one ticket's derived keys at a time.
TEST(KeyHolderTest, TicketKeysAreInTheHolderAndNotInTheEngine) {
  SKIP_MEMSCAN_IN_SANITIZER_BUILD();
  TempDir dir;
  const std::string key_file = dir.File("ticket.keys");
  const std::string bytes = RandomBytes(160);  // two entries: name(16) | master(64)
  ASSERT_TRUE(WriteFile(key_file, bytes, 0600).ok());
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [&](const DaemonEnv& env) {
        return SimpleConfig(env, absl::StrCat("ticket_key_file = \"", key_file, "\"\n"));
      }});
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe((*d)->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    ClientOptions opts;
    opts.version = version;
    SSL_SESSION* session = nullptr;
    for (int i = 0; i < 2; ++i) {
      opts.session = session;
      absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect((*d)->port(), opts);
      ASSERT_TRUE(c.ok()) << c.status() << "\n" << (*d)->Log();
      ASSERT_TRUE((*c)->Write("ping").ok());
      ASSERT_TRUE((*c)->ReadExactly(4).ok());  // and with it, TLS 1.3's tickets
      if (i == 1) {
        EXPECT_EQ(SSL_session_reused((*c)->ssl()), 1) << "version " << version;
        SSL_SESSION_free(session);
      } else {
        session = (*c)->Get1Session();
      }
      (*c)->Close();
    }
  }

  // Needles: both halves of both masters.
  std::vector<std::string> needles;
  for (size_t entry = 0; entry < 2; ++entry) {
    needles.push_back(bytes.substr(entry * 80 + 16, 32));
    needles.push_back(bytes.substr(entry * 80 + 48, 32));
  }
  const pid_t holder = (*d)->KeyHolderPid();
  ASSERT_GT(holder, 0);
  absl::StatusOr<MemScanResult> engine = ScanProcessMemory((*d)->pid(), needles);
  ASSERT_TRUE(engine.ok()) << engine.status();
  absl::StatusOr<MemScanResult> keys = ScanProcessMemory(holder, needles);
  ASSERT_TRUE(keys.ok()) << keys.status();
  printf("[ memscan ] ticket masters: engine %zu bytes scanned, key holder %zu bytes scanned\n",
         engine->bytes_scanned, keys->bytes_scanned);
  for (size_t i = 0; i < needles.size(); ++i) {
    EXPECT_TRUE(keys->found[i]) << "the key holder's memory has no copy of master half " << i
                                << ": the scan would prove nothing";
    EXPECT_FALSE(engine->found[i]) << "ticket master half " << i << " is in the engine's memory";
  }
}

// Without its key holder tlsd cannot complete a handshake: if the holder
// dies, tlsd says so and exits with a failure status (systemd's
// Restart=on-failure then starts a fresh pair) instead of stalling.
TEST(KeyHolderTest, TlsdStopsWhenItsKeyHolderDies) {
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(d.ok()) << d.status();
  const pid_t holder = (*d)->KeyHolderPid();
  ASSERT_GT(holder, 0) << (*d)->Log();
  ASSERT_EQ(kill(holder, SIGKILL), 0);
  EXPECT_TRUE(WaitFor([&] { return !(*d)->Alive(); }, absl::Seconds(5))) << (*d)->Log();
  EXPECT_EQ((*d)->Stop(), 1) << (*d)->Log();
  EXPECT_THAT((*d)->Log(),
              ::testing::HasSubstr(absl::StrCat("key holder (pid ", holder,
                                                ") was killed by signal 9: no handshake "
                                                "can complete; stopping")));
}

// A key given as an OpenSSL store URI is loaded by the key holder through
// OSSL_STORE (here the built-in file: loader; a PKCS#11 provider works the
// same way once openssl.cnf loads it), and still only the holder has it.
TEST(KeyHolderTest, KeyFromAnOpensslStoreUri) {
  SKIP_MEMSCAN_IN_SANITIZER_BUILD();
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return absl::StrReplaceAll(SimpleConfig(env), {{absl::StrCat("key = \"", env.key),
                                                        absl::StrCat("key = \"file:", env.key)}});
      }});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_THAT(ReadFile((*d)->config_path()).value_or(""), ::testing::HasSubstr("key = \"file:/"));
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe((*d)->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  Handshakes(**d, 2);
  absl::StatusOr<std::vector<std::string>> needles = PrivateKeyNeedles((*d)->env().key);
  ASSERT_TRUE(needles.ok());
  absl::StatusOr<MemScanResult> engine = ScanProcessMemory((*d)->pid(), *needles);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_FALSE(engine->found[0] || engine->found[1]);

  // A URI the store cannot open is a configuration error naming it.
  absl::StatusOr<std::unique_ptr<TestDaemon>> bad =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return absl::StrReplaceAll(SimpleConfig(env), {{absl::StrCat("key = \"", env.key),
                                                        "key = \"file:/nonexistent/web.key"}});
      }});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("exited with status 78"));
  EXPECT_THAT(bad.status().message(),
              ::testing::HasSubstr("private key file:/nonexistent/web.key"));
}

// Started as root with global.user = nobody: both processes end up as
// nobody, and another process of that user (what a compromised engine
// could run) can read neither the holder's memory nor the key file.
TEST(KeyHolderTest, TlsdsOwnUserCannotReachTheHoldersKeys) {
  if (geteuid() != 0) GTEST_SKIP() << "skipped: needs root to start tlsd as root";
  passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return absl::StrReplaceAll(SimpleConfig(env),
                                   {{"[global]\n", "[global]\nuser = \"nobody\"\n"}});
      }});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE((*d)->WaitForLog("dropped root: now user 'nobody'")) << (*d)->Log();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe((*d)->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  Handshakes(**d, 1);
  const pid_t holder = (*d)->KeyHolderPid();
  ASSERT_GT(holder, 0) << (*d)->Log();
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", holder, "/status"));
  ASSERT_TRUE(status.ok());
  EXPECT_THAT(*status, ::testing::HasSubstr("Uid:\t65534\t65534\t65534\t65534"));

  const std::string mem = absl::StrCat("/proc/", holder, "/mem");
  const std::string key = (*d)->env().key;
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Exit code: bit 0 set if the holder's memory opened, bit 1 if the key.
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      _exit(100);
    }
    int code = 0;
    int fd = open(mem.c_str(), O_RDONLY);
    if (fd >= 0 || errno != EACCES) code |= 1;
    fd = open(key.c_str(), O_RDONLY);
    if (fd >= 0 || errno != EACCES) code |= 2;
    _exit(code);
  }
  int ws = 0;
  ASSERT_EQ(waitpid(child, &ws, 0), child);
  ASSERT_TRUE(WIFEXITED(ws));
  EXPECT_NE(WEXITSTATUS(ws), 100) << "could not become nobody";
  EXPECT_EQ(WEXITSTATUS(ws) & 1, 0) << "a process of tlsd's user opened " << mem;
  EXPECT_EQ(WEXITSTATUS(ws) & 2, 0) << "a process of tlsd's user opened the key file " << key;
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
