// tlsfd_read/_write/_shutdown on real kTLS sockets, and RecvTlsRecord /
// SendTlsRecord with real record types. Needs a kernel with the "tls" ULP:
// skipped on the host ("skipped: kernel has no TLS ULP"), and required in the
// VM lane (TLSD_IN_VM=1), where a missing ULP is a failure.
//
// No handshake is needed: both ends of a loopback TCP connection get fixed
// AES-128-GCM keys (A's TX key is B's RX key and the other way round, with
// sequence numbers starting at 0), which is all kTLS needs. The "peer" end
// then plays the TLS client: it sends data, alerts and handshake records
// with SendTlsRecord and reads what the library sends.

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/base/errno_status.h"
#include "common/base/unique_fd.h"
#include "common/ipc/seqpacket.h"
#include "common/ktls/record_io.h"
#include "common/wire/messages.h"
#include "gtest/gtest.h"
#include "libtlsfd/include/tlsfd.h"
#include "tests/libtlsfd/test_util.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

namespace {

using tlsd::UniqueFd;
using tlsfd::testutil::SampleInfo;
using tlsfd::testutil::SendConnection;
using tlsfd::testutil::TcpPair;
using tlsfd::testutil::TempDir;

bool InVm() {
  const char* v = getenv("TLSD_IN_VM");
  return v != nullptr && strcmp(v, "1") == 0;
}

// KernelHasTlsUlp probes setsockopt(TCP_ULP, "tls") on a connected socket.
bool KernelHasTlsUlp(std::string* why) {
  auto [a, b] = TcpPair();
  if (setsockopt(a.get(), SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
    *why = std::string("setsockopt(TCP_ULP, \"tls\"): ") + strerror(errno);
    return false;
  }
  return true;
}

#define REQUIRE_KTLS()                                                             \
  do {                                                                             \
    std::string why;                                                               \
    if (!KernelHasTlsUlp(&why)) {                                                  \
      if (InVm()) FAIL() << "TLSD_IN_VM=1 but the kernel has no TLS ULP: " << why; \
      GTEST_SKIP() << "skipped: kernel has no TLS ULP (" << why << ")";            \
    }                                                                              \
  } while (0)

tls12_crypto_info_aes_gcm_128 Keys(uint16_t version, uint8_t fill) {
  tls12_crypto_info_aes_gcm_128 k{};
  k.info.version = version == 0x0304 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
  k.info.cipher_type = TLS_CIPHER_AES_GCM_128;
  memset(k.key, fill, sizeof(k.key));
  memset(k.iv, fill + 1, sizeof(k.iv));
  memset(k.salt, fill + 2, sizeof(k.salt));
  // rec_seq stays 0 on both ends.
  return k;
}

void InstallKtls(int fd, const tls12_crypto_info_aes_gcm_128& tx,
                 const tls12_crypto_info_aes_gcm_128& rx) {
  ASSERT_EQ(setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")), 0) << strerror(errno);
  ASSERT_EQ(setsockopt(fd, SOL_TLS, TLS_TX, &tx, sizeof(tx)), 0) << strerror(errno);
  ASSERT_EQ(setsockopt(fd, SOL_TLS, TLS_RX, &rx, sizeof(rx)), 0) << strerror(errno);
}

class KtlsTest : public ::testing::TestWithParam<uint16_t> {
 protected:
  void SetUp() override {
    REQUIRE_KTLS();
    const uint16_t version = GetParam();
    auto [app, peer] = TcpPair();
    InstallKtls(app.get(), Keys(version, 0x10), Keys(version, 0x40));
    InstallKtls(peer.get(), Keys(version, 0x40), Keys(version, 0x10));
    peer_ = std::move(peer);

    path_ = dir_.File("backend.sock");
    ASSERT_EQ(tlsfd_server_listen(path_.c_str(), 0600, &server_), 0) << tlsfd_last_error();
    absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path_, false);
    ASSERT_TRUE(link.ok()) << link.status();
    tlsd::ConnectionInfo info = SampleInfo(1, tlsd::DataPath::kKernelSoftware);
    info.tls_version = version;
    info.cipher_suite = version == 0x0304 ? 0x1301 : 0xc02f;
    SendConnection(link->get(), info, app.get());
    app.Reset();
    ASSERT_EQ(tlsfd_accept(server_, &conn_, 0), 0) << tlsfd_last_error();
  }
  void TearDown() override {
    tlsfd_close(conn_);
    tlsfd_server_free(server_);
  }

  // ReAccept replaces conn_ by a new kTLS connection (fresh keys, peer_ its
  // other end) accepted after pointing the server at `control_socket`.
  void ReAccept(const std::string& control_socket) {
    ASSERT_EQ(tlsfd_server_set_control_socket(server_, control_socket.c_str()), 0)
        << tlsfd_last_error();
    const uint16_t version = GetParam();
    auto [app, peer] = TcpPair();
    InstallKtls(app.get(), Keys(version, 0x11), Keys(version, 0x41));
    InstallKtls(peer.get(), Keys(version, 0x41), Keys(version, 0x11));
    peer_ = std::move(peer);
    absl::StatusOr<UniqueFd> link = tlsd::ConnectSeqpacket(path_, false);
    ASSERT_TRUE(link.ok()) << link.status();
    tlsd::ConnectionInfo info = SampleInfo(1, tlsd::DataPath::kKernelSoftware);
    info.tls_version = version;
    info.cipher_suite = version == 0x0304 ? 0x1301 : 0xc02f;
    SendConnection(link->get(), info, app.get());
    app.Reset();
    ASSERT_EQ(tlsfd_accept(server_, &conn_, 0), 0) << tlsfd_last_error();
  }

  void PeerSend(uint8_t type, std::vector<uint8_t> payload) {
    absl::Status s = tlsd::SendTlsRecord(peer_.get(), type, payload);
    ASSERT_TRUE(s.ok()) << s;
  }
  void PeerAlert(uint8_t level, uint8_t description) {
    PeerSend(tlsd::kRecordAlert, {level, description});
  }
  // PeerRecv reads one record on the peer side (waits up to 2 s).
  tlsd::RecordRead PeerRecv(std::string* data) {
    pollfd p{peer_.get(), POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 2000), 1);
    uint8_t buf[20000];
    absl::StatusOr<tlsd::RecordRead> r = tlsd::RecvTlsRecord(peer_.get(), absl::MakeSpan(buf), 0);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) {
      return {};
    }
    data->assign(reinterpret_cast<char*>(buf), r->len);
    return *r;
  }
  bool Tls12() const { return GetParam() == 0x0303; }

