// libtlsfd's C API against a fake tlsd: the test opens, listens on and sends
// on real AF_UNIX SOCK_SEQPACKET sockets with common/ipc, exactly as tlsd
// does, and hands over relay connections (socketpair ends).

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/base/unique_fd.h"
#include "common/ipc/seqpacket.h"
#include "common/wire/frame.h"
#include "common/wire/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libtlsfd/include/tlsfd.h"
#include "libtlsfd/include/tlsfd.hpp"
#include "tests/libtlsfd/test_util.h"

namespace {

using ::testing::HasSubstr;
using tlsd::ConnectionInfo;
using tlsd::DataPath;
using tlsd::MsgType;
using tlsd::UniqueFd;
using tlsfd::testutil::AcceptPeer;
using tlsfd::testutil::CountOpenFds;
using tlsfd::testutil::IsClosedByPeer;
using tlsfd::testutil::SampleInfo;
using tlsfd::testutil::SendConnection;
using tlsfd::testutil::SendRaw;
using tlsfd::testutil::SocketPair;
using tlsfd::testutil::TcpPair;
using tlsfd::testutil::TempDir;

tlsfd_server_stats Stats(const tlsfd_server* srv) {
  tlsfd_server_stats s{};
  s.struct_size = sizeof(s);
  EXPECT_EQ(tlsfd_server_get_stats(srv, &s), 0);
  return s;
}

// ---------------------------------------------------------------------------
// Pull mode: a fake tlsd control socket.

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("control");
    absl::StatusOr<UniqueFd> l = tlsd::ListenSeqpacket(path_, 0600);
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = *std::move(l);
  }
  void TearDown() override { tlsfd_server_free(server_); }

  // Subscribe runs tlsfd_server_subscribe in another thread while this one
  // plays tlsd: receives HELLO, checks it, and answers with `reply`. The
  // subscriber's tlsfd_last_error() (thread-local) lands in last_error_.
  int Subscribe(MsgType reply_type, const std::vector<uint8_t>& reply_payload) {
    std::future<int> rc = std::async(std::launch::async, [this] {
      int r = tlsfd_server_subscribe(path_.c_str(), "web", &server_);
      last_error_ = tlsfd_last_error();
      return r;
    });
    peer_ = AcceptPeer(listener_.get());
    absl::StatusOr<tlsd::Frame> hello = tlsd::RecvFrame(peer_.get());
    EXPECT_TRUE(hello.ok()) << hello.status();
    if (hello.ok()) {
      EXPECT_EQ(hello->header.type, MsgType::kHello);
      absl::StatusOr<tlsd::Hello> h = tlsd::Hello::Decode(hello->payload);
      EXPECT_TRUE(h.ok()) << h.status();
      if (h.ok()) {
        EXPECT_EQ(h->backend, "web");
      }
      EXPECT_TRUE(
          tlsd::SendFrame(peer_.get(), reply_type, hello->header.request_id, reply_payload).ok());
    }
    return rc.get();
  }

  void SubscribeOk() { ASSERT_EQ(Subscribe(MsgType::kHelloOk, {}), 0) << tlsfd_last_error(); }

  TempDir dir_;
  std::string path_;
  UniqueFd listener_;
  UniqueFd peer_;  // tlsd's end of the subscription
  tlsfd_server* server_ = nullptr;
  std::string last_error_;
};

