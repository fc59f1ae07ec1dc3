// tlsd's control-record service on real kTLS sockets (ARCHITECTURE.md
// "Control records" and "Per-connection state after handoff").
//
// Each test makes a loopback TCP connection, runs an OpenSSL handshake on
// both ends with kTLS installed on both (as ktls_test does), seals the server
// end's state with SealForHandoff as the handshaker does, frees both SSLs,
// and then plays the worker: it reads the server socket with RecvTlsRecord
// and hands every record that is not application data to
// AnswerControlRecord, always with the newest blob. The client end is driven
// by hand (SendTlsRecord, and for TLS 1.3 KeyUpdate its own rekeys from the
// captured secrets), and checks what tlsd put on the wire.
//
// TLS 1.3 rekey exists only on Linux 6.14+ (PLATFORM-FACTS.md): on older
// kernels the KeyUpdate tests check the clean close instead, and the one
// replay test that needs a rekey skips, naming the kernel.
//
// On a host without the TLS ULP every test skips with "skipped: kernel has no
// TLS ULP"; with TLSD_IN_VM=1 the same condition is a failure.

#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/base/errno_status.h"
#include "common/base/status_macros.h"
#include "common/base/unique_fd.h"
#include "common/ktls/record_io.h"
#include "common/wire/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ktls/ktls_test_util.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_certs.h"
#include "tlsd/control/control_records.h"
#include "tlsd/control/sealed_state.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/tls13_kdf.h"
#include "tlsd/tls/tls_stat.h"

namespace tlsd {

// gtest prints verdicts readably (found by ADL, so in namespace tlsd).
static const char* ActionName(ControlAction a) {
  switch (a) {
    case ControlAction::kContinue:
      return "kContinue";
    case ControlAction::kEndOfStream:
      return "kEndOfStream";
    case ControlAction::kFailed:
      return "kFailed";
  }
  return "?";
}
[[maybe_unused]] static void PrintTo(const ControlVerdict& v, std::ostream* os) {
  *os << "{" << ActionName(v.action);
  if (v.has_alert) *os << ", alert " << AlertName(v.alert) << "(" << int{v.alert} << ")";
  *os << ", blob " << v.sealed_state.size() << " bytes, \"" << v.message << "\"}";
}

namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::tlsd::testing::IsOk;
using ::tlsd::testing::StatusIs;

// ---------------------------------------------------------------------------
// Kernel facts

std::string KernelRelease() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return u.release;
}

// TLS 1.3 rekey (a second setsockopt(TLS_RX/TLS_TX)) arrived in Linux 6.14.
bool KernelCanRekey() {
  int major = 0, minor = 0;
  if (::sscanf(KernelRelease().c_str(), "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 14);
}

int64_t Delta(const TlsStat& after, const TlsStat& before, const char* name) {
  return TlsStatValue(after, name) - TlsStatValue(before, name);
}

std::string Hex(absl::string_view s) { return absl::BytesToHexString(s); }

std::string Bytes(std::initializer_list<uint8_t> b) { return std::string(b.begin(), b.end()); }

std::string SecretString(const SecretBytes& s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

// Records as they appear on the wire.
const std::string kCloseNotify = Bytes({kAlertLevelWarning, kAlertCloseNotify});
const std::string kUserCanceled = Bytes({kAlertLevelWarning, kAlertUserCanceled});
const std::string kKeyUpdateRequested = Bytes({kHandshakeKeyUpdate, 0, 0, 1, 1});
const std::string kKeyUpdateNotRequested = Bytes({kHandshakeKeyUpdate, 0, 0, 1, 0});
// A TLS 1.2 ClientHello header (type 1, length 4) with a body that starts
// like one (client_version 3,3): enough for tlsd to see renegotiation.
const std::string kClientHello = Bytes({kHandshakeClientHello, 0, 0, 4, 3, 3, 0, 0});

// ---------------------------------------------------------------------------
// One handed-off connection

// Link is a kTLS connection after the handoff: the server end is the socket
// a worker holds, with its sealed state; the client end is the peer, driven
// by hand. No SSL objects are left: the kernel does all the record work.
struct Link {
  testing::TlsParams params;
  testing::TcpPair fds;
  uint64_t id = 0;
  uint16_t suite = 0;
  std::string blob;  // the newest sealed state, as the worker keeps it
  // TLS 1.3: the client's current traffic secrets (its TX is the server's
  // RX), advanced by the client's own rekeys.
  SecretBytes client_tx_secret;
  SecretBytes client_rx_secret;
  // The server's first secrets, to check what the blob holds.
  SecretBytes server_rx_secret0;
  SecretBytes server_tx_secret0;
  int tickets_seen = 0;

  int client() const { return fds.client.get(); }
  int server() const { return fds.server.get(); }
  bool tls13() const { return params.version == TlsVersion::kTls13; }
};

struct Record {
  uint8_t type = 0;
  std::string payload;
};

absl::StatusOr<Record> ReadRecord(int fd) {
  std::vector<uint8_t> buf(kMaxTlsPlaintextLen);
  TLSD_ASSIGN_OR_RETURN(RecordRead r, RecvTlsRecord(fd, absl::MakeSpan(buf)));
  Record rec;
  rec.type = r.record_type;
  rec.payload.assign(reinterpret_cast<const char*>(buf.data()), r.len);
  if (r.len == 0) rec.type = 0;  // end of stream
  return rec;
}

// OnlyNewSessionTickets: a handshake record whose messages are all
// NewSessionTickets (what a TLS 1.3 server sends right after the handshake).
bool OnlyNewSessionTickets(absl::string_view p) {
  if (p.empty()) return false;
  while (!p.empty()) {
    if (p.size() < 4 || static_cast<uint8_t>(p[0]) != kHandshakeNewSessionTicket) return false;
    const size_t len = (size_t{static_cast<uint8_t>(p[1])} << 16) |
                       (size_t{static_cast<uint8_t>(p[2])} << 8) | static_cast<uint8_t>(p[3]);
    if (p.size() < 4 + len) return false;
    p.remove_prefix(4 + len);
  }
  return true;
}

// ClientRead returns the next record the client receives, passing over the
// server's TLS 1.3 NewSessionTickets. type 0 = end of stream.
absl::StatusOr<Record> ClientRead(Link& l) {
  for (;;) {
    TLSD_ASSIGN_OR_RETURN(Record rec, ReadRecord(l.client()));
    if (rec.type == kRecordHandshake && OnlyNewSessionTickets(rec.payload)) {
      ++l.tickets_seen;
      continue;
    }
    return rec;
  }
}

absl::Status SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "send");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// ReadData reads `len` bytes of application data from `fd`; any other record
// (but a client's NewSessionTickets) is an error.
absl::StatusOr<std::string> ReadData(Link& l, int fd, size_t len) {
  std::string out;
  while (out.size() < len) {
    TLSD_ASSIGN_OR_RETURN(Record rec, fd == l.client() ? ClientRead(l) : ReadRecord(fd));
    if (rec.type != kRecordApplicationData) {
      return absl::InternalError(
          absl::StrCat("expected application data, got ",
                       rec.type == 0 ? "end of stream" : RecordTypeName(rec.type), " record ",
                       Hex(rec.payload)));
    }
    out += rec.payload;
  }
  return out;
}

// ExpectDataBothWays sends a message each way through the kernel and checks
// it arrives as the next record: nothing else (no alert) was queued ahead.
void ExpectDataBothWays(Link& l, absl::string_view tag) {
  const std::string up = absl::StrCat("client->server ", tag);
  const std::string down = absl::StrCat("server->client ", tag);
  ASSERT_THAT(SendAll(l.client(), up), IsOk());
  absl::StatusOr<std::string> at_server = ReadData(l, l.server(), up.size());
  ASSERT_THAT(at_server, IsOk()) << tag;
  EXPECT_EQ(*at_server, up);
  ASSERT_THAT(SendAll(l.server(), down), IsOk());
  absl::StatusOr<std::string> at_client = ReadData(l, l.client(), down.size());
  ASSERT_THAT(at_client, IsOk()) << tag;
  EXPECT_EQ(*at_client, down);
}

// ExpectClientGets checks that the next record at the client is `type` with
// `payload`.
void ExpectClientGets(Link& l, uint8_t type, const std::string& payload) {
  absl::StatusOr<Record> rec = ClientRead(l);
  ASSERT_THAT(rec, IsOk());
  EXPECT_EQ(int{rec->type}, int{type})
      << "got " << RecordTypeName(rec->type) << " " << Hex(rec->payload);
  EXPECT_EQ(Hex(rec->payload), Hex(payload));
}

// ExpectClientGetsEof: the server end was closed, and nothing but what the
// test already read came before.
void ExpectClientGetsEof(Link& l) {
  absl::StatusOr<Record> rec = ClientRead(l);
  ASSERT_THAT(rec, IsOk());
  EXPECT_EQ(int{rec->type}, 0) << "expected end of stream, got " << RecordTypeName(rec->type) << " "
                               << Hex(rec->payload);
}

// ClientSends sends one record of `type` from the client through its kTLS TX
// and checks the server reads exactly that record, as a worker would.
void ClientSends(Link& l, uint8_t type, const std::string& payload) {
  ASSERT_THAT(SendTlsRecord(l.client(), type,
                            absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload.data()),
                                                payload.size())),
              IsOk());
  absl::StatusOr<Record> rec = ReadRecord(l.server());
  ASSERT_THAT(rec, IsOk());
  ASSERT_EQ(int{rec->type}, int{type});
  ASSERT_EQ(Hex(rec->payload), Hex(payload));
}

