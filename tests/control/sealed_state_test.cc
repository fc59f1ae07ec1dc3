// The sealed per-connection state (tlsd/control/sealed_state.h) and the
// checks AnswerControlRecord makes before it touches a socket. Everything
// here runs on any host: no kTLS is needed (control_records_test has the
// kTLS half).

#include "tlsd/control/sealed_state.h"

#include <sys/mman.h>
#include <unistd.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/unique_fd.h"
#include "common/ktls/record_io.h"
#include "common/wire/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ktls/ktls_test_util.h"
#include "tests/support/status_matchers.h"
#include "tlsd/control/control_records.h"

namespace tlsd {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::tlsd::testing::IsOk;
using ::tlsd::testing::StatusIs;

SecretBytes Filled(size_t len, uint8_t first) {
  SecretBytes s(len);
  for (size_t i = 0; i < len; ++i) s.data()[i] = static_cast<uint8_t>(first + i);
  return s;
}

WireAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  WireAddress w;
  w.family = 4;
  w.addr[0] = a;
  w.addr[1] = b;
  w.addr[2] = c;
  w.addr[3] = d;
  w.port = port;
  return w;
}

WireAddress V6Loopback(uint16_t port) {
  WireAddress w;
  w.family = 6;
  w.addr[15] = 1;
  w.port = port;
  return w;
}

// A state with a distinct, non-default value in every field, so a field the
// codec drops or swaps shows up.
ConnState FullState() {
  ConnState s;
  s.is_server = false;  // the default is true
  s.tls_version = 0x0304;
  s.cipher_suite = 0x1302;  // TLS_AES_256_GCM_SHA384
  s.connection_id = 0x0123456789abcdefULL;
  s.rx_generation = 0x01020304;
  s.tx_generation = 0xa0b0c0d0;
  s.rx_secret = Filled(48, 0x10);
  s.tx_secret = Filled(48, 0x80);
  for (size_t i = 0; i < s.rx_key_hash.size(); ++i) {
    s.rx_key_hash[i] = static_cast<uint8_t>(0x40 + i);
    s.tx_key_hash[i] = static_cast<uint8_t>(0xc0 + i);
  }
  s.window_records = 0xfffffffe;
  s.window_start_ms = 0xfedcba9876543210ULL;
  return s;
}

std::vector<uint8_t> SpanBytes(const SecretBytes& s) {
  return std::vector<uint8_t>(s.span().begin(), s.span().end());
}

void ExpectSameState(const ConnState& got, const ConnState& want) {
  EXPECT_EQ(got.is_server, want.is_server);
  EXPECT_EQ(got.tls_version, want.tls_version);
  EXPECT_EQ(got.cipher_suite, want.cipher_suite);
  EXPECT_EQ(got.connection_id, want.connection_id);
  EXPECT_EQ(got.rx_generation, want.rx_generation);
  EXPECT_EQ(got.tx_generation, want.tx_generation);
  EXPECT_EQ(SpanBytes(got.rx_secret), SpanBytes(want.rx_secret));
  EXPECT_EQ(SpanBytes(got.tx_secret), SpanBytes(want.tx_secret));
  EXPECT_EQ(got.rx_key_hash, want.rx_key_hash);
  EXPECT_EQ(got.tx_key_hash, want.tx_key_hash);
  EXPECT_EQ(got.window_records, want.window_records);
  EXPECT_EQ(got.window_start_ms, want.window_start_ms);
}

const WireAddress kLocal = V4(192, 0, 2, 1, 443);
const WireAddress kPeer = V4(198, 51, 100, 7, 50123);

// ---------------------------------------------------------------------------
// Seal / Open

TEST(SealerTest, RoundTripPreservesEveryField) {
  auto sealer = Sealer::Random();
  const ConnState state = FullState();
  const std::string blob = sealer->Seal(state, kLocal, kPeer);
  // format(1) | nonce(12) | ciphertext | tag(16)
  EXPECT_EQ(blob[0], 1);
  absl::StatusOr<ConnState> opened = sealer->Open(blob, kLocal, kPeer);
  ASSERT_THAT(opened, IsOk());
  ExpectSameState(*opened, state);
}

