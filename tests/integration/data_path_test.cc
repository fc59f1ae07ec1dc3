// The data path after the handshake:
//  - a request the client writes right behind its Finished (glued to it in
//    one TCP send) must reach the backend intact: tlsd must not swallow it
//    in a user-space read-ahead before installing kTLS RX, nor lose it in
//    the relay;
//  - a large file sent with sendfile() by the backend on the handed-off kTLS
//    socket reaches the client intact (kTLS only: the VM lane).

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

struct EarlyCase {
  int version;
  bool resumed;
};

std::string EarlyCaseName(const ::testing::TestParamInfo<EarlyCase>& info) {
  return absl::StrCat(info.param.version == TLS1_3_VERSION ? "TLSv13" : "TLSv12",
                      info.param.resumed ? "_Resumed" : "_FullHandshake");
}

class EarlyRequestTest : public ::testing::TestWithParam<EarlyCase> {};

// A request as a browser would send it, with a body large enough to span
// several TLS records.
std::string MakeRequest() {
  std::string body;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&body, RandomHex(511), "\n");
  return absl::StrCat("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: ", body.size(),
                      "\r\n\r\n", body);
}

TEST_P(EarlyRequestTest, RequestGluedToClientFinishedReachesBackendIntact) {
  TLSD_IT_CHECK_KERNEL();
  const EarlyCase& c = GetParam();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();

  TlsStatSnapshot before;
  ClientOptions opts;
  opts.version = c.version;
  SSL_SESSION* session = nullptr;
  if (c.resumed) {
    // A first connection for a session (for TLS 1.3 the tickets arrive after
    // the handshake: read an echo so they are processed).
    absl::StatusOr<std::unique_ptr<TlsClient>> first = TlsClient::Connect(d.port(), opts);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE((*first)->Write("hi").ok());
    ASSERT_TRUE((*first)->ReadExactly(2).ok());
    session = (*first)->Get1Session();
    (*first)->Close();
    ASSERT_NE(session, nullptr);
    opts.session = session;
  }
  const std::string request = MakeRequest();
  absl::StatusOr<std::unique_ptr<TlsClient>> client =
      TlsClient::ConnectAndSend(d.port(), opts, request);
  if (session != nullptr) SSL_SESSION_free(session);
  ASSERT_TRUE(client.ok()) << client.status() << "\ntlsd log:\n" << d.Log();
  TlsClient& cl = **client;
  if (c.resumed) {
    ASSERT_EQ(SSL_session_reused(cl.ssl()), 1) << "the test meant to resume but did not";
  }
  absl::StatusOr<std::string> echo = cl.ReadExactly(request.size());
  ASSERT_TRUE(echo.ok()) << echo.status() << "\ntlsd log:\n" << d.Log();
  EXPECT_TRUE(*echo == request) << "the echo differs from the request";
  cl.Close();

  const size_t n = c.resumed ? 2 : 1;
  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(n);
  ASSERT_EQ(recs.size(), n) << d.Log();
  const ConnRecord* rec = nullptr;
  for (const ConnRecord& r : recs) {
    if (r.received.size() == request.size()) rec = &r;
  }
  ASSERT_NE(rec, nullptr) << "no connection carried the request intact";
  EXPECT_TRUE(rec->received == request) << "the backend received different bytes";
  EXPECT_EQ(rec->handler_error, "");
  EXPECT_EQ(rec->resumed, c.resumed ? 1 : 0);
  EXPECT_EQ(rec->tls_version, c.version);
  ExpectDataPath(*rec, d);
  ExpectKtlsCounters(before, static_cast<int>(n));
}

INSTANTIATE_TEST_SUITE_P(VersionsAndHandshakes, EarlyRequestTest,
                         ::testing::Values(EarlyCase{TLS1_2_VERSION, false},
                                           EarlyCase{TLS1_2_VERSION, true},
                                           EarlyCase{TLS1_3_VERSION, false},
                                           EarlyCase{TLS1_3_VERSION, true}),
                         EarlyCaseName);