// ClientRekey installs the client's next traffic secret on one direction
// (RFC 8446 7.2), as a TLS 1.3 peer does after a KeyUpdate.
absl::Status ClientRekey(Link& l, Direction dir) {
  SecretBytes& secret = dir == Direction::kTx ? l.client_tx_secret : l.client_rx_secret;
  TLSD_ASSIGN_OR_RETURN(SecretBytes next, NextTrafficSecret(l.params.cipher, secret.span()));
  TLSD_ASSIGN_OR_RETURN(TrafficKeys keys, DeriveTrafficKeys(l.params.cipher, next.span()));
  TLSD_ASSIGN_OR_RETURN(CryptoInfo info, BuildCryptoInfo(TlsVersion::kTls13, l.params.cipher,
                                                         keys.key.span(), keys.iv.span(), 0));
  TLSD_RETURN_IF_ERROR(InstallKtlsDirection(l.client(), dir, info));
  secret = std::move(next);
  return absl::OkStatus();
}

// Nth applies NextTrafficSecret n times.
SecretBytes Nth(KtlsCipher cipher, const SecretBytes& s0, int n) {
  SecretBytes s(s0.span());
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<SecretBytes> next = NextTrafficSecret(cipher, s.span());
    EXPECT_THAT(next, IsOk());
    if (!next.ok()) break;
    s = std::move(*next);
  }
  return s;
}

struct KeyHashes {
  KeyHash rx{};
  KeyHash tx{};
  bool operator==(const KeyHashes&) const = default;
};

absl::StatusOr<KeyHashes> ReadKeyHashes(int fd) {
  KeyHashes h;
  TLSD_ASSIGN_OR_RETURN(h.rx, KernelKeyHash(fd, /*tx=*/false));
  TLSD_ASSIGN_OR_RETURN(h.tx, KernelKeyHash(fd, /*tx=*/true));
  return h;
}

absl::StatusOr<ConnState> OpenBlob(const Sealer& sealer, const Link& l, const std::string& blob) {
  WireAddress local, peer;
  TLSD_RETURN_IF_ERROR(SocketAddresses(l.server(), &local, &peer));
  return sealer.Open(blob, local, peer);
}