// A restart: the key goes through a sealed memfd (systemd's fd store) and
// the next process opens the blobs the previous one made; another key does
// not.
TEST(SealerTest, KeyPassedThroughAMemfdOpensTheSameBlobs) {
  auto before = Sealer::Random();
  const std::string blob = before->Seal(FullState(), kLocal, kPeer);
  absl::StatusOr<UniqueFd> memfd = before->KeyMemfd();
  ASSERT_THAT(memfd, IsOk());
  // The memfd cannot be changed once made.
  EXPECT_LT(write(memfd->get(), "x", 1), 0);
  absl::StatusOr<std::unique_ptr<Sealer>> after = Sealer::FromFd(memfd->get());
  ASSERT_THAT(after, IsOk());
  absl::StatusOr<ConnState> opened = (*after)->Open(blob, kLocal, kPeer);
  ASSERT_THAT(opened, IsOk());
  ExpectSameState(*opened, FullState());
  EXPECT_FALSE(Sealer::Random()->Open(blob, kLocal, kPeer).ok());
  // A file of the wrong size is not a key.
  int fd = memfd_create("short", MFD_CLOEXEC);
  ASSERT_EQ(write(fd, "short", 5), 5);
  EXPECT_FALSE(Sealer::FromFd(fd).ok());
  close(fd);
}

TEST(SealerTest, RoundTripTls12StateWithoutSecrets) {
  auto sealer = Sealer::Random();
  ConnState state;
  state.tls_version = 0x0303;
  state.cipher_suite = 0xc02b;  // ECDHE-ECDSA-AES128-GCM-SHA256
  state.connection_id = 7;
  state.rx_key_hash[0] = 1;
  state.tx_key_hash[31] = 2;
  const WireAddress local = V6Loopback(8443), peer = V6Loopback(40000);
  absl::StatusOr<ConnState> opened = sealer->Open(sealer->Seal(state, local, peer), local, peer);
  ASSERT_THAT(opened, IsOk());
  ExpectSameState(*opened, state);
  EXPECT_TRUE(opened->rx_secret.empty());
  EXPECT_TRUE(opened->tx_secret.empty());
}

TEST(SealerTest, SecretsOfDifferentLengthsRoundTrip) {
  auto sealer = Sealer::Random();
  for (size_t len : {size_t{1}, size_t{32}, size_t{48}, size_t{64}, size_t{255}}) {
    ConnState state = FullState();
    state.rx_secret = Filled(len, 1);
    state.tx_secret = Filled(len == 1 ? 0 : len - 1, 2);
    absl::StatusOr<ConnState> opened =
        sealer->Open(sealer->Seal(state, kLocal, kPeer), kLocal, kPeer);
    ASSERT_THAT(opened, IsOk()) << "secret length " << len;
    ExpectSameState(*opened, state);
  }
}

TEST(SealerTest, EachSealUsesAFreshNonce) {
  auto sealer = Sealer::Random();
  const ConnState state = FullState();
  const std::string a = sealer->Seal(state, kLocal, kPeer);
  const std::string b = sealer->Seal(state, kLocal, kPeer);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_NE(a.substr(1, 12), b.substr(1, 12));
  EXPECT_NE(a, b);
}

