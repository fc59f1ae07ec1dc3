// tlsd-demo-backend as a black box: the test starts the binary and plays tlsd
// (push link or pull control socket) and the TLS client (the relay end of a
// socketpair).

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/base/unique_fd.h"
#include "common/ipc/seqpacket.h"
#include "common/wire/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/libtlsfd/test_util.h"

extern char** environ;

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using tlsd::UniqueFd;
using tlsfd::testutil::AcceptPeer;
using tlsfd::testutil::ReadAll;
using tlsfd::testutil::SampleInfo;
using tlsfd::testutil::SendConnection;
using tlsfd::testutil::SocketPair;
using tlsfd::testutil::TempDir;

std::string DemoPath() {
  if (const char* dir = getenv("TLSD_TEST_BIN_DIR"); dir != nullptr && *dir != '\0') {
    std::string p = std::string(dir) + "/tlsd-demo-backend";
    if (access(p.c_str(), X_OK) == 0) {
      return p;
    }
  }
  return TLSD_DEMO_BACKEND;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitFor(const std::function<bool()>& cond, int ms = 5000) {
  for (int waited = 0; waited < ms; waited += 10) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// Demo runs tlsd-demo-backend with stderr captured in a file.
class Demo {
 public:
  Demo(const TempDir& dir, std::vector<std::string> args) : stderr_path_(dir.File("stderr")) {
    std::string bin = DemoPath();
    if (access(bin.c_str(), X_OK) != 0) {
      return;
    }
    std::vector<char*> argv;
    argv.push_back(bin.data());
    for (std::string& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Demo() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  std::string Stderr() const { return ReadFile(stderr_path_); }
  bool WaitReady() {
    return WaitFor([this] { return Stderr().find("ready:") != std::string::npos; });
  }
  // Wait returns the exit status, or -1 if it does not exit within 5 s.
  int Wait() {
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  std::string stderr_path_;
  pid_t pid_ = -1;
};

#define REQUIRE_DEMO()                                                                   \
  do {                                                                                   \
    if (access(DemoPath().c_str(), X_OK) != 0) {                                         \
      GTEST_SKIP() << "skipped: " << DemoPath() << " not present (not copied into VM?)"; \
    }                                                                                    \
  } while (0)

UniqueFd LinkTo(const std::string& path) {
  absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path, false);
  EXPECT_TRUE(link.ok()) << link.status();
  return link.ok() ? *std::move(link) : UniqueFd();
}

TEST(DemoBackendTest, HttpReplyListsTheMetadata) {
  REQUIRE_DEMO();
  TempDir dir;
  std::string sock = dir.File("demo.sock");
  Demo demo(dir, {"--listen", sock, "--mode", "0600"});
  ASSERT_TRUE(demo.started());
  ASSERT_TRUE(demo.WaitReady()) << demo.Stderr();

  UniqueFd link = LinkTo(sock);
  auto [client, theirs] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(4242), theirs.get());
  theirs.Reset();
  const std::string req = "GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n";
  ASSERT_EQ(write(client.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string resp = ReadAll(client.get());

  EXPECT_THAT(resp, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(resp, HasSubstr("\r\nContent-Type: text/plain\r\n"));
  EXPECT_THAT(resp, HasSubstr("\r\nConnection: close\r\n"));
  size_t body_at = resp.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  std::string body = resp.substr(body_at + 4);
  EXPECT_THAT(resp, HasSubstr("Content-Length: " + std::to_string(body.size()) + "\r\n"));
  for (const char* line : {
           "connection_id: 4242\n",
           "service: https-main\n",
           "backend: web\n",
           "sni: www.example.test\n",
           "alpn: http/1.1\n",
           "tls_version: TLSv1.3\n",
           "cipher: TLS_AES_256_GCM_SHA384\n",
           "tx_path: relay\n",
           "rx_path: relay\n",
           "path_reason: kernel has no tls ULP\n",
           "peer: [2001:db8::17]:50123\n",
           "local: 192.0.2.10:443\n",
           "client_cert_subject: CN=alice,O=Example\n",
           "client_cert_sha256: a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n",
           "resumed: yes\n",
           "handshake_us: 1234\n",
       }) {
    EXPECT_THAT(body, HasSubstr(line));
  }
}

TEST(DemoBackendTest, NoClientCertLinesWithoutOne) {
  REQUIRE_DEMO();
  TempDir dir;
  std::string sock = dir.File("demo.sock");
  Demo demo(dir, {"--listen", sock});
  ASSERT_TRUE(demo.WaitReady()) << demo.Stderr();
  UniqueFd link = LinkTo(sock);
  auto [client, theirs] = SocketPair(SOCK_STREAM);
  tlsd::ConnectionInfo info = SampleInfo(1);
  info.has_client_cert = false;
  info.client_cert_subject.clear();
  info.client_cert_sha256 = {};
  info.tls_version = 0x0303;
  SendConnection(link.get(), info, theirs.get());
  theirs.Reset();
  const std::string req = "GET /x HTTP/1.0\r\n\r\n";
  ASSERT_EQ(write(client.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string resp = ReadAll(client.get());
  EXPECT_THAT(resp, StartsWith("HTTP/1.1 200 OK\r\n")) << demo.Stderr();
  EXPECT_THAT(resp, HasSubstr("tls_version: TLSv1.2\n"));
  EXPECT_THAT(resp, ::testing::Not(HasSubstr("client_cert")));
}

TEST(DemoBackendTest, BadRequestsGetErrors) {
  REQUIRE_DEMO();
  TempDir dir;
  std::string sock = dir.File("demo.sock");
  Demo demo(dir, {"--listen", sock});
  ASSERT_TRUE(demo.WaitReady()) << demo.Stderr();
  UniqueFd link = LinkTo(sock);

  {  // not HTTP/1.x
    auto [client, theirs] = SocketPair(SOCK_STREAM);
    SendConnection(link.get(), SampleInfo(1), theirs.get());
    theirs.Reset();
    const std::string req = "HELLO THERE\r\n\r\n";
    ASSERT_EQ(write(client.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
    EXPECT_THAT(ReadAll(client.get()), StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  }
  {  // header over 16 KiB
    auto [client, theirs] = SocketPair(SOCK_STREAM);
    SendConnection(link.get(), SampleInfo(2), theirs.get());
    theirs.Reset();
    std::string req = "GET / HTTP/1.1\r\nX-Big: " + std::string(17000, 'a');
    std::thread writer(
        [fd = client.get(), req] { (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL); });
    EXPECT_THAT(ReadAll(client.get()), StartsWith("HTTP/1.1 431 "));
    writer.join();
  }
  {  // EOF before the header ends: closed without an answer
    auto [client, theirs] = SocketPair(SOCK_STREAM);
    SendConnection(link.get(), SampleInfo(3), theirs.get());
    theirs.Reset();
    ASSERT_EQ(write(client.get(), "GET / HT", 8), 8);
    shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(ReadAll(client.get()), "");
  }
}

TEST(DemoBackendTest, EchoModeEchoesAndLogsMetadataLine) {
  REQUIRE_DEMO();
  TempDir dir;
  std::string sock = dir.File("demo.sock");
  Demo demo(dir, {"--listen", sock, "--echo"});
  ASSERT_TRUE(demo.WaitReady()) << demo.Stderr();
  UniqueFd link = LinkTo(sock);
  auto [client, theirs] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(77), theirs.get());
  theirs.Reset();
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>('a' + i % 26);
  }
  std::thread writer([fd = client.get(), &data] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = write(fd, data.data() + off, data.size() - off);
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
  });
  std::string echoed = ReadAll(client.get());
  writer.join();
  EXPECT_EQ(echoed.size(), data.size());
  EXPECT_TRUE(echoed == data);
  ASSERT_TRUE(
      WaitFor([&] { return demo.Stderr().find("connection_id: 77") != std::string::npos; }));
  std::string err = demo.Stderr();
  size_t at = err.find("connection_id: 77");
  std::string line = err.substr(at, err.find('\n', at) - at);
  EXPECT_THAT(line, HasSubstr("service: https-main; backend: web; sni: www.example.test"));
  EXPECT_THAT(line, HasSubstr("tx_path: relay; rx_path: relay"));
  EXPECT_THAT(line, HasSubstr("handshake_us: 1234"));
}

TEST(DemoBackendTest, PullModeSubscribesAndServes) {
  REQUIRE_DEMO();
  TempDir dir;
  std::string control = dir.File("control");
  absl::StatusOr<UniqueFd> l = tlsd::ListenSeqpacket(control, 0600);
  ASSERT_TRUE(l.ok());
  Demo demo(dir, {"--control", control, "--backend", "web", "--echo"});
  ASSERT_TRUE(demo.started());
  UniqueFd peer = AcceptPeer(l->get());
  absl::StatusOr<tlsd::Frame> hello = tlsd::RecvFrame(peer.get());
  ASSERT_TRUE(hello.ok()) << hello.status();
  ASSERT_EQ(hello->header.type, tlsd::MsgType::kHello);
  ASSERT_TRUE(tlsd::SendFrame(peer.get(), tlsd::MsgType::kHelloOk, 1, {}).ok());
  ASSERT_TRUE(demo.WaitReady()) << demo.Stderr();

  auto [client, theirs] = SocketPair(SOCK_STREAM);
  SendConnection(peer.get(), SampleInfo(5), theirs.get());
  theirs.Reset();
  ASSERT_EQ(write(client.get(), "ping", 4), 4);
  shutdown(client.get(), SHUT_WR);
  EXPECT_EQ(ReadAll(client.get()), "ping");

  // tlsd going away is a runtime error: exit 1 with a message.
  peer.Reset();
  EXPECT_EQ(demo.Wait(), 1);
  EXPECT_THAT(demo.Stderr(), HasSubstr("tlsd closed the subscription"));
}

TEST(DemoBackendTest, RefusedSubscriptionExitsOneWithTlsdsReason) {
  REQUIRE_DEMO();
  TempDir dir;
  std::string control = dir.File("control");
  absl::StatusOr<UniqueFd> l = tlsd::ListenSeqpacket(control, 0600);
  ASSERT_TRUE(l.ok());
  Demo demo(dir, {"--control", control, "--backend", "web"});
  UniqueFd peer = AcceptPeer(l->get());
  ASSERT_TRUE(tlsd::RecvFrame(peer.get()).ok());
  tlsd::ErrorMsg err{EACCES, "uid 1000 may not serve backend 'web'"};
  ASSERT_TRUE(tlsd::SendFrame(peer.get(), tlsd::MsgType::kError, 1, err.Encode()).ok());
  EXPECT_EQ(demo.Wait(), 1);
  EXPECT_THAT(demo.Stderr(), HasSubstr("uid 1000 may not serve backend 'web'"));
}

struct UsageCase {
  std::vector<std::string> args;
  int want_exit;
  const char* want_stderr;
};

TEST(DemoBackendTest, UsageAndStartupErrors) {
  REQUIRE_DEMO();
  TempDir dir;
  const UsageCase cases[] = {
      {{}, 64, "exactly one of"},
      {{"--bogus"}, 64, "unknown argument '--bogus'"},
      {{"--listen"}, 64, "--listen needs a value"},
      {{"--control", "/x"}, 64, "--control and --backend go together"},
      {{"--listen", "/x", "--systemd", "y"}, 64, "exactly one of"},
      {{"--listen", "/x", "--mode", "999"}, 64, "octal"},
      {{"--systemd", "y", "--mode", "0600"}, 64, "--mode goes with --listen"},
      {{"--listen", "/x", "--listen", "/y"}, 64, "given twice"},
      {{"--control", dir.File("missing"), "--backend", "web"}, 1, "subscribe:"},
      {{"--control", dir.File("missing"), "--backend", "bad name"}, 1, "backend name"},
      {{"--listen", dir.File("no/such/dir/s")}, 1, "listen:"},
      {{"--systemd", "tlsd"}, 1, "LISTEN_FDS"},
  };
  for (const UsageCase& c : cases) {
    Demo demo(dir, c.args);
    ASSERT_TRUE(demo.started());
    EXPECT_EQ(demo.Wait(), c.want_exit) << ::testing::PrintToString(c.args);
    EXPECT_THAT(demo.Stderr(), HasSubstr(c.want_stderr)) << ::testing::PrintToString(c.args);
  }
}

}  // namespace