void SetTimeouts(int fd) {
  // A test that goes wrong fails on EAGAIN instead of hanging the VM.
  timeval tv{};
  tv.tv_sec = 30;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

class ControlRecordsTestBase {
 protected:
  static void MakeCerts() {
    if (certs_ != nullptr) return;
    testing::TestCertsOptions opts;
    opts.with_rsa_server = false;  // ECDSA only: RSA keygen is slow under TCG
    auto certs = testing::TestCerts::Generate(opts);
    ASSERT_THAT(certs, IsOk());
    certs_ = new testing::TestCerts(std::move(*certs));
  }

  // Handoff connects a client and a server with kTLS on both ends, seals the
  // server's state like the handshaker (rx = the client's secret, tx = the
  // server's), and frees both SSLs.
  absl::StatusOr<Link> Handoff(const testing::TlsParams& p, uint64_t id) {
    TLSD_ASSIGN_OR_RETURN(SslCtxPtr client_ctx, testing::MakeCtx(*certs_, false, p));
    TLSD_ASSIGN_OR_RETURN(SslCtxPtr server_ctx, testing::MakeCtx(*certs_, true, p));
    TLSD_ASSIGN_OR_RETURN(testing::Connection conn,
                          testing::Connect(client_ctx.get(), server_ctx.get(), KtlsOptions()));
    for (const auto* o : {&conn.client_outcome, &conn.server_outcome}) {
      TLSD_RETURN_IF_ERROR(o->status());
      if ((*o)->tx == KtlsMode::kNone || (*o)->rx == KtlsMode::kNone) {
        return absl::FailedPreconditionError(
            absl::StrCat("kTLS not installed in both directions: ", (*o)->reason));
      }
    }
    Link l;
    l.params = p;
    l.id = id;
    const SSL_CIPHER* cipher = SSL_get_current_cipher(conn.server.get());
    if (cipher == nullptr) return absl::InternalError("no cipher");
    l.suite = SSL_CIPHER_get_protocol_id(cipher);
    const Tls13TrafficSecrets* server_secrets = CapturedTrafficSecrets(conn.server.get());
    const Tls13TrafficSecrets* client_secrets = CapturedTrafficSecrets(conn.client.get());
    const SecretBytes none;
    if (p.version == TlsVersion::kTls13) {
      if (server_secrets == nullptr || server_secrets->client.empty() ||
          server_secrets->server.empty() || client_secrets == nullptr ||
          client_secrets->client.empty() || client_secrets->server.empty()) {
        return absl::InternalError("TLS 1.3 traffic secrets were not captured");
      }
      if (SecretString(server_secrets->client) != SecretString(client_secrets->client) ||
          SecretString(server_secrets->server) != SecretString(client_secrets->server)) {
        return absl::InternalError("client and server captured different secrets");
      }
      l.client_tx_secret = SecretBytes(client_secrets->client.span());
      l.client_rx_secret = SecretBytes(client_secrets->server.span());
      l.server_rx_secret0 = SecretBytes(server_secrets->client.span());
      l.server_tx_secret0 = SecretBytes(server_secrets->server.span());
    }
    TLSD_ASSIGN_OR_RETURN(
        l.blob, SealForHandoff(*sealer_, conn.fds.server.get(), /*is_server=*/true, id,
                               static_cast<uint16_t>(p.version), l.suite,
                               server_secrets != nullptr ? server_secrets->client : none,
                               server_secrets != nullptr ? server_secrets->server : none));
    // As after a handoff: no SSL object is left (SSL_free sends nothing).
    conn.client.reset();
    conn.server.reset();
    l.fds = std::move(conn.fds);
    SetTimeouts(l.client());
    SetTimeouts(l.server());
    return l;
  }

  // Answer hands one record to tlsd with the link's newest blob, and keeps
  // the new blob on kContinue (what libtlsfd does for the worker).
  absl::StatusOr<ControlVerdict> Answer(Link& l, uint8_t type, std::string payload,
                                        const ControlRecordPolicy& policy = {}) {
    ControlRecord r;
    r.record_type = type;
    r.payload = std::move(payload);
    r.sealed_state = l.blob;
    absl::StatusOr<ControlVerdict> v = AnswerControlRecord(*sealer_, policy, r, l.server());
    if (v.ok() && v->action == ControlAction::kContinue) {
      EXPECT_THAT(v->sealed_state, Not(IsEmpty())) << "kContinue without a new blob";
      if (!v->sealed_state.empty()) l.blob = v->sealed_state;
    }
    return v;
  }

  static testing::TestCerts* certs_;
  std::unique_ptr<Sealer> sealer_ = Sealer::Random();
};
testing::TestCerts* ControlRecordsTestBase::certs_ = nullptr;

void ExpectVerdict(const absl::StatusOr<ControlVerdict>& v, ControlAction action,
                   std::optional<uint8_t> alert, absl::string_view message_part) {
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(ActionName(v->action), std::string(ActionName(action))) << ::testing::PrintToString(*v);
  if (alert.has_value()) {
    EXPECT_TRUE(v->has_alert) << ::testing::PrintToString(*v);
    EXPECT_EQ(int{v->alert}, int{*alert})
        << AlertName(v->alert) << " instead of " << AlertName(*alert);
  } else {
    EXPECT_FALSE(v->has_alert) << ::testing::PrintToString(*v);
  }
  EXPECT_THAT(v->message, HasSubstr(std::string(message_part)));
  if (action != ControlAction::kContinue) {
    EXPECT_TRUE(v->sealed_state.empty())
        << "a dead connection needs no new blob, got " << v->sealed_state.size() << " bytes";
  }
}

// ---------------------------------------------------------------------------
// Every version and AEAD

class ControlRecordsTest : public ControlRecordsTestBase,
                           public ::testing::TestWithParam<testing::TlsParams> {
 protected:
  static void SetUpTestSuite() { MakeCerts(); }
};

// KernelKeyHash reads the kernel's key for every AEAD tlsd installs (it is
// what SealForHandoff and every AnswerControlRecord rely on): the server's RX
// key is the client's TX key and the other way round, and for TLS 1.3 it is
// exactly the key derived from the captured traffic secret. (The kernel
// answers getsockopt(SOL_TLS, TLS_TX/TLS_RX) only for an optlen of exactly
// the 4-byte tls_crypto_info header or exactly the cipher's own struct, 40
// bytes for AES-128-GCM and 56 for the other two; anything else is EINVAL.)
TEST_P(ControlRecordsTest, KernelKeyHashReadsTheKeyOfEachDirection) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  const testing::TlsParams p = GetParam();
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr client_ctx, testing::MakeCtx(*certs_, false, p));
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr server_ctx, testing::MakeCtx(*certs_, true, p));
  TLSD_ASSERT_OK_AND_ASSIGN(testing::Connection conn,
                            testing::Connect(client_ctx.get(), server_ctx.get(), KtlsOptions()));
  ASSERT_THAT(conn.server_outcome, IsOk());
  ASSERT_THAT(conn.client_outcome, IsOk());
  ASSERT_NE(conn.server_outcome->rx, KtlsMode::kNone) << conn.server_outcome->reason;
  ASSERT_NE(conn.client_outcome->rx, KtlsMode::kNone) << conn.client_outcome->reason;
  const int server = conn.fds.server.get(), client = conn.fds.client.get();
  absl::StatusOr<KeyHash> server_rx = KernelKeyHash(server, /*tx=*/false);
  absl::StatusOr<KeyHash> server_tx = KernelKeyHash(server, /*tx=*/true);
  absl::StatusOr<KeyHash> client_rx = KernelKeyHash(client, /*tx=*/false);
  absl::StatusOr<KeyHash> client_tx = KernelKeyHash(client, /*tx=*/true);
  ASSERT_THAT(server_rx, IsOk());
  ASSERT_THAT(server_tx, IsOk());
  ASSERT_THAT(client_rx, IsOk());
  ASSERT_THAT(client_tx, IsOk());
  EXPECT_EQ(*server_rx, *client_tx);
  EXPECT_EQ(*server_tx, *client_rx);
  EXPECT_NE(*server_rx, *server_tx);
  if (p.version == TlsVersion::kTls13) {
    const Tls13TrafficSecrets* secrets = CapturedTrafficSecrets(conn.server.get());
    ASSERT_NE(secrets, nullptr);
    for (const auto& [hash, secret] :
         {std::pair{&*server_rx, &secrets->client}, std::pair{&*server_tx, &secrets->server}}) {
      TLSD_ASSERT_OK_AND_ASSIGN(TrafficKeys keys, DeriveTrafficKeys(p.cipher, secret->span()));
      KeyHash want{};
      unsigned int len = 0;
      ASSERT_EQ(
          EVP_Digest(keys.key.data(), keys.key.size(), want.data(), &len, EVP_sha256(), nullptr),
          1);
      EXPECT_EQ(*hash, want);
    }
  }
}