  TempDir dir_;
  std::string path_;
  UniqueFd peer_;
  tlsfd_server* server_ = nullptr;
  tlsfd_conn* conn_ = nullptr;
};

TEST_P(KtlsTest, ConnectionIsAcceptedAsKtls) {
  tlsfd_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EQ(tlsfd_conn_info(conn_, &info), 0);
  EXPECT_STREQ(info.tx_path_name, "ktls-sw");
  EXPECT_STREQ(info.rx_path_name, "ktls-sw");
}

// The worker profile on a real kTLS socket: the TX key tlsd installed can
// be read back with getsockopt until tlsfd_restrict_key_access, and not
// after; the connection still carries data. In a forked child (the filter
// stays for good).
TEST_P(KtlsTest, RestrictKeyAccessHidesTheTrafficKeys) {
  const int fd = tlsfd_conn_fd(conn_);
  tlsfd_conn* conn = conn_;
  const tls12_crypto_info_aes_gcm_128 want = Keys(GetParam(), 0x10);
  std::string msg;
  const int code = tlsfd::testutil::InChild(
      [fd, conn, &want](std::string* out) {
        tls12_crypto_info_aes_gcm_128 got{};
        socklen_t len = sizeof(got);
        if (getsockopt(fd, SOL_TLS, TLS_TX, &got, &len) != 0 ||
            memcmp(got.key, want.key, sizeof(want.key)) != 0) {
          *out = std::string("before: the TX key was not readable: ") + strerror(errno);
          return 1;
        }
        if (int rc = tlsfd_restrict_key_access(); rc != 0) {
          *out = std::string("tlsfd_restrict_key_access: ") + tlsfd_strerror(rc);
          return 2;
        }
        memset(&got, 0, sizeof(got));
        len = sizeof(got);
        const int tx = getsockopt(fd, SOL_TLS, TLS_TX, &got, &len);
        const int tx_errno = errno;
        len = sizeof(got);
        const int rx = getsockopt(fd, SOL_TLS, TLS_RX, &got, &len);
        const int rx_errno = errno;
        const ssize_t sent = tlsfd_write(conn, "after", 5);
        *out = "TX " + std::to_string(tx) + "/" + strerror(tx_errno) + ", RX " +
               std::to_string(rx) + "/" + strerror(rx_errno) + ", write " + std::to_string(sent);
        return tx == -1 && tx_errno == EPERM && rx == -1 && rx_errno == EPERM && sent == 5 ? 0 : 3;
      },
      &msg);
  EXPECT_EQ(code, 0) << msg;
  std::string data;
  tlsd::RecordRead r = PeerRecv(&data);
  EXPECT_EQ(r.record_type, tlsd::kRecordApplicationData);
  EXPECT_EQ(data, "after") << "the sandboxed child's write reached the peer";
}