// The same with a real client: s_client finds its whole input ready on
// stdin the moment the handshake ends and writes it at once.
class SClientStdinTest : public ::testing::TestWithParam<int> {};

TEST_P(SClientStdinTest, InputReadyAtHandshakeEndReachesBackendIntact) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", ReadAllHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();
  TlsStatSnapshot before;
  const std::string request = MakeRequest();
  // s_client sends everything it read, then ends the connection at stdin's
  // EOF (-no_ign_eof); the backend reads to the end of the stream.
  PeerResult p = RunPeer({kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", d.port()),
                          "-servername", "localhost", "-CAfile", d.env().ca, "-verify_return_error",
                          GetParam() == TLS1_3_VERSION ? "-tls1_3" : "-tls1_2", "-quiet",
                          "-no_ign_eof", "-nocommands"},
                         {.stdin_data = request});
  EXPECT_EQ(p.exit_code, 0) << p.Describe();
  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << d.Log();
  EXPECT_EQ(recs[0].received.size(), request.size());
  EXPECT_TRUE(recs[0].received == request) << "the backend received different bytes";
  ExpectDataPath(recs[0], d);
  ExpectKtlsCounters(before, 1);
}

INSTANTIATE_TEST_SUITE_P(Tls12AndTls13, SClientStdinTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? "TLSv13" : "TLSv12";
                         });

// ---------------------------------------------------------------------------
// sendfile() of a large file on the handed-off kTLS socket.

constexpr size_t kSendfileSize = size_t{256} << 20;  // 256 MiB

// MakeFile writes `size` pseudo-random bytes (xorshift: the DRBG would be
// slow under TCG) to `path`.
absl::Status MakeFile(const std::string& path, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  uint64_t x = 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(getpid());
  std::vector<uint64_t> chunk((1 << 20) / sizeof(uint64_t));
  for (size_t done = 0; done < size; done += chunk.size() * sizeof(uint64_t)) {
    for (uint64_t& w : chunk) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w = x;
    }
    const size_t len = std::min(size - done, chunk.size() * sizeof(uint64_t));
    const char* p = reinterpret_cast<const char*>(chunk.data());
    for (size_t off = 0; off < len;) {
      ssize_t n = write(fd, p + off, len - off);
      if (n <= 0) {
        close(fd);
        return absl::InternalError(absl::StrCat("write ", path, ": ", strerror(errno)));
      }
      off += n;
    }
  }
  close(fd);
  return absl::OkStatus();
}

// Sha256 hashes a stream of blocks in its own thread, so that hashing runs
// in parallel with the transfer (the VM lane has two emulated CPUs, and
// SHA-256 of 256 MiB costs tens of seconds there).
class Sha256Pipe {
 public:
  Sha256Pipe() : thread_([this] { Run(); }) {}
  ~Sha256Pipe() { Finish(); }
  void Push(std::string block) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return queue_.size() < 32; });
    queue_.push_back(std::move(block));
    cv_.notify_all();
  }
  // Finish waits for every block and returns the lowercase hex digest.
  std::string Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    return hex_;
  }

 private:
  void Run() {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
    for (;;) {
      std::string block;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || done_; });
        if (queue_.empty()) break;
        block = std::move(queue_.front());
        queue_.pop_front();
        cv_.notify_all();
      }
      EVP_DigestUpdate(md, block.data(), block.size());
    }
    unsigned char out[32];
    unsigned int out_len = 0;
    EVP_DigestFinal_ex(md, out, &out_len);
    EVP_MD_CTX_free(md);
    for (unsigned int i = 0; i < out_len; ++i) absl::StrAppendFormat(&hex_, "%02x", out[i]);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool done_ = false;
  std::string hex_;
  std::thread thread_;
};

// HashFile returns the SHA-256 (hex) of the file at `path`, "" on error.
std::string HashFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) EVP_DigestUpdate(md, buf.data(), n);
  close(fd);
  unsigned char out[32];
  unsigned int out_len = 0;
  EVP_DigestFinal_ex(md, out, &out_len);
  EVP_MD_CTX_free(md);
  std::string hex;
  for (unsigned int i = 0; i < out_len; ++i) absl::StrAppendFormat(&hex, "%02x", out[i]);
  return n == 0 ? hex : "";
}