// (a) close_notify: tlsd answers with its own, and the worker is told the
// stream ended.
TEST_P(ControlRecordsTest, CloseNotifyIsAnsweredAndEndsTheStream) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 101));
  ExpectDataBothWays(l, "before");
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordAlert, kCloseNotify));
  ExpectVerdict(Answer(l, kRecordAlert, kCloseNotify), ControlAction::kEndOfStream,
                kAlertCloseNotify, "close_notify");
  ExpectClientGets(l, kRecordAlert, kCloseNotify);
  l.fds.server.Reset();  // the worker closes
  ExpectClientGetsEof(l);
  EXPECT_EQ(l.tickets_seen, l.tls13() ? 2 : 0);
}

// (b) A fatal alert from the peer: the connection failed, with that alert;
// tlsd sends nothing back (the peer has gone).
TEST_P(ControlRecordsTest, FatalAlertFailsTheConnection) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 102));
  const std::string alert = Bytes({kAlertLevelFatal, kAlertHandshakeFailure});
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordAlert, alert));
  ExpectVerdict(Answer(l, kRecordAlert, alert), ControlAction::kFailed, kAlertHandshakeFailure,
                "handshake_failure");
  l.fds.server.Reset();
  ExpectClientGetsEof(l);
}

// (d) A worker pairs connection A's blob with its socket B: refused before
// anything happens to B (keys, and no record sent), and B goes on working.
TEST_P(ControlRecordsTest, OtherConnectionsBlobIsRefusedAndLeavesTheSocketAlone) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link a, Handoff(GetParam(), 201));
  TLSD_ASSERT_OK_AND_ASSIGN(Link b, Handoff(GetParam(), 202));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes b_before, ReadKeyHashes(b.server()));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes a_before, ReadKeyHashes(a.server()));
  EXPECT_FALSE(a_before == b_before);

  struct Case {
    uint8_t type;
    std::string payload;
  };
  const std::vector<Case> cases = {
      {kRecordHandshake, a.tls13() ? kKeyUpdateRequested : kClientHello},
      {kRecordHandshake, kKeyUpdateNotRequested},
      {kRecordAlert, kCloseNotify},
      {kRecordAlert, Bytes({kAlertLevelFatal, kAlertHandshakeFailure})},
      {kRecordAlert, kUserCanceled},
      {kRecordChangeCipherSpec, Bytes({1})},
  };
  for (const Case& c : cases) {
    ControlRecord r;
    r.record_type = c.type;
    r.payload = c.payload;
    r.sealed_state = a.blob;
    EXPECT_THAT(AnswerControlRecord(*sealer_, ControlRecordPolicy(), r, b.server()),
                StatusIs(absl::StatusCode::kPermissionDenied))
        << RecordTypeName(c.type) << " " << Hex(c.payload);
  }
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes b_after, ReadKeyHashes(b.server()));
  EXPECT_TRUE(b_after == b_before) << "B's kernel keys changed";
  ExpectDataBothWays(b, "after the refused blob");
  // B's own blob still works, and A is untouched too.
  ExpectVerdict(Answer(b, kRecordAlert, kUserCanceled), ControlAction::kContinue,
                kAlertUserCanceled, "user_canceled");
  ExpectDataBothWays(a, "A after B's refusals");
}

INSTANTIATE_TEST_SUITE_P(AllVersionsAndAeads, ControlRecordsTest,
                         ::testing::ValuesIn(testing::AllTlsParams()), testing::TlsParamsName);

// ---------------------------------------------------------------------------
// Rate limit, TLS 1.2 and 1.3

class ControlRecordStormTest : public ControlRecordsTest {};

// (f) More control records than the policy allows in a window: the one over
// the limit ends the connection with unexpected_message.
TEST_P(ControlRecordStormTest, OneOverTheLimitFailsWithUnexpectedMessage) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  ControlRecordPolicy policy;
  policy.max_records_per_window = 3;
  policy.window = absl::Seconds(10);
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 301));
  for (int i = 1; i <= 3; ++i) {
    SCOPED_TRACE(absl::StrCat("user_canceled #", i));
    ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordAlert, kUserCanceled));
    ExpectVerdict(Answer(l, kRecordAlert, kUserCanceled, policy), ControlAction::kContinue,
                  kAlertUserCanceled, "user_canceled");
    TLSD_ASSERT_OK_AND_ASSIGN(ConnState s, OpenBlob(*sealer_, l, l.blob));
    EXPECT_EQ(s.window_records, static_cast<uint32_t>(i));
  }
  ExpectDataBothWays(l, "within the limit");
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordAlert, kUserCanceled));
  ExpectVerdict(Answer(l, kRecordAlert, kUserCanceled, policy), ControlAction::kFailed,
                kAlertUnexpectedMessage, "too many control records");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
}

// The window starts over once it has passed.
TEST_P(ControlRecordStormTest, WindowStartsOver) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  ControlRecordPolicy policy;
  policy.max_records_per_window = 2;
  policy.window = absl::Seconds(1);
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 302));
  for (int i = 0; i < 2; ++i) {
    ExpectVerdict(Answer(l, kRecordAlert, kUserCanceled, policy), ControlAction::kContinue,
                  kAlertUserCanceled, "user_canceled");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  for (int i = 0; i < 2; ++i) {
    ExpectVerdict(Answer(l, kRecordAlert, kUserCanceled, policy), ControlAction::kContinue,
                  kAlertUserCanceled, "user_canceled");
  }
  ExpectVerdict(Answer(l, kRecordAlert, kUserCanceled, policy), ControlAction::kFailed,
                kAlertUnexpectedMessage, "too many control records");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
}

INSTANTIATE_TEST_SUITE_P(
    Tls12AndTls13, ControlRecordStormTest,
    ::testing::Values(testing::TlsParams{TlsVersion::kTls12, KtlsCipher::kAes128Gcm},
                      testing::TlsParams{TlsVersion::kTls13, KtlsCipher::kAes128Gcm},
                      testing::TlsParams{TlsVersion::kTls12, KtlsCipher::kAes256Gcm},
                      testing::TlsParams{TlsVersion::kTls13, KtlsCipher::kAes256Gcm}),
    testing::TlsParamsName);

// ---------------------------------------------------------------------------
// TLS 1.3 KeyUpdate, over the three AEADs