TEST(SealerTest, OpenWithOtherAddressesFails) {
  auto sealer = Sealer::Random();
  const std::string blob = sealer->Seal(FullState(), kLocal, kPeer);

  struct Case {
    const char* what;
    WireAddress local;
    WireAddress peer;
  };
  std::vector<Case> cases;
  {
    WireAddress l = kLocal;
    l.port = 444;
    cases.push_back({"other local port", l, kPeer});
    l = kLocal;
    l.addr[3] = 2;
    cases.push_back({"other local address", l, kPeer});
    l = kLocal;
    l.family = 6;
    cases.push_back({"other local family", l, kPeer});
    WireAddress p = kPeer;
    p.port = 50124;
    cases.push_back({"other peer port", kLocal, p});
    p = kPeer;
    p.addr[0] = 203;
    cases.push_back({"other peer address", kLocal, p});
    p = kPeer;
    p.addr[15] = 1;  // beyond the IPv4 bytes: still bound
    cases.push_back({"other peer address bytes past the IPv4 part", kLocal, p});
    cases.push_back({"local and peer swapped", kPeer, kLocal});
    cases.push_back({"unknown addresses", WireAddress(), WireAddress()});
  }
  for (const Case& c : cases) {
    EXPECT_THAT(sealer->Open(blob, c.local, c.peer),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not authenticate")))
        << c.what;
  }
  // And the right ones still work.
  EXPECT_THAT(sealer->Open(blob, kLocal, kPeer), IsOk());
}

TEST(SealerTest, EverySingleFlippedByteFails) {
  auto sealer = Sealer::Random();
  const std::string blob = sealer->Seal(FullState(), kLocal, kPeer);
  for (size_t i = 0; i < blob.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::string bad = blob;
      bad[i] = static_cast<char>(static_cast<uint8_t>(bad[i]) ^ mask);
      EXPECT_THAT(sealer->Open(bad, kLocal, kPeer), StatusIs(absl::StatusCode::kInvalidArgument))
          << "byte " << i << " of " << blob.size() << " xor " << int{mask};
    }
  }
}