TEST_P(KtlsTest, DataFlowsBothWays) {
  ASSERT_EQ(send(peer_.get(), "hello", 5, 0), 5);
  char buf[64];
  ASSERT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");

  ASSERT_EQ(tlsfd_write(conn_, "world", 5), 5);
  std::string got;
  tlsd::RecordRead r = PeerRecv(&got);
  EXPECT_EQ(r.record_type, tlsd::kRecordApplicationData);
  EXPECT_EQ(got, "world");
  EXPECT_EQ(tlsfd_conn_last_alert(conn_), -ENOMSG);
}

TEST_P(KtlsTest, CloseNotifyIsEndOfStream) {
  ASSERT_EQ(send(peer_.get(), "last", 4, 0), 4);
  PeerAlert(tlsd::kAlertLevelWarning, tlsd::kAlertCloseNotify);
  char buf[64];
  ASSERT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 4);
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 0);
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 0);
  EXPECT_EQ(tlsfd_conn_last_alert(conn_), 0);
  // Half-close: we may still answer.
  EXPECT_EQ(tlsfd_write(conn_, "bye", 3), 3);
  std::string got;
  EXPECT_EQ(PeerRecv(&got).record_type, tlsd::kRecordApplicationData);
  EXPECT_EQ(got, "bye");
}

TEST_P(KtlsTest, AlertIntoOneByteBufferIsCompleted) {
  PeerAlert(tlsd::kAlertLevelWarning, tlsd::kAlertCloseNotify);
  char c;
  EXPECT_EQ(tlsfd_read(conn_, &c, 1), 0);
  EXPECT_EQ(tlsfd_conn_last_alert(conn_), 0);
}

TEST_P(KtlsTest, FatalAlertIsConnReset) {
  PeerAlert(tlsd::kAlertLevelFatal, tlsd::kAlertHandshakeFailure);
  char buf[64];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -ECONNRESET);
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -ECONNRESET);
  EXPECT_EQ(tlsfd_conn_last_alert(conn_), 40);
  EXPECT_STREQ(tlsfd_alert_name(tlsfd_conn_last_alert(conn_)), "handshake_failure");
  EXPECT_EQ(tlsfd_write(conn_, "x", 1), -EPIPE);
  // After a fatal alert nothing more is sent: close sends no close_notify.
  EXPECT_EQ(tlsfd_close(conn_), 0);
  conn_ = nullptr;
  std::string got;
  tlsd::RecordRead r = PeerRecv(&got);
  EXPECT_EQ(r.len, 0u) << "unexpected record of type " << int(r.record_type);
}

TEST_P(KtlsTest, WarningAlert) {
  PeerAlert(tlsd::kAlertLevelWarning, tlsd::kAlertNoRenegotiation);
  ASSERT_EQ(send(peer_.get(), "after", 5, 0), 5);
  char buf[64];
  if (Tls12()) {
    // Skipped, remembered; the data behind it is read.
    ASSERT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 5);
    EXPECT_EQ(std::string(buf, 5), "after");
  } else {
    // TLS 1.3: every non-closure alert is an error.
    EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -ECONNRESET);
  }
  EXPECT_EQ(tlsfd_conn_last_alert(conn_), tlsd::kAlertNoRenegotiation);
}