class KeyUpdateTest : public ControlRecordsTest {
 protected:
  // OneKeyUpdate runs one update_requested KeyUpdate from the client and
  // the whole answer: returns after data went both ways under the new keys.
  // `round` counts from 1 and is the generation expected afterwards.
  void OneKeyUpdate(Link& l, int round) {
    SCOPED_TRACE(absl::StrCat("KeyUpdate round ", round));
    const std::string old_blob = l.blob;
    ASSERT_THAT(SendTlsRecord(l.client(), kRecordHandshake,
                              absl::MakeConstSpan(
                                  reinterpret_cast<const uint8_t*>(kKeyUpdateRequested.data()),
                                  kKeyUpdateRequested.size())),
                IsOk());
    // The client switches its TX right after its KeyUpdate (RFC 8446 4.6.3).
    ASSERT_THAT(ClientRekey(l, Direction::kTx), IsOk());
    absl::StatusOr<Record> rec = ReadRecord(l.server());
    ASSERT_THAT(rec, IsOk());
    ASSERT_EQ(int{rec->type}, int{kRecordHandshake});
    ASSERT_EQ(Hex(rec->payload), Hex(kKeyUpdateRequested));
    // The client sends under its new key at once; until tlsd installs the
    // next key the kernel holds the server's RX back (EKEYEXPIRED).
    const std::string up = absl::StrCat("client data under key ", round);
    ASSERT_THAT(SendAll(l.client(), up), IsOk());
    {
      uint8_t buf[64];
      EXPECT_THAT(RecvTlsRecord(l.server(), absl::MakeSpan(buf)),
                  StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired")));
    }

    absl::StatusOr<ControlVerdict> v = Answer(l, kRecordHandshake, kKeyUpdateRequested);
    ASSERT_NO_FATAL_FAILURE(
        ExpectVerdict(v, ControlAction::kContinue, std::nullopt, "KeyUpdate applied"));
    EXPECT_THAT(v->message, HasSubstr(absl::StrCat("rx generation ", round)));
    EXPECT_THAT(v->message, HasSubstr(absl::StrCat("tx generation ", round)));
    EXPECT_NE(l.blob, old_blob);

    // What the new blob says: generation N, the N-th secrets.
    TLSD_ASSERT_OK_AND_ASSIGN(ConnState s, OpenBlob(*sealer_, l, l.blob));
    EXPECT_EQ(s.rx_generation, static_cast<uint32_t>(round));
    EXPECT_EQ(s.tx_generation, static_cast<uint32_t>(round));
    EXPECT_EQ(Hex(SecretString(s.rx_secret)), Hex(SecretString(l.client_tx_secret)));
    EXPECT_EQ(Hex(SecretString(s.tx_secret)),
              Hex(SecretString(Nth(l.params.cipher, l.server_tx_secret0, round))));
    EXPECT_EQ(s.connection_id, l.id);
    TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes now, ReadKeyHashes(l.server()));
    EXPECT_EQ(s.rx_key_hash, now.rx);
    EXPECT_EQ(s.tx_key_hash, now.tx);

    // The server reads what the client sent under its new key.
    absl::StatusOr<std::string> at_server = ReadData(l, l.server(), up.size());
    ASSERT_THAT(at_server, IsOk());
    EXPECT_EQ(*at_server, up);

    // tlsd's own KeyUpdate (update_not_requested) reaches the client under
    // the old key; then the client switches RX and reads the new one.
    ASSERT_NO_FATAL_FAILURE(ExpectClientGets(l, kRecordHandshake, kKeyUpdateNotRequested));
    ASSERT_THAT(ClientRekey(l, Direction::kRx), IsOk());
    const std::string down = absl::StrCat("server data under key ", round);
    ASSERT_THAT(SendAll(l.server(), down), IsOk());
    absl::StatusOr<std::string> at_client = ReadData(l, l.client(), down.size());
    ASSERT_THAT(at_client, IsOk());
    EXPECT_EQ(*at_client, down);
  }
};

// (c) KeyUpdate(update_requested) from the client, three times in a row:
// on 6.14+ tlsd rekeys both directions each time; before 6.14 it closes the
// connection cleanly and says why.
TEST_P(KeyUpdateTest, ThreeKeyUpdatesInARowOrACleanCloseWithoutRekey) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat before, ReadTlsStat());
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 401));
  ExpectDataBothWays(l, "before any KeyUpdate");

  if (!KernelCanRekey()) {
    std::cout << "[   INFO   ] kernel " << KernelRelease()
              << " has no TLS 1.3 rekey: expecting a clean close\n";
    ASSERT_THAT(SendTlsRecord(l.client(), kRecordHandshake,
                              absl::MakeConstSpan(
                                  reinterpret_cast<const uint8_t*>(kKeyUpdateRequested.data()),
                                  kKeyUpdateRequested.size())),
                IsOk());
    // The peer cannot switch either: this is what "no rekey" means.
    EXPECT_THAT(ClientRekey(l, Direction::kTx), StatusIs(absl::StatusCode::kFailedPrecondition));
    absl::StatusOr<Record> rec = ReadRecord(l.server());
    ASSERT_THAT(rec, IsOk());
    ASSERT_EQ(int{rec->type}, int{kRecordHandshake});
    ASSERT_EQ(Hex(rec->payload), Hex(kKeyUpdateRequested));
    TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys_before, ReadKeyHashes(l.server()));
    absl::StatusOr<ControlVerdict> v = Answer(l, kRecordHandshake, kKeyUpdateRequested);
    ASSERT_NO_FATAL_FAILURE(
        ExpectVerdict(v, ControlAction::kEndOfStream, kAlertCloseNotify, "cannot rekey"));
    EXPECT_THAT(v->message, HasSubstr("6.14"));
    ExpectClientGets(l, kRecordAlert, kCloseNotify);
    TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys_after, ReadKeyHashes(l.server()));
    EXPECT_TRUE(keys_after == keys_before);
    l.fds.server.Reset();
    ExpectClientGetsEof(l);
    TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat after, ReadTlsStat());
    EXPECT_EQ(Delta(after, before, "TlsDecryptError"), 0);
    return;
  }

  std::cout << "[   INFO   ] kernel " << KernelRelease() << " rekeys TLS 1.3\n";
  for (int round = 1; round <= 3; ++round) {
    ASSERT_NO_FATAL_FAILURE(OneKeyUpdate(l, round));
  }
  ExpectDataBothWays(l, "after three KeyUpdates");
  TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat after, ReadTlsStat());
  // Per round: the server rekeys RX and TX (tlsd), the client TX and RX
  // (this test); both ends see one KeyUpdate arrive.
  std::cout << "[   INFO   ] tls_stat deltas: TlsRxRekeyOk +"
            << Delta(after, before, "TlsRxRekeyOk") << " TlsTxRekeyOk +"
            << Delta(after, before, "TlsTxRekeyOk") << " TlsRxRekeyReceived +"
            << Delta(after, before, "TlsRxRekeyReceived") << "\n";
  EXPECT_EQ(Delta(after, before, "TlsRxRekeyOk"), 6);
  EXPECT_EQ(Delta(after, before, "TlsTxRekeyOk"), 6);
  EXPECT_EQ(Delta(after, before, "TlsRxRekeyReceived"), 6);
  EXPECT_EQ(Delta(after, before, "TlsRxRekeyError"), 0);
  EXPECT_EQ(Delta(after, before, "TlsTxRekeyError"), 0);
  EXPECT_EQ(Delta(after, before, "TlsDecryptError"), 0);
}