TEST_F(PullTest, ReceivesRelayConnectionAndReadsWritesThroughIt) {
  SubscribeOk();
  ASSERT_NE(server_, nullptr);
  EXPECT_EQ(tlsfd_server_fd(server_) >= 0, true);

  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  SendConnection(peer_.get(), SampleInfo(42), theirs.get());
  theirs.Reset();  // tlsd closes its copy after a successful handoff

  tlsfd_conn* conn = nullptr;
  ASSERT_EQ(tlsfd_accept(server_, &conn, 0), 0) << tlsfd_last_error();
  ASSERT_NE(conn, nullptr);
  EXPECT_GE(tlsfd_conn_fd(conn), 0);

  ASSERT_EQ(write(ours.get(), "ping", 4), 4);
  char buf[16] = {};
  ASSERT_EQ(tlsfd_read(conn, buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");

  ASSERT_EQ(tlsfd_write(conn, "pong", 4), 4);
  ASSERT_EQ(read(ours.get(), buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");

  // The TLS peer closed (tlsd relays that as EOF): 0, and 0 again.
  ASSERT_EQ(shutdown(ours.get(), SHUT_WR), 0);
  EXPECT_EQ(tlsfd_read(conn, buf, sizeof(buf)), 0);
  EXPECT_EQ(tlsfd_read(conn, buf, sizeof(buf)), 0);
  EXPECT_EQ(tlsfd_conn_last_alert(conn), -ENOMSG);  // relay: tlsd handles alerts

  // Our close_notify is tlsd's EOF on the socketpair.
  EXPECT_EQ(tlsfd_shutdown(conn), 0);
  EXPECT_EQ(tlsfd_shutdown(conn), 0);
  EXPECT_TRUE(IsClosedByPeer(ours.get()));
  EXPECT_EQ(tlsfd_write(conn, "late", 4), -EPIPE);
  EXPECT_EQ(tlsfd_close(conn), 0);
  EXPECT_EQ(Stats(server_).connections_accepted, 1u);
}

TEST_F(PullTest, CloseSendsEofToTlsd) {
  SubscribeOk();
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  SendConnection(peer_.get(), SampleInfo(), theirs.get());
  theirs.Reset();
  tlsfd_conn* conn = nullptr;
  ASSERT_EQ(tlsfd_accept(server_, &conn, 0), 0);
  EXPECT_EQ(tlsfd_close(conn), 0);
  EXPECT_TRUE(IsClosedByPeer(ours.get()));
}

class PullErrorTest : public PullTest, public ::testing::WithParamInterface<int> {};

TEST_P(PullErrorTest, ErrorReplyToHelloIsNegatedCode) {
  const int code = GetParam();
  tlsd::ErrorMsg err{static_cast<uint32_t>(code), "backend 'web' says no"};
  EXPECT_EQ(Subscribe(MsgType::kError, err.Encode()), -code);
  EXPECT_EQ(server_, nullptr);
  EXPECT_THAT(last_error_, HasSubstr("backend 'web' says no"));
}

INSTANTIATE_TEST_SUITE_P(Codes, PullErrorTest,
                         ::testing::Values(EACCES, ECONNREFUSED, ENOENT, EPERM, EBUSY));

TEST_F(PullTest, UndecodableErrorReplyIsEproto) {
  EXPECT_EQ(Subscribe(MsgType::kError, {0, 0, 0}), -EPROTO);
  EXPECT_EQ(server_, nullptr);
}

TEST_F(PullTest, WrongReplyTypeIsEproto) {
  EXPECT_EQ(Subscribe(MsgType::kConnectReply, {}), -EPROTO);
  EXPECT_EQ(server_, nullptr);
  EXPECT_THAT(last_error_, HasSubstr("CONNECT_REPLY"));
}

TEST_F(PullTest, TlsdClosingBeforeReplyFails) {
  std::future<int> rc = std::async(std::launch::async, [this] {
    return tlsfd_server_subscribe(path_.c_str(), "web", &server_);
  });
  AcceptPeer(listener_.get()).Reset();
  EXPECT_THAT(rc.get(), ::testing::AnyOf(-ECONNRESET, -EPIPE));
  EXPECT_EQ(server_, nullptr);
}

TEST_F(PullTest, BadArgumentsAreEinval) {
  tlsfd_server* s = reinterpret_cast<tlsfd_server*>(0x1);
  EXPECT_EQ(tlsfd_server_subscribe(path_.c_str(), "bad name!", &s), -EINVAL);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(tlsfd_server_subscribe(path_.c_str(), "", &s), -EINVAL);
  EXPECT_EQ(tlsfd_server_subscribe(path_.c_str(), std::string(65, 'a').c_str(), &s), -EINVAL);
  EXPECT_EQ(tlsfd_server_subscribe(nullptr, "web", &s), -EINVAL);
  EXPECT_EQ(tlsfd_server_subscribe(path_.c_str(), nullptr, &s), -EINVAL);
  EXPECT_EQ(tlsfd_server_subscribe(path_.c_str(), "web", nullptr), -EINVAL);
}

TEST_F(PullTest, MissingControlSocketIsEnoent) {
  tlsfd_server* s = nullptr;
  EXPECT_EQ(tlsfd_server_subscribe(dir_.File("nope").c_str(), "web", &s), -ENOENT);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("nope"));
}

TEST_F(PullTest, NonblockingAcceptReturnsEagainThenConnection) {
  SubscribeOk();
  tlsfd_conn* conn = reinterpret_cast<tlsfd_conn*>(0x1);
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  EXPECT_EQ(conn, nullptr);

  pollfd p{tlsfd_server_fd(server_), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  SendConnection(peer_.get(), SampleInfo(), theirs.get());
  EXPECT_EQ(poll(&p, 1, 1000), 1);
  ASSERT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), 0);
  tlsfd_close(conn);
}

TEST_F(PullTest, TlsdClosingEndsSubscription) {
  SubscribeOk();
  peer_.Reset();
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, 0), -ECONNRESET);
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -ECONNRESET);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("tlsd closed the subscription"));
}

TEST_F(PullTest, ErrorFrameEndsSubscription) {
  SubscribeOk();
  tlsd::ErrorMsg err{ESHUTDOWN, "backend removed by reload"};
  ASSERT_TRUE(tlsd::SendFrame(peer_.get(), MsgType::kError, 0, err.Encode()).ok());
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, 0), -ESHUTDOWN);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("backend removed by reload"));
  EXPECT_EQ(tlsfd_accept(server_, &conn, 0), -ESHUTDOWN);
}

TEST_F(PullTest, BlockingAcceptIsInterruptedBySignal) {
  SubscribeOk();
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sa.sa_flags = SA_RESTART;  // even so: tlsfd_accept reports EINTR, like epoll/poll
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  pthread_t self = pthread_self();
  std::thread killer([self] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pthread_kill(self, SIGUSR1);
  });
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, 0), -EINTR);
  killer.join();
  sigaction(SIGUSR1, &old, nullptr);
}

TEST_F(PullTest, RequirePeerUid) {
  SubscribeOk();
  EXPECT_EQ(tlsfd_server_require_peer_uid(server_, getuid()), 0);
  EXPECT_EQ(tlsfd_server_require_peer_uid(server_, getuid() + 1), -EPERM);
}

// ---------------------------------------------------------------------------
// Frames that must be dropped, fd and all, in both modes.

enum class Mode { kPull, kPush };

class DropTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    if (GetParam() == Mode::kPull) {
      std::string path = dir_.File("control");
      absl::StatusOr<UniqueFd> l = tlsd::ListenSeqpacket(path, 0600);
      ASSERT_TRUE(l.ok()) << l.status();
      std::future<int> rc = std::async(std::launch::async, [this, path] {
        return tlsfd_server_subscribe(path.c_str(), "web", &server_);
      });
      link_ = AcceptPeer(l->get());
      absl::StatusOr<tlsd::Frame> hello = tlsd::RecvFrame(link_.get());
      ASSERT_TRUE(hello.ok());
      ASSERT_TRUE(tlsd::SendFrame(link_.get(), MsgType::kHelloOk, 1, {}).ok());
      ASSERT_EQ(rc.get(), 0);
    } else {
      std::string path = dir_.File("backend.sock");
      ASSERT_EQ(tlsfd_server_listen(path.c_str(), 0600, &server_), 0) << tlsfd_last_error();
      absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path, false);
      ASSERT_TRUE(link.ok()) << link.status();
      link_ = *std::move(link);
    }
    // Let the library take the push link now, so that fd counts taken by the
    // tests do not change when it does.
    tlsfd_conn* none = nullptr;
    ASSERT_EQ(tlsfd_accept(server_, &none, TLSFD_NONBLOCK), -EAGAIN);
  }
  void TearDown() override { tlsfd_server_free(server_); }

  // ExpectDropped checks that nothing is accepted, the frame is counted as
  // dropped, `peer_end`'s partner was closed, and no fd leaked.
  void ExpectDropped(int fds_before, int peer_end, uint64_t num_dropped = 1) {
    tlsfd_conn* conn = nullptr;
    EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
    EXPECT_EQ(conn, nullptr);
    EXPECT_EQ(Stats(server_).frames_dropped, num_dropped);
    EXPECT_EQ(Stats(server_).connections_accepted, 0u);
    if (peer_end >= 0) {
      EXPECT_TRUE(IsClosedByPeer(peer_end)) << "the passed fd was not closed";
    }
    EXPECT_EQ(CountOpenFds(), fds_before);
  }

  // ExpectStillWorks sends a good connection and accepts it.
  void ExpectStillWorks() {
    auto [ours, theirs] = SocketPair(SOCK_STREAM);
    SendConnection(link_.get(), SampleInfo(99), theirs.get());
    theirs.Reset();
    tlsfd_conn* conn = nullptr;
    ASSERT_EQ(tlsfd_accept(server_, &conn, 0), 0) << tlsfd_last_error();
    tlsfd_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(tlsfd_conn_info(conn, &info), 0);
    EXPECT_EQ(info.connection_id, 99u);
    tlsfd_close(conn);
  }

  TempDir dir_;
  UniqueFd link_;  // tlsd's end
  tlsfd_server* server_ = nullptr;
};

TEST_P(DropTest, MalformedConnectionPayloadDropsFrameAndClosesFd) {
  int fds_before = CountOpenFds();
  {
    auto [ours, theirs] = SocketPair(SOCK_STREAM);
    const std::vector<uint8_t> bad_payload = {0xde, 0xad, 0xbe, 0xef};
    ASSERT_TRUE(
        tlsd::SendFrame(link_.get(), MsgType::kConnection, 0, bad_payload, theirs.get()).ok());
    theirs.Reset();
    ExpectDropped(fds_before + 1, ours.get());
  }
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("CONNECTION"));
  ExpectStillWorks();
}

TEST_P(DropTest, TrailingBytesInPayloadDropFrame) {
  int fds_before = CountOpenFds();
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  std::vector<uint8_t> payload = SampleInfo().Encode();
  payload.push_back(0);
  ASSERT_TRUE(tlsd::SendFrame(link_.get(), MsgType::kConnection, 0, payload, theirs.get()).ok());
  theirs.Reset();
  ExpectDropped(fds_before + 1, ours.get());
  ExpectStillWorks();
}

TEST_P(DropTest, UnexpectedFrameTypeIsDroppedWithItsFd) {
  int fds_before = CountOpenFds();
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  ASSERT_TRUE(
      tlsd::SendFrame(link_.get(), MsgType::kControlVerdict, 0, {1, 2, 3}, theirs.get()).ok());
  theirs.Reset();
  ExpectDropped(fds_before + 1, ours.get());
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("CONTROL_VERDICT"));
  ExpectStillWorks();
}

TEST_P(DropTest, HelloOkAfterSubscriptionIsDropped) {
  int fds_before = CountOpenFds();
  ASSERT_TRUE(tlsd::SendFrame(link_.get(), MsgType::kHelloOk, 0, {}).ok());
  ExpectDropped(fds_before, -1);
  ExpectStillWorks();
}

TEST_P(DropTest, UnknownMessageTypeWithFdIsDropped) {
  int fds_before = CountOpenFds();
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  // version 1, type 99, request 0, payload_len 0
  const uint8_t datagram[] = {0, 1, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0};
  SendRaw(link_.get(), datagram, theirs.get());
  theirs.Reset();
  ExpectDropped(fds_before + 1, ours.get());
  ExpectStillWorks();
}

TEST_P(DropTest, GarbageDatagramWithFdIsDropped) {
  int fds_before = CountOpenFds();
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  const uint8_t datagram[] = {'h', 'i'};
  SendRaw(link_.get(), datagram, theirs.get());
  theirs.Reset();
  ExpectDropped(fds_before + 1, ours.get());
  ExpectStillWorks();
}

TEST_P(DropTest, ConnectionWithoutFdIsDropped) {
  int fds_before = CountOpenFds();
  ASSERT_TRUE(tlsd::SendFrame(link_.get(), MsgType::kConnection, 0, SampleInfo().Encode()).ok());
  ExpectDropped(fds_before, -1);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("without an fd"));
  ExpectStillWorks();
}

TEST_P(DropTest, KtlsClaimOnSocketpairIsDropped) {
  int fds_before = CountOpenFds();
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  SendConnection(link_.get(), SampleInfo(1, DataPath::kKernelSoftware), theirs.get());
  theirs.Reset();
  ExpectDropped(fds_before + 1, ours.get());
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("not a TCP socket"));
  ExpectStillWorks();
}