TEST_P(KtlsTest, UserCanceledThenCloseNotify) {
  PeerAlert(tlsd::kAlertLevelWarning, tlsd::kAlertUserCanceled);
  PeerAlert(tlsd::kAlertLevelWarning, tlsd::kAlertCloseNotify);
  char buf[64];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 0);
  EXPECT_EQ(tlsfd_conn_last_alert(conn_), 0);
}

TEST_P(KtlsTest, TooManyWarningAlertsIsProtocolError) {
  for (int i = 0; i <= 5; ++i) {
    PeerAlert(tlsd::kAlertLevelWarning, tlsd::kAlertUserCanceled);
  }
  char buf[64];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -EPROTO);
  std::string got;
  tlsd::RecordRead r = PeerRecv(&got);
  EXPECT_EQ(r.record_type, tlsd::kRecordAlert);
  EXPECT_EQ(got, std::string("\x02\x0a", 2));  // fatal unexpected_message
}

// FakeTlsd stands in for tlsd's control socket: it takes one CONTROL_RECORD
// per connection, keeps what arrived, and answers with `reply` (a verdict or
// an error). The real tlsd's answers are tested end to end in
// tests/integration/control_record_test.cc; this is the library's side.
class FakeTlsd {
 public:
  struct Got {
    tlsd::ControlRecord record;
    bool had_fd = false;
    std::string fd_peer;  // getpeername of the fd that came with it
  };

  explicit FakeTlsd(const std::string& path) {
    absl::StatusOr<UniqueFd> l = tlsd::ListenSeqpacket(path, 0600);
    EXPECT_TRUE(l.ok()) << l.status();
    if (l.ok()) listener_ = *std::move(l);
  }

  // Serve answers the next `n` connections in a thread, each with the next
  // reply.
  void Serve(std::vector<std::pair<tlsd::MsgType, std::vector<uint8_t>>> replies) {
    thread_ = std::thread([this, replies = std::move(replies)] {
      for (const auto& [type, payload] : replies) {
        pollfd p{listener_.get(), POLLIN, 0};
        if (poll(&p, 1, 10000) != 1) return;
        UniqueFd c(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c.valid()) return;
        absl::StatusOr<tlsd::Frame> f = tlsd::RecvFrame(c.get());
        if (!f.ok() || f->header.type != tlsd::MsgType::kControlRecord) return;
        absl::StatusOr<tlsd::ControlRecord> r = tlsd::ControlRecord::Decode(f->payload);
        if (!r.ok()) return;
        Got g{*std::move(r), f->fd.valid(), ""};
        if (f->fd.valid()) {
          sockaddr_storage ss{};
          socklen_t len = sizeof(ss);
          if (getpeername(f->fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
            g.fd_peer = tlsd::WireAddressFromSockaddr(ss).ToString();
          }
        }
        got_.push_back(std::move(g));
        (void)tlsd::SendFrame(c.get(), type, f->header.request_id, payload);
      }
    });
  }
  // Wait joins the serving thread; then got() is stable.
  const std::vector<Got>& Wait() {
    if (thread_.joinable()) thread_.join();
    return got_;
  }
  ~FakeTlsd() { Wait(); }

 private:
  UniqueFd listener_;
  std::thread thread_;
  std::vector<Got> got_;
};

std::pair<tlsd::MsgType, std::vector<uint8_t>> Verdict(tlsd::ControlAction action,
                                                       std::string sealed = "",
                                                       std::string message = "ok") {
  tlsd::ControlVerdict v;
  v.action = action;
  v.sealed_state = std::move(sealed);
  v.message = std::move(message);
  return {tlsd::MsgType::kControlVerdict, v.Encode()};
}

std::string PeerAddressOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return tlsd::WireAddressFromSockaddr(ss).ToString();
}

std::vector<uint8_t> PostHandshakeMessage(bool tls12) {
  // TLS 1.2 HelloRequest; TLS 1.3 a NewSessionTicket-shaped message. Not a
  // KeyUpdate: kernels that can rekey (6.14+) pause RX after one until new
  // keys are installed (EKEYEXPIRED), which this stand-in tlsd does not do.
  if (tls12) return {tlsd::kHandshakeHelloRequest, 0, 0, 0};
  return {4, 0, 0, 2, 0xaa, 0xbb};
}