// (e) After a KeyUpdate the previous blob names keys the kernel no longer
// has: handing it in again (with a real KeyUpdate record) is refused and
// changes nothing; the current blob then works.
TEST_P(KeyUpdateTest, OldBlobIsRefusedAfterAKeyUpdate) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  if (!KernelCanRekey()) {
    GTEST_SKIP() << "skipped: kernel " << KernelRelease()
                 << " cannot rekey TLS 1.3 kTLS (needs 6.14+), so a connection's keys never "
                    "change and no blob of it ever becomes stale: there is no replay to refuse";
  }
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 501));
  const std::string blob0 = l.blob;
  ASSERT_NO_FATAL_FAILURE(OneKeyUpdate(l, 1));
  const std::string blob1 = l.blob;

  // A harmless record with the old blob: refused too.
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys1, ReadKeyHashes(l.server()));
  {
    ControlRecord r{kRecordAlert, kUserCanceled, blob0};
    EXPECT_THAT(AnswerControlRecord(*sealer_, ControlRecordPolicy(), r, l.server()),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("current keys")));
  }

  // The peer updates again; the worker replays blob0 with that KeyUpdate
  // (tlsd would install generation 1 again, which the worker already knows).
  ASSERT_THAT(SendTlsRecord(
                  l.client(), kRecordHandshake,
                  absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(kKeyUpdateRequested.data()),
                                      kKeyUpdateRequested.size())),
              IsOk());
  ASSERT_THAT(ClientRekey(l, Direction::kTx), IsOk());
  absl::StatusOr<Record> rec = ReadRecord(l.server());
  ASSERT_THAT(rec, IsOk());
  ASSERT_EQ(Hex(rec->payload), Hex(kKeyUpdateRequested));
  {
    ControlRecord r{kRecordHandshake, kKeyUpdateRequested, blob0};
    EXPECT_THAT(AnswerControlRecord(*sealer_, ControlRecordPolicy(), r, l.server()),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("current keys")));
  }
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys_after, ReadKeyHashes(l.server()));
  EXPECT_TRUE(keys_after == keys1) << "the refused replay changed the kernel's keys";

  // The current blob is accepted, and the connection carries on.
  EXPECT_EQ(l.blob, blob1);
  absl::StatusOr<ControlVerdict> v = Answer(l, kRecordHandshake, kKeyUpdateRequested);
  ExpectVerdict(v, ControlAction::kContinue, std::nullopt, "rx generation 2");
  ASSERT_NO_FATAL_FAILURE(ExpectClientGets(l, kRecordHandshake, kKeyUpdateNotRequested));
  ASSERT_THAT(ClientRekey(l, Direction::kRx), IsOk());
  ExpectDataBothWays(l, "after the refused replay");
  // And now blob1 is the stale one.
  ControlRecord r{kRecordAlert, kUserCanceled, blob1};
  EXPECT_THAT(AnswerControlRecord(*sealer_, ControlRecordPolicy(), r, l.server()),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

INSTANTIATE_TEST_SUITE_P(
    Tls13AllAeads, KeyUpdateTest,
    ::testing::Values(testing::TlsParams{TlsVersion::kTls13, KtlsCipher::kAes128Gcm},
                      testing::TlsParams{TlsVersion::kTls13, KtlsCipher::kAes256Gcm},
                      testing::TlsParams{TlsVersion::kTls13, KtlsCipher::kChaCha20Poly1305}),
    testing::TlsParamsName);

// ---------------------------------------------------------------------------
// TLS 1.3, one AEAD

class FixedParamsTest : public ControlRecordsTestBase, public ::testing::Test {
 protected:
  static void SetUpTestSuite() { MakeCerts(); }
};

// AES-256-GCM: these tests are about what tlsd answers, not about the
// AEAD; the AEADs are covered by the parameterized suites above.
class Tls13ControlRecordsTest : public FixedParamsTest {
 protected:
  static constexpr testing::TlsParams kParams{TlsVersion::kTls13, KtlsCipher::kAes256Gcm};
};

// KeyUpdate(update_not_requested): tlsd switches RX only and sends nothing.
TEST_F(Tls13ControlRecordsTest, KeyUpdateNotRequestedRekeysRxOnly) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat before, ReadTlsStat());
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 601));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys0, ReadKeyHashes(l.server()));
  ASSERT_THAT(SendTlsRecord(l.client(), kRecordHandshake,
                            absl::MakeConstSpan(
                                reinterpret_cast<const uint8_t*>(kKeyUpdateNotRequested.data()),
                                kKeyUpdateNotRequested.size())),
              IsOk());
  const bool client_rekeyed = ClientRekey(l, Direction::kTx).ok();
  EXPECT_EQ(client_rekeyed, KernelCanRekey());
  absl::StatusOr<Record> rec = ReadRecord(l.server());
  ASSERT_THAT(rec, IsOk());
  ASSERT_EQ(Hex(rec->payload), Hex(kKeyUpdateNotRequested));
  absl::StatusOr<ControlVerdict> v = Answer(l, kRecordHandshake, kKeyUpdateNotRequested);
  if (!KernelCanRekey()) {
    ExpectVerdict(v, ControlAction::kEndOfStream, kAlertCloseNotify, "cannot rekey");
    ExpectClientGets(l, kRecordAlert, kCloseNotify);
    return;
  }
  ExpectVerdict(v, ControlAction::kContinue, std::nullopt, "rx generation 1, tx generation 0");
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys1, ReadKeyHashes(l.server()));
  EXPECT_NE(keys1.rx, keys0.rx);
  EXPECT_EQ(keys1.tx, keys0.tx);
  TLSD_ASSERT_OK_AND_ASSIGN(ConnState s, OpenBlob(*sealer_, l, l.blob));
  EXPECT_EQ(s.rx_generation, 1u);
  EXPECT_EQ(s.tx_generation, 0u);
  // The client did not rekey RX: the server still sends under key 0, and
  // the first thing the client reads is that data (no KeyUpdate came).
  ExpectDataBothWays(l, "after a one-way KeyUpdate");
  TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat after, ReadTlsStat());
  EXPECT_EQ(Delta(after, before, "TlsRxRekeyOk"), 1);  // the server
  EXPECT_EQ(Delta(after, before, "TlsTxRekeyOk"), 1);  // the client
  EXPECT_EQ(Delta(after, before, "TlsRxRekeyReceived"), 1);
}