TEST_P(DropTest, KtlsClaimOnPlainTcpSocketIsDropped) {
  // A TCP socket without the "tls" ULP would carry the app's plaintext onto
  // the network: refused. (On a kTLS kernel the ULP is simply not installed
  // here, so this holds in the VM lane too.)
  int fds_before = CountOpenFds();
  auto [server_end, client_end] = TcpPair();
  SendConnection(link_.get(), SampleInfo(1, DataPath::kKernelDevice), server_end.get());
  server_end.Reset();
  ExpectDropped(fds_before + 1, client_end.get());
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("no kernel TLS"));
  ExpectStillWorks();
}

TEST_P(DropTest, RelayClaimOnTcpSocketIsDropped) {
  int fds_before = CountOpenFds();
  auto [server_end, client_end] = TcpPair();
  SendConnection(link_.get(), SampleInfo(1, DataPath::kRelay), server_end.get());
  server_end.Reset();
  ExpectDropped(fds_before + 1, client_end.get());
  ExpectStillWorks();
}

TEST_P(DropTest, MixedDataPathsAreDropped) {
  int fds_before = CountOpenFds();
  auto [ours, theirs] = SocketPair(SOCK_STREAM);
  ConnectionInfo info = SampleInfo();
  info.tx_path = DataPath::kKernelSoftware;
  info.rx_path = DataPath::kRelay;
  SendConnection(link_.get(), info, theirs.get());
  theirs.Reset();
  ExpectDropped(fds_before + 1, ours.get());
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("mixed data paths"));
  ExpectStillWorks();
}

TEST_P(DropTest, NonSocketFdIsDropped) {
  int fds_before = CountOpenFds();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd read_end(p[0]), write_end(p[1]);
  SendConnection(link_.get(), SampleInfo(), write_end.get());
  write_end.Reset();
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  EXPECT_EQ(Stats(server_).frames_dropped, 1u);
  // The write end is closed everywhere: the read end sees EOF.
  char c;
  EXPECT_EQ(read(read_end.get(), &c, 1), 0);
  EXPECT_EQ(CountOpenFds(), fds_before + 1);
}

INSTANTIATE_TEST_SUITE_P(Modes, DropTest, ::testing::Values(Mode::kPull, Mode::kPush),
                         [](const ::testing::TestParamInfo<Mode>& info) {
                           return info.param == Mode::kPull ? "Pull" : "Push";
                         });

// ---------------------------------------------------------------------------
// Push mode.

class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("backend.sock");
    ASSERT_EQ(tlsfd_server_listen(path_.c_str(), 0600, &server_), 0) << tlsfd_last_error();
  }
  void TearDown() override { tlsfd_server_free(server_); }

  UniqueFd Link() {
    absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path_, false);
    EXPECT_TRUE(link.ok()) << link.status();
    return link.ok() ? *std::move(link) : UniqueFd();
  }

  uint64_t AcceptId(int flags = 0) {
    tlsfd_conn* conn = nullptr;
    int rc = tlsfd_accept(server_, &conn, flags);
    EXPECT_EQ(rc, 0) << tlsfd_strerror(rc) << ": " << tlsfd_last_error();
    if (rc != 0) {
      return 0;
    }
    tlsfd_info info{};
    info.struct_size = sizeof(info);
    EXPECT_EQ(tlsfd_conn_info(conn, &info), 0);
    tlsfd_close(conn);
    return info.connection_id;
  }

  TempDir dir_;
  std::string path_;
  tlsfd_server* server_ = nullptr;
};

TEST_F(PushTest, SocketFileHasRequestedMode) {
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(PushTest, ConnectionsOnTwoLinksAreBothAccepted) {
  UniqueFd link1 = Link();
  UniqueFd link2 = Link();
  auto [a1, b1] = SocketPair(SOCK_STREAM);
  auto [a2, b2] = SocketPair(SOCK_STREAM);
  SendConnection(link1.get(), SampleInfo(1), b1.get());
  SendConnection(link2.get(), SampleInfo(2), b2.get());
  std::set<uint64_t> ids = {AcceptId(), AcceptId()};
  EXPECT_EQ(ids, (std::set<uint64_t>{1, 2}));
  tlsfd_server_stats s = Stats(server_);
  EXPECT_EQ(s.links_accepted, 2u);
  EXPECT_EQ(s.connections_accepted, 2u);
  EXPECT_EQ(s.frames_dropped, 0u);
}

TEST_F(PushTest, ManyConnectionsOnEachLink) {
  UniqueFd link1 = Link();
  UniqueFd link2 = Link();
  std::vector<UniqueFd> keep;
  for (uint64_t i = 0; i < 10; ++i) {
    auto [a, b] = SocketPair(SOCK_STREAM);
    SendConnection((i % 2 ? link1 : link2).get(), SampleInfo(100 + i), b.get());
    keep.push_back(std::move(a));
  }
  std::set<uint64_t> ids;
  for (int i = 0; i < 10; ++i) {
    ids.insert(AcceptId());
  }
  EXPECT_EQ(ids.size(), 10u);
  EXPECT_EQ(*ids.begin(), 100u);
  EXPECT_EQ(*ids.rbegin(), 109u);
}

TEST_F(PushTest, NonblockingAcceptReturnsEagain) {
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  UniqueFd link = Link();
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);  // link, no frame
  EXPECT_EQ(Stats(server_).links_accepted, 1u);
  auto [a, b] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(5), b.get());
  EXPECT_EQ(AcceptId(TLSFD_NONBLOCK), 5u);
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
}

TEST_F(PushTest, ServerFdIsReadableWhenSomethingArrives) {
  pollfd p{tlsfd_server_fd(server_), POLLIN, 0};
  ASSERT_GE(p.fd, 0);
  EXPECT_EQ(poll(&p, 1, 0), 0);
  UniqueFd link = Link();
  EXPECT_EQ(poll(&p, 1, 1000), 1);  // the new link
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  EXPECT_EQ(poll(&p, 1, 0), 0);
  auto [a, b] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(), b.get());
  EXPECT_EQ(poll(&p, 1, 1000), 1);
}

