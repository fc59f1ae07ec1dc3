// common/ktls/record_io on the host: the syscall wrappers over sockets
// without kTLS (no cmsg: application data), and the cmsg parsing on
// hand-built control messages. The real kTLS path is in ktls_test.cc.

#include "common/ktls/record_io.h"

#include <errno.h>
#include <linux/tls.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/base/errno_status.h"
#include "gtest/gtest.h"
#include "tests/libtlsfd/test_util.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace tlsd {
namespace {

using tlsfd::testutil::CountOpenFds;
using tlsfd::testutil::IsClosedByPeer;
using tlsfd::testutil::SendRaw;
using tlsfd::testutil::SocketPair;

struct AlertRow {
  uint8_t description;
  const char* name;
};

TEST(AlertNameTest, KnownDescriptions) {
  const AlertRow rows[] = {
      {0, "close_notify"},
      {10, "unexpected_message"},
      {20, "bad_record_mac"},
      {21, "decryption_failed"},
      {22, "record_overflow"},
      {30, "decompression_failure"},
      {40, "handshake_failure"},
      {41, "no_certificate"},
      {42, "bad_certificate"},
      {43, "unsupported_certificate"},
      {44, "certificate_revoked"},
      {45, "certificate_expired"},
      {46, "certificate_unknown"},
      {47, "illegal_parameter"},
      {48, "unknown_ca"},
      {49, "access_denied"},
      {50, "decode_error"},
      {51, "decrypt_error"},
      {60, "export_restriction"},
      {70, "protocol_version"},
      {71, "insufficient_security"},
      {80, "internal_error"},
      {86, "inappropriate_fallback"},
      {90, "user_canceled"},
      {100, "no_renegotiation"},
      {109, "missing_extension"},
      {110, "unsupported_extension"},
      {111, "certificate_unobtainable"},
      {112, "unrecognized_name"},
      {113, "bad_certificate_status_response"},
      {114, "bad_certificate_hash_value"},
      {115, "unknown_psk_identity"},
      {116, "certificate_required"},
      {120, "no_application_protocol"},
  };
  for (const AlertRow& r : rows) {
    EXPECT_STREQ(AlertName(r.description), r.name);
  }
  EXPECT_STREQ(AlertName(kAlertHandshakeFailure), "handshake_failure");
}

TEST(AlertNameTest, UnassignedIsUnknown) {
  for (uint8_t d : {1, 11, 23, 52, 87, 99, 121, 200, 255}) {
    EXPECT_STREQ(AlertName(d), "unknown") << int(d);
  }
}

TEST(RecordTypeNameTest, Names) {
  EXPECT_STREQ(RecordTypeName(20), "change_cipher_spec");
  EXPECT_STREQ(RecordTypeName(21), "alert");
  EXPECT_STREQ(RecordTypeName(22), "handshake");
  EXPECT_STREQ(RecordTypeName(23), "application_data");
  EXPECT_STREQ(RecordTypeName(24), "heartbeat");
  EXPECT_STREQ(RecordTypeName(99), "unknown");
  EXPECT_STREQ(HandshakeTypeName(24), "key_update");
  EXPECT_STREQ(HandshakeTypeName(4), "new_session_ticket");
  EXPECT_STREQ(HandshakeTypeName(0), "hello_request");
  EXPECT_STREQ(HandshakeTypeName(2), "unknown");
}

// A msghdr with hand-built control data, as the kernel would fill it.
struct FakeMsg {
  alignas(cmsghdr) char control[256] = {};
  msghdr msg{};
  size_t used = 0;

  FakeMsg() {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  void Add(int level, int type, const void* data, size_t len) {
    msg.msg_controllen = used + CMSG_SPACE(len);
    cmsghdr* c = reinterpret_cast<cmsghdr*>(control + used);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), data, len);
    used += CMSG_SPACE(len);
  }
  void Finish() {
    msg.msg_controllen = used;
    if (used == 0) {
      msg.msg_control = nullptr;
    }
  }
};

TEST(RecordTypeFromControlTest, NoCmsgIsApplicationData) {
  FakeMsg m;
  m.Finish();
  absl::StatusOr<uint8_t> t = RecordTypeFromControl(m.msg);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, kRecordApplicationData);
}

TEST(RecordTypeFromControlTest, ReadsTheRecordType) {
  for (uint8_t type : {kRecordAlert, kRecordHandshake, kRecordApplicationData,
                       kRecordChangeCipherSpec, uint8_t{99}}) {
    FakeMsg m;
    m.Add(SOL_TLS, TLS_GET_RECORD_TYPE, &type, 1);
    m.Finish();
    absl::StatusOr<uint8_t> t = RecordTypeFromControl(m.msg);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(*t, type);
  }
}