TEST(SealerTest, AnotherSealersBlobFails) {
  auto a = Sealer::Random();
  auto b = Sealer::Random();
  const std::string blob = a->Seal(FullState(), kLocal, kPeer);
  EXPECT_THAT(b->Open(blob, kLocal, kPeer),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not authenticate")));
  EXPECT_THAT(a->Open(blob, kLocal, kPeer), IsOk());
}

TEST(SealerTest, TruncatedOrExtendedBlobFails) {
  auto sealer = Sealer::Random();
  const std::string blob = sealer->Seal(FullState(), kLocal, kPeer);
  for (size_t len = 0; len < blob.size(); ++len) {
    EXPECT_THAT(sealer->Open(blob.substr(0, len), kLocal, kPeer),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "first " << len << " of " << blob.size() << " bytes";
  }
  // Dropping the front (format byte) instead of the end.
  EXPECT_THAT(sealer->Open(blob.substr(1), kLocal, kPeer),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(sealer->Open(blob + std::string(1, '\0'), kLocal, kPeer),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(sealer->Open("", kLocal, kPeer),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too short")));
}

// ---------------------------------------------------------------------------
// FromFile

class SealerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealed_state_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_) ::unlink(f.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string WriteKey(const std::string& name, size_t len) {
    const std::string path = absl::StrCat(dir_, "/", name);
    files_.push_back(path);
    std::string bytes(len, '\0');
    for (size_t i = 0; i < len; ++i) bytes[i] = static_cast<char>(i * 7 + 3);
    FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (f != nullptr) {
      EXPECT_EQ(std::fwrite(bytes.data(), 1, len, f), len);
      std::fclose(f);
    }
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(SealerFileTest, ThirtyOneBytesIsAClearError) {
  const std::string path = WriteKey("short.key", 31);
  EXPECT_THAT(Sealer::FromFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("must be 32 bytes, is 31"))));
}

TEST_F(SealerFileTest, ThirtyThreeBytesIsAClearError) {
  const std::string path = WriteKey("long.key", 33);
  EXPECT_THAT(Sealer::FromFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("must be 32 bytes, is 33"))));
}

TEST_F(SealerFileTest, EmptyFileIsAClearError) {
  const std::string path = WriteKey("empty.key", 0);
  EXPECT_THAT(Sealer::FromFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is 0")));
}

TEST_F(SealerFileTest, MissingFileIsAClearError) {
  const std::string path = absl::StrCat(dir_, "/no-such.key");
  EXPECT_THAT(Sealer::FromFile(path),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(path), HasSubstr("cannot open sealing key"))));
}

// A restarted tlsd that loads the same key opens the blobs of the old one.
TEST_F(SealerFileTest, SameKeyFileOpensTheOtherInstancesBlobs) {
  const std::string path = WriteKey("good.key", 32);
  absl::StatusOr<std::unique_ptr<Sealer>> before = Sealer::FromFile(path);
  absl::StatusOr<std::unique_ptr<Sealer>> after = Sealer::FromFile(path);
  ASSERT_THAT(before, IsOk());
  ASSERT_THAT(after, IsOk());
  const ConnState state = FullState();
  absl::StatusOr<ConnState> opened =
      (*after)->Open((*before)->Seal(state, kLocal, kPeer), kLocal, kPeer);
  ASSERT_THAT(opened, IsOk());
  ExpectSameState(*opened, state);
  // A random key is not that key.
  EXPECT_THAT(Sealer::Random()->Open((*before)->Seal(state, kLocal, kPeer), kLocal, kPeer),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---------------------------------------------------------------------------
// Sockets without kTLS

// ExpectNothingArrives checks that `reader` has no bytes queued from
// `writer`: `writer` sends one marker byte, which must be the first byte
// `reader` gets (loopback keeps the order, so anything sent before the marker
// would come first).
void ExpectNothingArrives(int writer, int reader) {
  const char marker = 'M';
  ASSERT_EQ(::send(writer, &marker, 1, MSG_NOSIGNAL), 1);
  char buf[64];
  const ssize_t n = ::recv(reader, buf, sizeof(buf), 0);
  ASSERT_GE(n, 1);
  EXPECT_EQ(n, 1) << "the peer received " << n - 1 << " byte(s) before the marker";
  EXPECT_EQ(buf[0], marker);
}

TEST(KernelKeyHashTest, TcpSocketWithoutKtlsFailsAndSaysWhy) {
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  // Without the TLS ULP, SOL_TLS is not a level the TCP socket knows: the
  // kernel says EOPNOTSUPP (IPv4) and the error names the option asked for.
  EXPECT_THAT(KernelKeyHash(pair.server.get(), /*tx=*/false),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("getsockopt(TLS_RX)")));
  EXPECT_THAT(KernelKeyHash(pair.server.get(), /*tx=*/true),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("getsockopt(TLS_TX)")));
}

TEST(SocketAddressesTest, ReadsBothEndsOfALoopbackConnection) {
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  WireAddress s_local, s_peer, c_local, c_peer;
  ASSERT_THAT(SocketAddresses(pair.server.get(), &s_local, &s_peer), IsOk());
  ASSERT_THAT(SocketAddresses(pair.client.get(), &c_local, &c_peer), IsOk());
  EXPECT_EQ(s_local, c_peer);
  EXPECT_EQ(s_peer, c_local);
  EXPECT_EQ(s_local.family, 4);
  EXPECT_EQ(s_local.ToString().rfind("127.0.0.1:", 0), 0u) << s_local.ToString();
}

ControlRecord CloseNotify(std::string blob) {
  ControlRecord r;
  r.record_type = kRecordAlert;
  r.payload = std::string("\x01\x00", 2);
  r.sealed_state = std::move(blob);
  return r;
}

TEST(AnswerControlRecordTest, PipeIsInvalidArgument) {
  auto sealer = Sealer::Random();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  EXPECT_THAT(AnswerControlRecord(*sealer, ControlRecordPolicy(),
                                  CloseNotify(sealer->Seal(FullState(), kLocal, kPeer)), wr.get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  char c;
  EXPECT_EQ(::read(rd.get(), &c, 1), -1) << "something was written into the pipe";
  EXPECT_EQ(errno, EAGAIN);
}

TEST(AnswerControlRecordTest, UnixStreamSocketIsInvalidArgument) {
  auto sealer = Sealer::Random();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  EXPECT_THAT(AnswerControlRecord(*sealer, ControlRecordPolicy(),
                                  CloseNotify(sealer->Seal(FullState(), kLocal, kPeer)), a.get()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a TCP socket")));
  ExpectNothingArrives(a.get(), b.get());
}

TEST(AnswerControlRecordTest, UnixDatagramSocketIsInvalidArgument) {
  auto sealer = Sealer::Random();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  EXPECT_THAT(AnswerControlRecord(*sealer, ControlRecordPolicy(),
                                  CloseNotify(sealer->Seal(FullState(), kLocal, kPeer)), a.get()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a TCP socket")));
}

// The header promises kInvalidArgument for "a socket that is not a connected
// kTLS TCP socket": an unconnected TCP socket is one.
TEST(AnswerControlRecordTest, UnconnectedTcpSocketIsInvalidArgument) {
  auto sealer = Sealer::Random();
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  EXPECT_THAT(AnswerControlRecord(*sealer, ControlRecordPolicy(),
                                  CloseNotify(sealer->Seal(FullState(), kLocal, kPeer)), s.get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// A connected TCP socket without kTLS, with a blob that is right for its
// addresses (so only the kTLS check can refuse): a clean error, and nothing
// is sent (SendTlsRecord on a socket without kTLS TX would put the alert on
// the wire in clear).
TEST(AnswerControlRecordTest, TcpWithoutKtlsIsInvalidArgumentAndSendsNothing) {
  auto sealer = Sealer::Random();
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  WireAddress local, peer;
  ASSERT_THAT(SocketAddresses(pair.server.get(), &local, &peer), IsOk());
  ConnState state = FullState();
  state.is_server = true;
  state.rx_generation = state.tx_generation = 0;
  state.window_records = 0;
  state.window_start_ms = 0;
  for (uint8_t type : {kRecordAlert, kRecordHandshake, kRecordChangeCipherSpec}) {
    ControlRecord r = CloseNotify(sealer->Seal(state, local, peer));
    r.record_type = type;
    if (type == kRecordHandshake) r.payload = std::string("\x18\x00\x00\x01\x01", 5);
    EXPECT_THAT(AnswerControlRecord(*sealer, ControlRecordPolicy(), r, pair.server.get()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a kTLS socket")))
        << RecordTypeName(type);
  }
  ExpectNothingArrives(pair.server.get(), pair.client.get());
}

// The same socket with a blob that is no blob (what a worker holding a
// relayed connection has): refused before anything is sent. Either refusal
// is right here (the blob is bad and the socket has no kTLS); the point is
// that the peer sees nothing.
TEST(AnswerControlRecordTest, TcpWithoutKtlsAndNoBlobSendsNothing) {
  auto sealer = Sealer::Random();
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  EXPECT_THAT(
      AnswerControlRecord(*sealer, ControlRecordPolicy(), CloseNotify(""), pair.server.get()),
      StatusIs(AnyOf(absl::StatusCode::kInvalidArgument, absl::StatusCode::kPermissionDenied)));
  EXPECT_THAT(
      AnswerControlRecord(*sealer, ControlRecordPolicy(),
                          CloseNotify(Sealer::Random()->Seal(FullState(), kLocal, kPeer)),
                          pair.server.get()),
      StatusIs(AnyOf(absl::StatusCode::kInvalidArgument, absl::StatusCode::kPermissionDenied)));
  ExpectNothingArrives(pair.server.get(), pair.client.get());
}

TEST(SealForHandoffTest, TcpWithoutKtlsFails) {
  auto sealer = Sealer::Random();
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  EXPECT_THAT(SealForHandoff(*sealer, pair.server.get(), true, 1, 0x0304, 0x1301, SecretBytes(),
                             SecretBytes()),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("getsockopt(TLS_")));
  ExpectNothingArrives(pair.server.get(), pair.client.get());
}

}  // namespace
}  // namespace tlsd