// RFC 8446 4.6.3: a request_update other than 0 or 1 MUST be answered with
// illegal_parameter (before any key changes).
TEST_F(Tls13ControlRecordsTest, KeyUpdateWithIllegalRequestValueIsIllegalParameter) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 602));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys0, ReadKeyHashes(l.server()));
  const std::string bad = Bytes({kHandshakeKeyUpdate, 0, 0, 1, 2});
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, bad));
  ExpectVerdict(Answer(l, kRecordHandshake, bad), ControlAction::kFailed, kAlertIllegalParameter,
                "KeyUpdate");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertIllegalParameter}));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys1, ReadKeyHashes(l.server()));
  EXPECT_TRUE(keys1 == keys0);
}

// A KeyUpdate whose body is not one byte is a decode_error.
TEST_F(Tls13ControlRecordsTest, KeyUpdateOfWrongLengthIsDecodeError) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 603));
  const std::string bad = Bytes({kHandshakeKeyUpdate, 0, 0, 2, 1, 0});
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, bad));
  ExpectVerdict(Answer(l, kRecordHandshake, bad), ControlAction::kFailed, kAlertDecodeError,
                "malformed KeyUpdate");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertDecodeError}));
}

// RFC 8446 5.1: a KeyUpdate precedes a key change, so it MUST end its record;
// a record with more after it MUST be answered with unexpected_message. tlsd
// has to check that before it acts, on any kernel.
TEST_F(Tls13ControlRecordsTest, KeyUpdateThatDoesNotEndItsRecordIsUnexpectedMessage) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 604));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys0, ReadKeyHashes(l.server()));
  const std::string two = kKeyUpdateNotRequested + kKeyUpdateNotRequested;
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, two));
  absl::StatusOr<ControlVerdict> v = Answer(l, kRecordHandshake, two);
  ASSERT_NO_FATAL_FAILURE(ExpectVerdict(v, ControlAction::kFailed, kAlertUnexpectedMessage, ""));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys1, ReadKeyHashes(l.server()));
  EXPECT_TRUE(keys1 == keys0) << "tlsd changed keys for a malformed record";
  if (v->action == ControlAction::kFailed) {  // else no alert comes: don't wait for one
    ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
  }
}

// Renegotiation does not exist in TLS 1.3: a ClientHello after the
// handshake is unexpected.
TEST_F(Tls13ControlRecordsTest, ClientHelloIsUnexpectedMessage) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 605));
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, kClientHello));
  ExpectVerdict(Answer(l, kRecordHandshake, kClientHello), ControlAction::kFailed,
                kAlertUnexpectedMessage, "unexpected handshake message type 1");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
}

// RFC 8446 5.1: zero-length handshake fragments are not allowed.
TEST_F(Tls13ControlRecordsTest, EmptyHandshakeRecordIsUnexpectedMessage) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 650));
  ExpectVerdict(Answer(l, kRecordHandshake, Bytes({})), ControlAction::kFailed,
                kAlertUnexpectedMessage, "empty handshake record");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
}

// An alert record is exactly two bytes.
TEST_F(Tls13ControlRecordsTest, AlertOfWrongLengthIsDecodeError) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 606));
  const std::string bad = Bytes({kAlertLevelWarning, kAlertCloseNotify, 0});
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordAlert, bad));
  ExpectVerdict(Answer(l, kRecordAlert, bad), ControlAction::kFailed, kAlertDecodeError,
                "wrong length");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertDecodeError}));
}

// A record type tlsd has no answer for ends the connection.
TEST_F(Tls13ControlRecordsTest, ChangeCipherSpecRecordIsUnexpectedMessage) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(kParams, 607));
  ExpectVerdict(Answer(l, kRecordChangeCipherSpec, Bytes({1})), ControlAction::kFailed,
                kAlertUnexpectedMessage, "unexpected change_cipher_spec record");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
}

// The key check, apart from the address check: a blob made for this
// socket's addresses but naming other keys (what another connection's blob
// would be if two connections could share addresses) is refused.
TEST_F(Tls13ControlRecordsTest, BlobNamingOtherKeysIsRefused) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link a, Handoff(kParams, 608));
  TLSD_ASSERT_OK_AND_ASSIGN(Link b, Handoff(kParams, 609));
  TLSD_ASSERT_OK_AND_ASSIGN(ConnState a_state, OpenBlob(*sealer_, a, a.blob));
  TLSD_ASSERT_OK_AND_ASSIGN(ConnState b_state, OpenBlob(*sealer_, b, b.blob));
  WireAddress b_local, b_peer;
  ASSERT_THAT(SocketAddresses(b.server(), &b_local, &b_peer), IsOk());
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes b_keys, ReadKeyHashes(b.server()));

  struct Case {
    const char* what;
    KeyHash rx;
    KeyHash tx;
  };
  const Case cases[] = {
      {"A's keys", a_state.rx_key_hash, a_state.tx_key_hash},
      {"B's RX key, A's TX key", b_state.rx_key_hash, a_state.tx_key_hash},
      {"A's RX key, B's TX key", a_state.rx_key_hash, b_state.tx_key_hash},
  };
  for (const Case& c : cases) {
    TLSD_ASSERT_OK_AND_ASSIGN(ConnState forged, OpenBlob(*sealer_, a, a.blob));
    forged.rx_key_hash = c.rx;
    forged.tx_key_hash = c.tx;
    ControlRecord r{kRecordHandshake, kKeyUpdateRequested, sealer_->Seal(forged, b_local, b_peer)};
    EXPECT_THAT(AnswerControlRecord(*sealer_, ControlRecordPolicy(), r, b.server()),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("current keys")))
        << c.what;
  }
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes b_after, ReadKeyHashes(b.server()));
  EXPECT_TRUE(b_after == b_keys);
  ExpectDataBothWays(b, "after forged blobs");
}

// ---------------------------------------------------------------------------
// TLS 1.2, over the three AEADs

class Tls12ControlRecordsTest : public ControlRecordsTest {};

// (g) A renegotiation attempt is declined with a no_renegotiation warning
// (RFC 5246 7.2.2) and the connection goes on.
TEST_P(Tls12ControlRecordsTest, RenegotiationIsRefusedWithNoRenegotiation) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 701));
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, kClientHello));
  absl::StatusOr<ControlVerdict> v = Answer(l, kRecordHandshake, kClientHello);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(ActionName(v->action), std::string("kContinue")) << ::testing::PrintToString(*v);
  EXPECT_THAT(v->message, HasSubstr("no_renegotiation"));
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelWarning, kAlertNoRenegotiation}));
  ExpectDataBothWays(l, "after refused renegotiation");
  // And again, with the new blob.
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, kClientHello));
  v = Answer(l, kRecordHandshake, kClientHello);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(ActionName(v->action), std::string("kContinue")) << ::testing::PrintToString(*v);
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelWarning, kAlertNoRenegotiation}));
}