TEST(SendfileTest, FileOf256MiBSentWithSendfileOnHandedOffSocketArrivesIntact) {
  TLSD_IT_REQUIRE_KTLS_OR_SKIP();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  const std::string path = absl::StrCat(d.env().dir, "/big.bin");
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(MakeFile(path, kSendfileSize).ok());
  const absl::Duration make_time = absl::Now() - t0;
  // The file's own hash is computed while it is being sent.
  std::string want;
  std::thread file_hasher([&] { want = HashFile(path); });
  absl::Cleanup join_hasher = [&] {
    if (file_hasher.joinable()) file_hasher.join();
  };

  // The backend waits for "GET\n", then sendfile()s the whole file on the
  // kTLS socket tlsd handed it, and closes (close_notify).
  Handler send_file = [path](BackendConn& c, ConnRecord& rec) {
    char buf[4];
    size_t got = 0;
    while (got < sizeof(buf)) {
      ssize_t n = c.Read(buf + got, sizeof(buf) - got);
      if (n <= 0) {
        rec.handler_error = "no request";
        return;
      }
      got += n;
    }
    rec.received.assign(buf, got);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      rec.handler_error = absl::StrCat("open: ", strerror(errno));
      return;
    }
    off_t off = 0;
    while (static_cast<size_t>(off) < kSendfileSize) {
      ssize_t n = sendfile(c.fd(), fd, &off, kSendfileSize - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        rec.handler_error = absl::StrCat("sendfile at ", off, ": ", n == 0 ? "0" : strerror(errno));
        break;
      }
    }
    close(fd);
  };
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", send_file);
  ASSERT_TRUE(backend.ok()) << backend.status();

  TlsStatSnapshot before;
  ClientOptions opts;
  opts.io_timeout = absl::Seconds(120);
  absl::StatusOr<std::unique_ptr<TlsClient>> client = TlsClient::Connect(d.port(), opts);
  ASSERT_TRUE(client.ok()) << client.status();
  TlsClient& cl = **client;
  const absl::Time t1 = absl::Now();
  ASSERT_TRUE(cl.Write("GET\n").ok());
  Sha256Pipe pipe;
  size_t total = 0;
  int last = 0, err = 0;
  std::string block;
  for (;;) {
    if (block.capacity() < (1 << 20)) block.reserve(1 << 20);
    const size_t at = block.size();
    block.resize(at + 65536);
    last = SSL_read(cl.ssl(), block.data() + at, 65536);
    block.resize(at + std::max(last, 0));
    if (last <= 0) {
      err = SSL_get_error(cl.ssl(), last);
      break;
    }
    total += last;
    if (block.size() >= (1 << 20) - 65536) {
      pipe.Push(std::move(block));
      block = std::string();
    }
  }
  if (!block.empty()) pipe.Push(std::move(block));
  const std::string got = pipe.Finish();
  file_hasher.join();
  const absl::Duration transfer = absl::Now() - t1;
  cl.Close();

  EXPECT_EQ(err, SSL_ERROR_ZERO_RETURN) << "the stream should end with the backend's close_notify";
  EXPECT_EQ(total, kSendfileSize);
  ASSERT_FALSE(want.empty()) << "could not hash " << path;
  EXPECT_EQ(got, want) << "SHA-256 of what arrived differs from the file's";
  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << d.Log();
  EXPECT_EQ(recs[0].handler_error, "");
  ExpectDataPath(recs[0], d);
  ExpectKtlsCounters(before, 1);
  const std::string timing = absl::StrFormat(
      "sendfile 256 MiB: file written in %s, transfer (with both hashes in parallel) in %s "
      "(%.1f MiB/s)",
      absl::FormatDuration(make_time), absl::FormatDuration(transfer),
      256.0 / absl::ToDoubleSeconds(transfer));
  std::cout << "[ TIMING   ] " << timing << std::endl;
  RecordProperty("timing", timing);
  unlink(path.c_str());
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