TEST(RecordTypeFromControlTest, IgnoresOtherCmsgs) {
  FakeMsg m;
  int cred[3] = {1, 2, 3};
  m.Add(SOL_SOCKET, SCM_CREDENTIALS, cred, sizeof(cred));
  uint8_t type = kRecordAlert;
  m.Add(SOL_TLS, TLS_GET_RECORD_TYPE, &type, 1);
  uint8_t other = 7;
  m.Add(SOL_TLS, TLS_SET_RECORD_TYPE, &other, 1);  // not a receive cmsg
  m.Finish();
  absl::StatusOr<uint8_t> t = RecordTypeFromControl(m.msg);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, kRecordAlert);
}

TEST(RecordTypeFromControlTest, WrongSizeIsEio) {
  FakeMsg m;
  uint32_t type = 21;
  m.Add(SOL_TLS, TLS_GET_RECORD_TYPE, &type, sizeof(type));
  m.Finish();
  absl::StatusOr<uint8_t> t = RecordTypeFromControl(m.msg);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(StatusToErrno(t.status()), EIO);
}

TEST(RecordTypeFromControlTest, TruncatedControlIsEio) {
  FakeMsg m;
  uint8_t type = 21;
  m.Add(SOL_TLS, TLS_GET_RECORD_TYPE, &type, 1);
  m.Finish();
  m.msg.msg_flags = MSG_CTRUNC;
  absl::StatusOr<uint8_t> t = RecordTypeFromControl(m.msg);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(StatusToErrno(t.status()), EIO);
}

TEST(RecvTlsRecordTest, PlainSocketGivesApplicationDataAndEof) {
  auto [a, b] = SocketPair(SOCK_STREAM);
  ASSERT_EQ(write(b.get(), "hello", 5), 5);
  uint8_t buf[16];
  absl::StatusOr<RecordRead> r = RecvTlsRecord(a.get(), absl::MakeSpan(buf), 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->record_type, kRecordApplicationData);
  ASSERT_EQ(r->len, 5u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 5), "hello");

  b.Reset();
  r = RecvTlsRecord(a.get(), absl::MakeSpan(buf), 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->len, 0u);
}

TEST(RecvTlsRecordTest, EagainAndBadFdAreErrnoStatuses) {
  auto [a, b] = SocketPair(SOCK_STREAM);
  uint8_t buf[4];
  absl::StatusOr<RecordRead> r = RecvTlsRecord(a.get(), absl::MakeSpan(buf), MSG_DONTWAIT);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(StatusToErrno(r.status()), EAGAIN);
  r = RecvTlsRecord(-1, absl::MakeSpan(buf), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(StatusToErrno(r.status()), EBADF);
}

TEST(RecvTlsRecordTest, StrayFdsAreClosed) {
  auto [a, b] = SocketPair(SOCK_STREAM);
  int fds_before = CountOpenFds();
  {
    auto [x, y] = SocketPair(SOCK_STREAM);
    const uint8_t data[] = {'z'};
    SendRaw(b.get(), data, y.get());
    y.Reset();
    uint8_t buf[4];
    absl::StatusOr<RecordRead> r = RecvTlsRecord(a.get(), absl::MakeSpan(buf), 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->len, 1u);
    EXPECT_TRUE(IsClosedByPeer(x.get()));
  }
  EXPECT_EQ(CountOpenFds(), fds_before);
}

TEST(SendTlsRecordTest, NonKtlsSocketGetsThePayloadAsBytes) {
  // AF_UNIX ignores the SOL_TLS cmsg, which makes the sendmsg framing visible.
  auto [a, b] = SocketPair(SOCK_STREAM);
  const uint8_t close_notify[2] = {kAlertLevelWarning, kAlertCloseNotify};
  absl::Status s = SendTlsRecord(a.get(), kRecordAlert, close_notify);
  ASSERT_TRUE(s.ok()) << s;
  uint8_t buf[4];
  ASSERT_EQ(read(b.get(), buf, sizeof(buf)), 2);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(buf[1], 0);
}

TEST(SendTlsRecordTest, PeerGoneIsEpipeWithoutSignal) {
  auto [a, b] = SocketPair(SOCK_STREAM);
  b.Reset();
  const uint8_t alert[2] = {2, 80};
  absl::Status s = SendTlsRecord(a.get(), kRecordAlert, alert);  // no SIGPIPE: MSG_NOSIGNAL
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(StatusToErrno(s), EPIPE);
  EXPECT_NE(std::string(s.message()).find("alert"), std::string::npos) << s;
}

}  // namespace
}  // namespace tlsd