TEST_F(PushTest, DeadLinkIsDroppedQuietly) {
  int fds_before = CountOpenFds();
  {
    UniqueFd link = Link();
    tlsfd_conn* conn = nullptr;
    EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  }
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  tlsfd_server_stats s = Stats(server_);
  EXPECT_EQ(s.links_accepted, 1u);
  EXPECT_EQ(s.links_closed, 1u);
  EXPECT_EQ(s.frames_dropped, 0u);
  EXPECT_EQ(CountOpenFds(), fds_before);

  UniqueFd link = Link();
  auto [a, b] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(8), b.get());
  EXPECT_EQ(AcceptId(), 8u);
}

TEST_F(PushTest, FramesSentBeforeLinkClosedAreStillDelivered) {
  auto [a, b] = SocketPair(SOCK_STREAM);
  {
    UniqueFd link = Link();
    SendConnection(link.get(), SampleInfo(11), b.get());
  }
  EXPECT_EQ(AcceptId(), 11u);
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  EXPECT_EQ(Stats(server_).links_closed, 1u);
}

TEST_F(PushTest, BlockingAcceptWaitsForAConnection) {
  UniqueFd link = Link();
  auto [a, b] = SocketPair(SOCK_STREAM);
  std::thread sender([&link, fd = b.get()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    SendConnection(link.get(), SampleInfo(21), fd);
  });
  EXPECT_EQ(AcceptId(), 21u);
  sender.join();
}

TEST_F(PushTest, BlockingAcceptWaitsForALink) {
  auto [a, b] = SocketPair(SOCK_STREAM);
  std::thread sender([this, fd = b.get()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    UniqueFd link = Link();
    SendConnection(link.get(), SampleInfo(22), fd);
  });
  EXPECT_EQ(AcceptId(), 22u);
  sender.join();
}

TEST_F(PushTest, LinksFromOtherUsersAreRefused) {
  ASSERT_EQ(tlsfd_server_require_peer_uid(server_, getuid() + 1), 0);
  UniqueFd link = Link();
  auto [a, b] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(), b.get());
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(server_, &conn, TLSFD_NONBLOCK), -EAGAIN);
  EXPECT_EQ(Stats(server_).links_refused, 1u);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("refused a link from uid"));
  EXPECT_TRUE(IsClosedByPeer(link.get()));

  ASSERT_EQ(tlsfd_server_require_peer_uid(server_, getuid()), 0);
  UniqueFd good = Link();
  auto [c, d] = SocketPair(SOCK_STREAM);
  SendConnection(good.get(), SampleInfo(3), d.get());
  EXPECT_EQ(AcceptId(), 3u);
}

TEST_F(PushTest, FreeRemovesSocketFile) {
  tlsfd_server_free(server_);
  server_ = nullptr;
  struct stat st;
  EXPECT_NE(lstat(path_.c_str(), &st), 0);
}

TEST_F(PushTest, FreeLeavesAReplacedSocketFileAlone) {
  ASSERT_EQ(unlink(path_.c_str()), 0);
  absl::StatusOr<UniqueFd> other = tlsd::ListenSeqpacket(path_, 0600);
  ASSERT_TRUE(other.ok());
  tlsfd_server_free(server_);
  server_ = nullptr;
  struct stat st;
  EXPECT_EQ(lstat(path_.c_str(), &st), 0);
}

TEST_F(PushTest, ListenRefusesToReplaceARegularFile) {
  std::string file = dir_.File("regular");
  UniqueFd f(open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  ASSERT_TRUE(f.valid());
  tlsfd_server* s = nullptr;
  EXPECT_EQ(tlsfd_server_listen(file.c_str(), 0600, &s), -EADDRINUSE);
  EXPECT_EQ(s, nullptr);
  struct stat st;
  EXPECT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(PushTest, ListenRefusesALiveSocket) {
  tlsfd_server* s = nullptr;
  EXPECT_EQ(tlsfd_server_listen(path_.c_str(), 0600, &s), -EEXIST);
  EXPECT_EQ(s, nullptr);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("another process is serving"));
  UniqueFd link = Link();  // ours still works
  auto [a, b] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(12), b.get());
  EXPECT_EQ(AcceptId(), 12u);
}

TEST_F(PushTest, ListenReplacesAStaleSocketFile) {
  tlsfd_server* s = nullptr;
  std::string stale = dir_.File("stale.sock");
  {
    absl::StatusOr<UniqueFd> old = tlsd::ListenSeqpacket(stale, 0600);
    ASSERT_TRUE(old.ok());
  }
  ASSERT_EQ(tlsfd_server_listen(stale.c_str(), 0600, &s), 0) << tlsfd_last_error();
  tlsfd_server_free(s);
}

TEST_F(PushTest, ListenErrors) {
  tlsfd_server* s = nullptr;
  EXPECT_EQ(tlsfd_server_listen(dir_.File("no/such/dir").c_str(), 0600, &s), -ENOENT);
  EXPECT_EQ(tlsfd_server_listen(std::string(200, 'x').c_str(), 0600, &s), -EINVAL);
  EXPECT_EQ(tlsfd_server_listen("", 0600, &s), -EINVAL);
  EXPECT_EQ(tlsfd_server_listen(nullptr, 0600, &s), -EINVAL);
}

