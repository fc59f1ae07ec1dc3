// Restart without refusals: the test plays systemd. It owns the listening
// socket and a memfd with the sealing key (what tlsd.socket and the fd store
// keep across a restart) and passes both to each tlsd it starts
// (LISTEN_FDS, LISTEN_FDNAMES=web:sealing-key). While a client makes
// handshakes back to back, tlsd is stopped (SIGTERM: it stops accepting and
// finishes the handshakes it has) and a new one started, three times. No
// connection may be refused or fail, and each tlsd says it took the sealing
// key it was given.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

class RestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedCerts().WriteTo(dir_.path()).ok());
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(listener_, 512), 0);
    ASSERT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    key_ = memfd_create("test-sealing-key", MFD_CLOEXEC);
    const std::string key = RandomBytes(32);
    ASSERT_EQ(write(key_, key.data(), key.size()), 32);
    absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
        InProcessBackend::Listen(dir_.path() + "/backend.sock", EchoHandler());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
    const std::string& d = dir_.path();
    ASSERT_TRUE(WriteFile(d + "/tlsd.toml",
                          absl::StrCat("[global]\ncontrol_socket = \"", d,
                                       "/control.sock\"\nstate_dir = \"", d,
                                       "\"\n\n[[service]]\nname = \"web\"\nsystemd_socket = "
                                       "\"web\"\nbackend = \"app\"\n\n[[service.certificate]]\n"
                                       "cert = \"",
                                       d, "/server-ecdsa.pem\"\nkey = \"", d,
                                       "/server-ecdsa.key\"\n\n[[backend]]\nname = \"app\"\n"
                                       "mode = \"push\"\nsocket = \"",
                                       d, "/backend.sock\"\nallow_uids = [", getuid(), "]\n"))
                    .ok());
  }
  void TearDown() override {
    if (pid_ > 0) Stop();
    close(listener_);
    close(key_);
  }

  // Start runs tlsd with the listening socket as fd 3 ("web") and the key
  // as fd 4 ("sealing-key"), as systemd would.
  void Start(int n) {
    log_ = absl::StrCat(dir_.path(), "/tlsd-", n, ".log");
    const std::string tlsd = BinaryPath("tlsd");
    const std::string config = dir_.path() + "/tlsd.toml";
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      int out = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 2);
      // dup2 onto 3 and 4 clears close-on-exec on the copies.
      int l = dup(listener_), k = dup(key_);
      dup2(l, 3);
      dup2(k, 4);
      const std::string pid = std::to_string(getpid());
      setenv("LISTEN_FDS", "2", 1);
      setenv("LISTEN_FDNAMES", "web:sealing-key", 1);
      setenv("LISTEN_PID", pid.c_str(), 1);
      execl(tlsd.c_str(), tlsd.c_str(), "--config", config.c_str(), nullptr);
      _exit(127);
    }
    ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Log(), "tlsd ready"); }, absl::Seconds(20)))
        << Log();
  }

  // Stop sends SIGTERM and waits; returns the exit status.
  int Stop() {
    kill(pid_, SIGTERM);
    int ws = 0;
    waitpid(pid_, &ws, 0);
    pid_ = -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  }

  std::string Log() const { return ReadFile(log_).value_or(""); }

  TempDir dir_;
  int listener_ = -1;
  int key_ = -1;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string log_;
  std::unique_ptr<InProcessBackend> backend_;
};

TEST_F(RestartTest, ThreeRestartsUnderLoadRefuseNoConnection) {
  Start(0);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0}, failed{0};
  std::mutex mu;
  std::string first_error;
  std::thread client([&] {
    while (!stop.load()) {
      absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect(port_, {});
      absl::Status s = c.ok() ? (*c)->Write("r") : c.status();
      absl::StatusOr<std::string> echo =
          s.ok() ? (*c)->ReadExactly(1) : absl::StatusOr<std::string>(s);
      if (echo.ok()) {
        ++ok;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (absl::StrContains(echo.status().message(), "refused")) {
        ++refused;
      } else {
        ++failed;
      }
      if (first_error.empty()) first_error = echo.status().ToString();
    }
  });
  std::vector<std::string> logs;
  for (int i = 1; i <= 3; ++i) {
    const int before = ok.load();
    WaitFor([&] { return ok.load() >= before + 5; }, absl::Seconds(20));
    EXPECT_EQ(Stop(), 0);
    logs.push_back(Log());
    Start(i);
  }
  const int before = ok.load();
  WaitFor([&] { return ok.load() >= before + 5; }, absl::Seconds(20));
  stop = true;
  client.join();
  logs.push_back(Log());
  printf("[ restart ] 3 restarts: %d handshakes ok, %d refused, %d failed\n", ok.load(),
         refused.load(), failed.load());
  EXPECT_EQ(refused.load(), 0) << first_error;
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_GE(ok.load(), 20);
  for (const std::string& log : logs) {
    EXPECT_THAT(log, HasSubstr("sealing key: the one from before the restart (fd 'sealing-key')"));
    EXPECT_THAT(log, HasSubstr("listening on systemd:web"));
  }
  for (size_t i = 0; i + 1 < logs.size(); ++i) {
    EXPECT_THAT(logs[i], HasSubstr("drained after")) << "instance " << i << " did not drain";
  }
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