TEST_P(KtlsTest, HandshakeRecordGoesToTlsdWithSocketAndSealedStateAndReadGoesOn) {
  // A connection takes its server's control socket at accept: re-accept one
  // after pointing the server at the stand-in.
  tlsfd_close(conn_);
  conn_ = nullptr;
  ASSERT_NO_FATAL_FAILURE(ReAccept(dir_.File("control.sock")));
  FakeTlsd tlsd_(dir_.File("control.sock"));
  tlsd_.Serve({Verdict(tlsd::ControlAction::kContinue, "sealed-2"),
               Verdict(tlsd::ControlAction::kContinue, "sealed-3")});
  const std::vector<uint8_t> msg = PostHandshakeMessage(Tls12());
  PeerSend(tlsd::kRecordHandshake, msg);
  PeerSend(tlsd::kRecordApplicationData, {'a', 'b'});
  char buf[64];
  ASSERT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 2) << tlsfd_last_error();
  EXPECT_EQ(std::string(buf, 2), "ab");
  PeerSend(tlsd::kRecordHandshake, msg);
  PeerSend(tlsd::kRecordApplicationData, {'c'});
  ASSERT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 1) << tlsfd_last_error();
  const std::vector<FakeTlsd::Got>& got = tlsd_.Wait();
  ASSERT_EQ(got.size(), 2u);
  for (const FakeTlsd::Got& g : got) {
    EXPECT_EQ(g.record.record_type, tlsd::kRecordHandshake);
    EXPECT_EQ(g.record.payload, std::string(msg.begin(), msg.end()));
    EXPECT_TRUE(g.had_fd);
    EXPECT_EQ(g.fd_peer, PeerAddressOf(peer_.get())) << "the fd is the connection's socket";
  }
  EXPECT_EQ(got[0].record.sealed_state,
            SampleInfo(1, tlsd::DataPath::kKernelSoftware).sealed_state);
  EXPECT_EQ(got[1].record.sealed_state, "sealed-2") << "each verdict's state replaces the last";
}

TEST_P(KtlsTest, HandshakeRecordLargerThanTheBufferReachesTlsdWhole) {
  tlsfd_close(conn_);
  conn_ = nullptr;
  ASSERT_NO_FATAL_FAILURE(ReAccept(dir_.File("control.sock")));
  FakeTlsd tlsd_(dir_.File("control.sock"));
  tlsd_.Serve({Verdict(tlsd::ControlAction::kContinue, "s")});
  // Two messages in one record, 4 + 300 and 4 + 1 bytes.
  std::vector<uint8_t> rec = {4, 0, 1, 44};
  rec.resize(4 + 300, 0x5a);
  for (uint8_t b : PostHandshakeMessage(Tls12())) rec.push_back(b);
  PeerSend(tlsd::kRecordHandshake, rec);
  PeerSend(tlsd::kRecordApplicationData, {'z'});
  char buf[3];
  ASSERT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 1) << tlsfd_last_error();
  EXPECT_EQ(buf[0], 'z');
  const std::vector<FakeTlsd::Got>& got = tlsd_.Wait();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].record.payload, std::string(rec.begin(), rec.end()));
}

TEST_P(KtlsTest, EndOfStreamVerdictEndsTheReadAndTheWrites) {
  tlsfd_close(conn_);
  conn_ = nullptr;
  ASSERT_NO_FATAL_FAILURE(ReAccept(dir_.File("control.sock")));
  FakeTlsd tlsd_(dir_.File("control.sock"));
  tlsd_.Serve({Verdict(tlsd::ControlAction::kEndOfStream, "", "kernel cannot rekey")});
  PeerSend(tlsd::kRecordHandshake, PostHandshakeMessage(Tls12()));
  char buf[64];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 0);
  EXPECT_STREQ(tlsfd_last_error(), "kernel cannot rekey");
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 0);
  EXPECT_EQ(tlsfd_write(conn_, "x", 1), -EPIPE) << "tlsd sent close_notify: nothing may follow";
}