TEST_F(PushTest, ConnNonblockFlagSetsAndClearsONonblock) {
  UniqueFd link = Link();
  auto [a1, b1] = SocketPair(SOCK_STREAM | SOCK_NONBLOCK);  // tlsd's sockets are non-blocking
  auto [a2, b2] = SocketPair(SOCK_STREAM);
  SendConnection(link.get(), SampleInfo(1), b1.get());
  SendConnection(link.get(), SampleInfo(2), b2.get());
  tlsfd_conn* blocking = nullptr;
  tlsfd_conn* nonblocking = nullptr;
  ASSERT_EQ(tlsfd_accept(server_, &blocking, 0), 0);
  ASSERT_EQ(tlsfd_accept(server_, &nonblocking, TLSFD_CONN_NONBLOCK), 0);
  EXPECT_EQ(fcntl(tlsfd_conn_fd(blocking), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(tlsfd_conn_fd(nonblocking), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(tlsfd_conn_fd(nonblocking), F_GETFD) & FD_CLOEXEC, 0);
  char buf[4];
  EXPECT_EQ(tlsfd_read(nonblocking, buf, sizeof(buf)), -EAGAIN);
  tlsfd_close(blocking);
  tlsfd_close(nonblocking);
}

// ---------------------------------------------------------------------------
// tlsfd_server_from_fd / _from_systemd.

TEST(FromFdTest, RejectsWhatIsNotAListeningSeqpacketSocketAndLeavesItOpen) {
  tlsfd_server* s = nullptr;
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  EXPECT_EQ(tlsfd_server_from_fd(r.get(), &s), -ENOTSOCK);
  EXPECT_NE(fcntl(r.get(), F_GETFD), -1) << "fd closed on failure";

  UniqueFd tcp(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(tlsfd_server_from_fd(tcp.get(), &s), -EAFNOSUPPORT);

  UniqueFd stream(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(tlsfd_server_from_fd(stream.get(), &s), -EPROTOTYPE);

  UniqueFd unbound(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  EXPECT_EQ(tlsfd_server_from_fd(unbound.get(), &s), -EINVAL);
  EXPECT_NE(fcntl(unbound.get(), F_GETFD), -1);

  EXPECT_EQ(tlsfd_server_from_fd(-1, &s), -EBADF);
  EXPECT_EQ(tlsfd_server_from_fd(12345, &s), -EBADF);
  EXPECT_EQ(s, nullptr);
}

TEST(FromFdTest, TakesOwnershipAndServes) {
  TempDir dir;
  std::string path = dir.File("activated.sock");
  // A blocking socket, as systemd passes it.
  UniqueFd l(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(l.get(), 8), 0);
  int fd = l.Release();

  tlsfd_server* s = nullptr;
  ASSERT_EQ(tlsfd_server_from_fd(fd, &s), 0) << tlsfd_last_error();
  EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(s, &conn, TLSFD_NONBLOCK), -EAGAIN);

  absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path, false);
  ASSERT_TRUE(link.ok());
  auto [a, b] = SocketPair(SOCK_STREAM);
  SendConnection(link->get(), SampleInfo(31), b.get());
  ASSERT_EQ(tlsfd_accept(s, &conn, 0), 0);
  tlsfd_close(conn);
  tlsfd_server_free(s);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1) << "the server did not close the fd it owned";
  // from_fd did not bind the path, so free leaves the file alone.
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0);
}

// FromSystemd runs in a child: socket activation means fd 3 and $LISTEN_*.
TEST(FromSystemdTest, FindsTheSocketByName) {
  TempDir dir;
  std::string path = dir.File("named.sock");
  absl::StatusOr<UniqueFd> l = tlsd::ListenSeqpacket(path, 0600);
  ASSERT_TRUE(l.ok());
  absl::StatusOr<UniqueFd> other = tlsd::ListenSeqpacket(dir.File("other.sock"), 0600);
  ASSERT_TRUE(other.ok());

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // fds 3 and 4, as systemd passes them; names "other" and "tlsd-backend".
    // Move both out of the way first: either may already be 3 or 4.
    int o = fcntl(other->get(), F_DUPFD_CLOEXEC, 100);
    int t = fcntl(l->get(), F_DUPFD_CLOEXEC, 100);
    if (o < 0 || t < 0 || dup2(o, 3) != 3 || dup2(t, 4) != 4) {
      _exit(10);
    }
    setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "other:tlsd-backend", 1);
    tlsfd_server* s = nullptr;
    if (tlsfd_server_from_systemd("missing", &s) != -ENOENT) {
      _exit(11);
    }
    if (tlsfd_server_from_systemd(nullptr, &s) != -ENOTUNIQ) {
      _exit(12);
    }
    if (tlsfd_server_from_systemd("tlsd-backend", &s) != 0) {
      _exit(13);
    }
    if (getenv("LISTEN_FDS") == nullptr) {
      _exit(14);  // environment left alone
    }
    alarm(10);
    tlsfd_conn* conn = nullptr;
    if (tlsfd_accept(s, &conn, 0) != 0) {
      _exit(15);
    }
    tlsfd_info info{};
    info.struct_size = sizeof(info);
    if (tlsfd_conn_info(conn, &info) != 0 || info.connection_id != 77) {
      _exit(16);
    }
    tlsfd_close(conn);
    tlsfd_server_free(s);
    _exit(0);
  }
  absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path, false);
  ASSERT_TRUE(link.ok());
  auto [a, b] = SocketPair(SOCK_STREAM);
  SendConnection(link->get(), SampleInfo(77), b.get());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(FromSystemdTest, NoActivationIsEnoent) {
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  tlsfd_server* s = nullptr;
  EXPECT_EQ(tlsfd_server_from_systemd("x", &s), -ENOENT);
  EXPECT_EQ(tlsfd_server_from_systemd(nullptr, &s), -ENOENT);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("LISTEN_FDS"));
  EXPECT_EQ(tlsfd_server_from_systemd(nullptr, nullptr), -EINVAL);
}

// ---------------------------------------------------------------------------
// Connection metadata.