// (g) A handshake message that cannot come after the handshake (Finished).
TEST_P(Tls12ControlRecordsTest, UnexpectedHandshakeTypeFails) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 702));
  const std::string finished = Bytes({20, 0, 0, 4, 0, 0, 0, 0});
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, finished));
  ExpectVerdict(Answer(l, kRecordHandshake, finished), ControlAction::kFailed,
                kAlertUnexpectedMessage, "unexpected handshake message type 20");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
}

// KeyUpdate does not exist in TLS 1.2.
TEST_P(Tls12ControlRecordsTest, KeyUpdateIsUnexpectedMessage) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(Link l, Handoff(GetParam(), 703));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys0, ReadKeyHashes(l.server()));
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, kKeyUpdateRequested));
  ExpectVerdict(Answer(l, kRecordHandshake, kKeyUpdateRequested), ControlAction::kFailed,
                kAlertUnexpectedMessage, "unexpected handshake message type 24");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelFatal, kAlertUnexpectedMessage}));
  TLSD_ASSERT_OK_AND_ASSIGN(const KeyHashes keys1, ReadKeyHashes(l.server()));
  EXPECT_TRUE(keys1 == keys0);
}

INSTANTIATE_TEST_SUITE_P(
    Tls12AllAeads, Tls12ControlRecordsTest,
    ::testing::Values(testing::TlsParams{TlsVersion::kTls12, KtlsCipher::kAes128Gcm},
                      testing::TlsParams{TlsVersion::kTls12, KtlsCipher::kAes256Gcm},
                      testing::TlsParams{TlsVersion::kTls12, KtlsCipher::kChaCha20Poly1305}),
    testing::TlsParamsName);

// ---------------------------------------------------------------------------
// The verdict's alert field

// messages.h: a verdict's `alert` is "the alert received or sent, if any".
// Two kContinue answers involve one: a user_canceled warning received, and
// the no_renegotiation warning tlsd sends.
class ControlVerdictTest : public FixedParamsTest {};

TEST_F(ControlVerdictTest, ContinueVerdictsNameTheAlertReceivedOrSent) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(
      Link l, Handoff(testing::TlsParams{TlsVersion::kTls12, KtlsCipher::kAes256Gcm}, 801));
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordAlert, kUserCanceled));
  ExpectVerdict(Answer(l, kRecordAlert, kUserCanceled), ControlAction::kContinue,
                kAlertUserCanceled, "user_canceled");
  ASSERT_NO_FATAL_FAILURE(ClientSends(l, kRecordHandshake, kClientHello));
  ExpectVerdict(Answer(l, kRecordHandshake, kClientHello), ControlAction::kContinue,
                kAlertNoRenegotiation, "no_renegotiation");
  ExpectClientGets(l, kRecordAlert, Bytes({kAlertLevelWarning, kAlertNoRenegotiation}));
}

// ---------------------------------------------------------------------------
// The client role (tlsd's outgoing connections)

class ClientRoleTest : public FixedParamsTest {
 protected:
  // SealClientSide seals the client end of `l` as tlsd would for one of its
  // own outgoing connections: rx = the server's secret, tx = the client's.
  absl::StatusOr<std::string> SealClientSide(const Link& l) {
    return SealForHandoff(*sealer_, l.client(), /*is_server=*/false, l.id + 1,
                          static_cast<uint16_t>(l.params.version), l.suite, l.client_rx_secret,
                          l.client_tx_secret);
  }
  absl::StatusOr<ControlVerdict> AnswerAtClient(const Link& l, std::string* blob, uint8_t type,
                                                std::string payload) {
    ControlRecord r{type, std::move(payload), *blob};
    absl::StatusOr<ControlVerdict> v =
        AnswerControlRecord(*sealer_, ControlRecordPolicy(), r, l.client());
    if (v.ok() && v->action == ControlAction::kContinue) *blob = v->sealed_state;
    return v;
  }
};

// TLS 1.3 NewSessionTickets reach a client: tlsd lets the connection go on.
TEST_F(ClientRoleTest, Tls13NewSessionTicketsAreAccepted) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(
      Link l, Handoff(testing::TlsParams{TlsVersion::kTls13, KtlsCipher::kAes256Gcm}, 901));
  TLSD_ASSERT_OK_AND_ASSIGN(std::string blob, SealClientSide(l));
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Record> rec = ReadRecord(l.client());
    ASSERT_THAT(rec, IsOk());
    ASSERT_EQ(int{rec->type}, int{kRecordHandshake});
    ASSERT_TRUE(OnlyNewSessionTickets(rec->payload)) << Hex(rec->payload);
    ExpectVerdict(AnswerAtClient(l, &blob, rec->type, rec->payload), ControlAction::kContinue,
                  std::nullopt, "NewSessionTicket");
  }
  ExpectDataBothWays(l, "after the tickets");
}

// TLS 1.2: a HelloRequest from the server is declined with no_renegotiation.
TEST_F(ClientRoleTest, Tls12HelloRequestIsRefusedWithNoRenegotiation) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  TLSD_ASSERT_OK_AND_ASSIGN(
      Link l, Handoff(testing::TlsParams{TlsVersion::kTls12, KtlsCipher::kAes256Gcm}, 902));
  TLSD_ASSERT_OK_AND_ASSIGN(std::string blob, SealClientSide(l));
  const std::string hello_request = Bytes({kHandshakeHelloRequest, 0, 0, 0});
  ASSERT_THAT(
      SendTlsRecord(l.server(), kRecordHandshake,
                    absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(hello_request.data()),
                                        hello_request.size())),
      IsOk());
  absl::StatusOr<Record> rec = ReadRecord(l.client());
  ASSERT_THAT(rec, IsOk());
  ASSERT_EQ(Hex(rec->payload), Hex(hello_request));
  absl::StatusOr<ControlVerdict> v = AnswerAtClient(l, &blob, rec->type, rec->payload);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(ActionName(v->action), std::string("kContinue")) << ::testing::PrintToString(*v);
  EXPECT_THAT(v->message, HasSubstr("no_renegotiation"));
  absl::StatusOr<Record> at_server = ReadRecord(l.server());
  ASSERT_THAT(at_server, IsOk());
  EXPECT_EQ(int{at_server->type}, int{kRecordAlert});
  EXPECT_EQ(Hex(at_server->payload), Hex(Bytes({kAlertLevelWarning, kAlertNoRenegotiation})));
  // A ClientHello is what a server sends never: unexpected at a client.
  v = AnswerAtClient(l, &blob, kRecordHandshake, kClientHello);
  ExpectVerdict(v, ControlAction::kFailed, kAlertUnexpectedMessage, "type 1");
}

}  // namespace
}  // namespace tlsd