TEST_P(KtlsTest, TlsdRefusalIsEprotoWithTlsdsReason) {
  tlsfd_close(conn_);
  conn_ = nullptr;
  ASSERT_NO_FATAL_FAILURE(ReAccept(dir_.File("control.sock")));
  FakeTlsd tlsd_(dir_.File("control.sock"));
  tlsd::ErrorMsg err{EPERM, "sealed state does not belong to this socket"};
  tlsd_.Serve({{tlsd::MsgType::kError, err.Encode()}});
  PeerSend(tlsd::kRecordHandshake, PostHandshakeMessage(Tls12()));
  char buf[64];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -EPROTO);
  EXPECT_NE(std::string(tlsfd_last_error()).find("does not belong"), std::string::npos)
      << tlsfd_last_error();
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -EPROTO);
}

TEST_P(KtlsTest, HandshakeRecordWithTlsdUnreachableIsEprotoNamingTheSocket) {
  tlsfd_close(conn_);
  conn_ = nullptr;
  const std::string nowhere = dir_.File("no-tlsd.sock");
  ASSERT_NO_FATAL_FAILURE(ReAccept(nowhere));
  PeerSend(tlsd::kRecordHandshake, PostHandshakeMessage(Tls12()));
  char buf[64];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -EPROTO);
  EXPECT_NE(std::string(tlsfd_last_error()).find(nowhere), std::string::npos) << tlsfd_last_error();
  EXPECT_EQ(tlsfd_conn_last_alert(conn_), -ENOMSG);
}

TEST_P(KtlsTest, UnexpectedRecordTypeIsAnsweredWithUnexpectedMessage) {
  PeerSend(tlsd::kRecordChangeCipherSpec, {1});
  char buf[64];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), -EPROTO);
  std::string got;
  tlsd::RecordRead r = PeerRecv(&got);
  EXPECT_EQ(r.record_type, tlsd::kRecordAlert);
  EXPECT_EQ(got, std::string("\x02\x0a", 2));
  EXPECT_EQ(tlsfd_write(conn_, "x", 1), -EPIPE);
}

TEST_P(KtlsTest, ShutdownSendsCloseNotifyThenFin) {
  ASSERT_EQ(tlsfd_write(conn_, "body", 4), 4);
  ASSERT_EQ(tlsfd_shutdown(conn_), 0);
  EXPECT_EQ(tlsfd_shutdown(conn_), 0);
  EXPECT_EQ(tlsfd_write(conn_, "x", 1), -EPIPE);
  std::string got;
  tlsd::RecordRead r = PeerRecv(&got);
  EXPECT_EQ(r.record_type, tlsd::kRecordApplicationData);
  EXPECT_EQ(got, "body");
  r = PeerRecv(&got);
  EXPECT_EQ(r.record_type, tlsd::kRecordAlert);
  EXPECT_EQ(got, std::string("\x01\x00", 2));
  r = PeerRecv(&got);
  EXPECT_EQ(r.len, 0u);  // FIN
  // Reading still works after our shutdown.
  ASSERT_EQ(send(peer_.get(), "more", 4, 0), 4);
  char buf[8];
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 4);
}

TEST_P(KtlsTest, CloseSendsCloseNotify) {
  EXPECT_EQ(tlsfd_close(conn_), 0);
  conn_ = nullptr;
  std::string got;
  tlsd::RecordRead r = PeerRecv(&got);
  EXPECT_EQ(r.record_type, tlsd::kRecordAlert);
  EXPECT_EQ(got, std::string("\x01\x00", 2));
}

TEST_P(KtlsTest, PlainReadGetsEioOnAlert) {
  // PLATFORM-FACTS.md, checked: why tlsfd_read uses recvmsg.
  PeerAlert(tlsd::kAlertLevelWarning, tlsd::kAlertCloseNotify);
  pollfd p{tlsfd_conn_fd(conn_), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  char buf[8];
  EXPECT_EQ(read(tlsfd_conn_fd(conn_), buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(tlsfd_read(conn_, buf, sizeof(buf)), 0);
}

INSTANTIATE_TEST_SUITE_P(Versions, KtlsTest, ::testing::Values(0x0303, 0x0304),
                         [](const ::testing::TestParamInfo<uint16_t>& info) {
                           return info.param == 0x0303 ? "Tls12" : "Tls13";
                         });

}  // namespace