class ConnInfoTest : public PushTest {
 protected:
  tlsfd_conn* AcceptWith(const ConnectionInfo& info) {
    link_ = Link();
    auto [a, b] = SocketPair(SOCK_STREAM);
    ours_ = std::move(a);
    SendConnection(link_.get(), info, b.get());
    tlsfd_conn* conn = nullptr;
    EXPECT_EQ(tlsfd_accept(server_, &conn, 0), 0) << tlsfd_last_error();
    return conn;
  }
  UniqueFd link_;
  UniqueFd ours_;
};

TEST_F(ConnInfoTest, EveryFieldIsWhatTlsdSent) {
  const ConnectionInfo sent = SampleInfo(0x0123456789abcdefULL);
  tlsfd_conn* conn = AcceptWith(sent);
  ASSERT_NE(conn, nullptr);
  tlsfd_info info;
  memset(&info, 0xff, sizeof(info));
  info.struct_size = sizeof(info);
  ASSERT_EQ(tlsfd_conn_info(conn, &info), 0);

  EXPECT_EQ(info.struct_size, sizeof(info));
  EXPECT_EQ(info.connection_id, 0x0123456789abcdefULL);
  EXPECT_STREQ(info.service, "https-main");
  EXPECT_STREQ(info.backend, "web");
  EXPECT_STREQ(info.sni, "www.example.test");
  EXPECT_STREQ(info.alpn, "http/1.1");
  EXPECT_EQ(info.tls_version, 0x0304);
  EXPECT_EQ(info.cipher_suite, 0x1302);
  EXPECT_STREQ(info.tls_version_name, "TLSv1.3");
  EXPECT_STREQ(info.cipher_name, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(info.tx_path, TLSFD_PATH_RELAY);
  EXPECT_EQ(info.rx_path, TLSFD_PATH_RELAY);
  EXPECT_STREQ(info.tx_path_name, "relay");
  EXPECT_STREQ(info.rx_path_name, "relay");
  EXPECT_STREQ(info.path_reason, "kernel has no tls ULP");
  EXPECT_STREQ(info.peer, "[2001:db8::17]:50123");
  EXPECT_STREQ(info.local, "192.0.2.10:443");

  ASSERT_EQ(info.peer_addr.ss_family, AF_INET6);
  const auto* peer6 = reinterpret_cast<const sockaddr_in6*>(&info.peer_addr);
  EXPECT_EQ(ntohs(peer6->sin6_port), 50123);
  EXPECT_EQ(memcmp(&peer6->sin6_addr, sent.peer.addr.data(), 16), 0);
  ASSERT_EQ(info.local_addr.ss_family, AF_INET);
  const auto* local4 = reinterpret_cast<const sockaddr_in*>(&info.local_addr);
  EXPECT_EQ(ntohs(local4->sin_port), 443);
  char text[INET_ADDRSTRLEN];
  EXPECT_STREQ(inet_ntop(AF_INET, &local4->sin_addr, text, sizeof(text)), "192.0.2.10");

  EXPECT_EQ(info.has_client_cert, 1);
  EXPECT_STREQ(info.client_cert_subject, "CN=alice,O=Example");
  EXPECT_EQ(memcmp(info.client_cert_sha256, sent.client_cert_sha256.data(), 32), 0);
  EXPECT_STREQ(info.client_cert_sha256_hex,
               "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
  EXPECT_EQ(info.resumed, 1);
  EXPECT_EQ(info.handshake_us, 1234u);
  tlsfd_close(conn);
}

TEST_F(ConnInfoTest, AbsentFieldsAreEmptyStringsNotNull) {
  ConnectionInfo sent = SampleInfo(1);
  sent.sni.clear();
  sent.alpn.clear();
  sent.path_reason.clear();
  sent.has_client_cert = false;
  sent.client_cert_subject.clear();
  sent.client_cert_sha256 = {};
  sent.resumed = false;
  sent.tls_version = 0x0303;
  sent.peer = tlsd::WireAddress{};
  tlsfd_conn* conn = AcceptWith(sent);
  ASSERT_NE(conn, nullptr);
  tlsfd_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EQ(tlsfd_conn_info(conn, &info), 0);
  EXPECT_STREQ(info.sni, "");
  EXPECT_STREQ(info.alpn, "");
  EXPECT_STREQ(info.path_reason, "");
  EXPECT_EQ(info.has_client_cert, 0);
  EXPECT_STREQ(info.client_cert_subject, "");
  EXPECT_STREQ(info.client_cert_sha256_hex, "");
  EXPECT_EQ(info.resumed, 0);
  EXPECT_STREQ(info.tls_version_name, "TLSv1.2");
  EXPECT_STREQ(info.peer, "unknown");
  EXPECT_EQ(info.peer_addr.ss_family, AF_UNSPEC);
  tlsfd_close(conn);
}

TEST_F(ConnInfoTest, StructSizeIsHonoured) {
  tlsfd_conn* conn = AcceptWith(SampleInfo(5));
  ASSERT_NE(conn, nullptr);
  tlsfd_info small{};
  small.struct_size = sizeof(small) - 1;
  EXPECT_EQ(tlsfd_conn_info(conn, &small), -EINVAL);
  EXPECT_EQ(tlsfd_conn_info(conn, nullptr), -EINVAL);
  EXPECT_EQ(tlsfd_conn_info(nullptr, &small), -EINVAL);

  // A caller built against a newer, larger struct: nothing past our fields is
  // written.
  struct Bigger {
    tlsfd_info info;
    uint8_t future[32];
  } big;
  memset(&big, 0xab, sizeof(big));
  big.info.struct_size = sizeof(big);
  ASSERT_EQ(tlsfd_conn_info(conn, &big.info), 0);
  EXPECT_EQ(big.info.struct_size, sizeof(big));
  EXPECT_EQ(big.info.connection_id, 5u);
  for (uint8_t b : big.future) {
    EXPECT_EQ(b, 0xab);
  }
  tlsfd_close(conn);
}

// ---------------------------------------------------------------------------
// Misc API.

TEST(ApiTest, NullAndFlagChecks) {
  tlsfd_conn* conn = nullptr;
  EXPECT_EQ(tlsfd_accept(nullptr, &conn, 0), -EINVAL);
  EXPECT_EQ(tlsfd_server_fd(nullptr), -EINVAL);
  EXPECT_EQ(tlsfd_conn_fd(nullptr), -EINVAL);
  EXPECT_EQ(tlsfd_read(nullptr, nullptr, 0), -EINVAL);
  EXPECT_EQ(tlsfd_write(nullptr, "x", 1), -EINVAL);
  EXPECT_EQ(tlsfd_shutdown(nullptr), -EINVAL);
  EXPECT_EQ(tlsfd_close(nullptr), 0);
  EXPECT_EQ(tlsfd_conn_last_alert(nullptr), -EINVAL);
  EXPECT_EQ(tlsfd_server_require_peer_uid(nullptr, 0), -EINVAL);
  tlsfd_server_stats s{};
  s.struct_size = sizeof(s);
  EXPECT_EQ(tlsfd_server_get_stats(nullptr, &s), -EINVAL);
  tlsfd_server_free(nullptr);

  TempDir dir;
  tlsfd_server* srv = nullptr;
  ASSERT_EQ(tlsfd_server_listen(dir.File("s").c_str(), 0600, &srv), 0);
  EXPECT_EQ(tlsfd_accept(srv, &conn, 0x100), -EINVAL);
  EXPECT_EQ(tlsfd_accept(srv, nullptr, 0), -EINVAL);
  s.struct_size = 8;
  EXPECT_EQ(tlsfd_server_get_stats(srv, &s), -EINVAL);
  EXPECT_EQ(tlsfd_server_set_control_socket(nullptr, "/run/x"), -EINVAL);
  EXPECT_EQ(tlsfd_server_set_control_socket(srv, nullptr), -EINVAL);
  EXPECT_EQ(tlsfd_server_set_control_socket(srv, "relative.sock"), -EINVAL);
  EXPECT_EQ(tlsfd_server_set_control_socket(srv, ("/" + std::string(107, 'a')).c_str()), -EINVAL);
  EXPECT_EQ(tlsfd_server_set_control_socket(srv, ("/" + std::string(106, 'a')).c_str()), 0);
  tlsfd_server_free(srv);
}

TEST(ApiTest, Strings) {
  EXPECT_STREQ(tlsfd_version(), "0.1.0");
  EXPECT_STREQ(tlsfd_strerror(-ECONNRESET), strerrordesc_np(ECONNRESET));
  EXPECT_STREQ(tlsfd_strerror(-EPROTO), "Protocol error");
  EXPECT_STREQ(tlsfd_strerror(0), "Success");
  EXPECT_STREQ(tlsfd_alert_name(0), "close_notify");
  EXPECT_STREQ(tlsfd_alert_name(40), "handshake_failure");
  EXPECT_STREQ(tlsfd_alert_name(112), "unrecognized_name");
  EXPECT_STREQ(tlsfd_alert_name(-1), "unknown");
  EXPECT_STREQ(tlsfd_alert_name(256), "unknown");
  EXPECT_STREQ(tlsfd_alert_name(255), "unknown");
}

TEST(ApiTest, LastErrorIsPerThread) {
  tlsfd_server* s = nullptr;
  EXPECT_EQ(tlsfd_server_subscribe("/nonexistent/x", "web", &s), -ENOENT);
  std::string mine = tlsfd_last_error();
  EXPECT_THAT(mine, HasSubstr("/nonexistent/x"));
  std::thread([] { EXPECT_STREQ(tlsfd_last_error(), ""); }).join();
  EXPECT_EQ(tlsfd_last_error(), mine);
}

// ---------------------------------------------------------------------------
// The C++ wrapper.

TEST(CppWrapperTest, RaiiClosesConnectionsAndFreesServer) {
  TempDir dir;
  std::string path = dir.File("cpp.sock");
  UniqueFd ours;
  {
    tlsfd::Server server;
    ASSERT_EQ(tlsfd::Server::Listen(path.c_str(), 0600, &server), 0);
    ASSERT_TRUE(server);
    absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path, false);
    ASSERT_TRUE(link.ok());
    auto [a, b] = SocketPair(SOCK_STREAM);
    ours = std::move(a);
    SendConnection(link->get(), SampleInfo(61), b.get());
    b.Reset();

    tlsfd::Conn conn;
    ASSERT_EQ(server.Accept(&conn), 0);
    ASSERT_TRUE(conn);
    tlsfd_info info;
    ASSERT_EQ(conn.Info(&info), 0);
    EXPECT_EQ(info.connection_id, 61u);
    EXPECT_EQ(conn.Write("hi", 2), 2);
    tlsfd::Conn moved = std::move(conn);
    EXPECT_FALSE(conn);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_TRUE(moved);
    tlsfd_server_stats stats;
    EXPECT_EQ(server.Stats(&stats), 0);
    EXPECT_EQ(stats.connections_accepted, 1u);
    EXPECT_EQ(server.Accept(&conn, TLSFD_NONBLOCK), -EAGAIN);
  }  // Conn closes, Server frees (and removes its socket file)
  char buf[8];
  EXPECT_EQ(read(ours.get(), buf, sizeof(buf)), 2);
  EXPECT_TRUE(IsClosedByPeer(ours.get()));
  struct stat st;
  EXPECT_NE(lstat(path.c_str(), &st), 0);

  tlsfd::Server failed;
  EXPECT_EQ(tlsfd::Server::Subscribe(dir.File("none").c_str(), "web", &failed), -ENOENT);
  EXPECT_FALSE(failed);
}

}  // namespace
