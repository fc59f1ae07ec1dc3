// Control records end to end: a libtlsfd app (the in-process echo backend)
// serves real clients through tlsd, and what the client sends after the
// handshake — close_notify, TLS 1.3 KeyUpdates from openssl s_client's `k`
// and `K` commands and from a client that sends several — is answered the
// way ARCHITECTURE.md's table says. In the kTLS VM lane the records reach the
// app's kTLS socket and travel to tlsd over the control socket; on 7.x the
// kernel rekeys (TlsRxRekeyOk / TlsTxRekeyOk), on 6.1 tlsd ends the
// connection cleanly with close_notify and logs why. On a host without kTLS
// tlsd's relay answers them itself; the client sees the same as on 7.x.

#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// KernelCanRekey: a kTLS kernel that takes new TLS 1.3 keys on a live socket
// (it exports the rekey counters).
bool KernelCanRekey() { return KernelKtls() && TlsStatSnapshot().Has("TlsRxRekeyOk"); }

// What this kernel does with a KeyUpdate after handoff.
enum class KeyUpdateOutcome { kRelayAnswers, kKernelRekeys, kCleanClose };
KeyUpdateOutcome ExpectedKeyUpdateOutcome() {
  if (!KernelKtls()) return KeyUpdateOutcome::kRelayAnswers;
  return KernelCanRekey() ? KeyUpdateOutcome::kKernelRekeys : KeyUpdateOutcome::kCleanClose;
}

size_t Count(absl::string_view haystack, absl::string_view needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != absl::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

class ControlRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestDaemon>> d =
        TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = *std::move(d);
    absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
        InProcessBackend::Subscribe(daemon_->control(), "app", EchoHandler());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = *std::move(b);
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<InProcessBackend> backend_;
};

class CloseNotifyTest : public ControlRecordTest, public ::testing::WithParamInterface<int> {};

// The client's close_notify ends the app's read (EchoHandler returns on 0 and
// closes), and the client gets close_notify back, not a reset.
TEST_P(CloseNotifyTest, ClientCloseNotifyIsEndOfStreamForTheAppAndIsAnswered) {
  absl::StatusOr<std::unique_ptr<TlsClient>> c =
      TlsClient::Connect(daemon_->port(), {.version = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << daemon_->Log();
  ASSERT_TRUE((*c)->Write("hello").ok());
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(5);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "hello");
  ASSERT_EQ(SSL_shutdown((*c)->ssl()), 0) << "close_notify sent, the peer's not yet seen";
  ReadEnd end = (*c)->ReadToEnd();
  EXPECT_EQ(end.kind, ReadEnd::kCloseNotify) << end.Describe();

  std::vector<ConnRecord> recs = backend_->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << daemon_->Log();
  EXPECT_EQ(recs[0].received, "hello");
  EXPECT_EQ(recs[0].handler_error, "") << "the app's read must end with 0, not an error";
  ExpectDataPath(recs[0], *daemon_);
}

INSTANTIATE_TEST_SUITE_P(Versions, CloseNotifyTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION), [](const auto& info) {
                           return info.param == TLS1_2_VERSION ? "Tls12" : "Tls13";
                         });

// openssl s_client ends the connection at end of input with close_notify
// (its shutdown is one-way; SClientCloseNotifyTest below finds the answer in
// its -debug dump). The app's read must end with 0, after the bytes, not
// with an error.
TEST_F(ControlRecordTest, SClientCloseNotifyIsEndOfStreamForTheApp) {
  PeerOptions opts;
  opts.stdin_data = "hello\n";
  opts.close_stdin_after_stdout_has = "hello";
  PeerResult r = RunPeer(
      {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", daemon_->port()), "-servername",
       "localhost", "-CAfile", daemon_->env().ca, "-verify_return_error", "-quiet", "-no_ign_eof"},
      opts);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "hello\n") << r.Describe();
  std::vector<ConnRecord> recs = backend_->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << daemon_->Log();
  EXPECT_EQ(recs[0].received, "hello\n");
  EXPECT_EQ(recs[0].handler_error, "") << "the app's read must end with 0 at close_notify";
  ExpectDataPath(recs[0], *daemon_);
}

// The bytes s_client's -debug dump shows it reading after it sent its own
// close_notify (its ">>> ... Alert ... close_notify" -msg line): the hex of
// every "read from ... => N" dump that follows. s_client drains the socket
// for up to 500 ms after its one-way shutdown, and -debug logs those reads
// even though it no longer decrypts them.
std::vector<uint8_t> BytesReadAfterOwnCloseNotify(absl::string_view out) {
  std::vector<uint8_t> bytes;
  bool after_close = false;
  bool in_read_dump = false;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, ">>> ") && absl::StrContains(line, "close_notify")) {
      after_close = true;
      continue;
    }
    if (!after_close) continue;
    if (absl::StartsWith(line, "read from ")) {
      in_read_dump = true;
      continue;
    }
    // A dump line: "0010 - 42 b6 6b 78 ad a4 b9 c9-94 f6 a5 8f 03 84 c1 22   ascii".
    if (!in_read_dump || line.size() < 9 || line.substr(4, 3) != " - ") {
      in_read_dump = false;
      continue;
    }
    std::string hex(line.substr(7, std::min<size_t>(47, line.size() - 7)));
    std::replace(hex.begin(), hex.end(), '-', ' ');
    for (absl::string_view token : absl::StrSplit(hex, ' ', absl::SkipEmpty())) {
      int byte = 0;
      if (token.size() != 2 || !absl::SimpleHexAtoi(token, &byte)) break;
      bytes.push_back(static_cast<uint8_t>(byte));
    }
  }
  return bytes;
}

class SClientCloseNotifyTest : public ControlRecordTest,
                               public ::testing::WithParamInterface<int> {};

// The acceptance wording, on s_client's own output: s_client sends
// close_notify at end of input, the app's read ends with 0, and the app's
// close_notify comes back. s_client no longer decrypts at that point, so the
// record is identified by its header in the -debug dump: exactly one record,
// then the end of the stream. TLS 1.2 shows the alert content type (21) with
// the size of an encrypted two-byte alert (AES-GCM: 8-byte explicit nonce +
// 2 + 16-byte tag = 26; ChaCha20-Poly1305: 2 + 16 = 18). TLS 1.3 hides the
// type (23 outside): 2 + 1 inner type + 16 = 19 bytes, and the app wrote
// nothing else (CloseNotifyTest above decrypts it with an OpenSSL client).
TEST_P(SClientCloseNotifyTest, ClientSeesTheAppsCloseNotifyInSClientsOutput) {
  const bool tls13 = GetParam() == TLS1_3_VERSION;
  PeerOptions opts;
  opts.stdin_data = "close-notify-probe\n";
  opts.close_stdin_after_stdout_has = "close-notify-probe";
  PeerResult r =
      RunPeer({kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", daemon_->port()),
               "-servername", "localhost", "-CAfile", daemon_->env().ca, "-verify_return_error",
               tls13 ? "-tls1_3" : "-tls1_2", "-quiet", "-no_ign_eof", "-msg", "-debug"},
              opts);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_THAT(r.out, HasSubstr("Alert [length 0002], warning close_notify"))
      << "s_client sent no close_notify\n"
      << r.Describe();
  std::vector<uint8_t> got = BytesReadAfterOwnCloseNotify(r.out);
  std::vector<ConnRecord> recs = backend_->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << daemon_->Log();
  EXPECT_EQ(recs[0].received, "close-notify-probe\n");
  EXPECT_EQ(recs[0].handler_error, "") << "the app's read must end with 0 at close_notify";
  ExpectDataPath(recs[0], *daemon_);

  ASSERT_GE(got.size(), 5u) << "s_client read nothing after its close_notify\n" << r.Describe();
  const size_t length = (size_t{got[3]} << 8) | got[4];
  EXPECT_EQ(got.size(), 5 + length) << "one record, then end of stream\n" << r.Describe();
  EXPECT_EQ(got[1], 0x03);
  EXPECT_EQ(got[2], 0x03);
  if (tls13) {
    EXPECT_EQ(got[0], 23) << "TLS 1.3 records are application_data outside";
    EXPECT_EQ(length, 19u) << r.Describe();
  } else {
    EXPECT_EQ(got[0], 21) << "an alert record" << r.Describe();
    EXPECT_TRUE(length == 26 || length == 18) << "length " << length << "\n" << r.Describe();
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, SClientCloseNotifyTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION), [](const auto& info) {
                           return info.param == TLS1_2_VERSION ? "Tls12" : "Tls13";
                         });

// openssl s_client's `K` (KeyUpdate, update_requested) and `k` (not
// requested) between echoed lines.
TEST_F(ControlRecordTest, SClientKeyUpdatesKeepTheConnectionOrEndItCleanly) {
  TlsStatSnapshot before;
  const KeyUpdateOutcome expected = ExpectedKeyUpdateOutcome();
  PeerOptions opts;
  opts.stdin_data = "ping-1\n";
  opts.stdin_script = {
      {"ping-1", "K\n"}, {"KEYUPDATE", "ping-2\n"}, {"ping-2", "k\n"}, {"KEYUPDATE", "ping-3\n"}};
  opts.close_stdin_after_stdout_has = "ping-3";
  opts.timeout = absl::Seconds(60);
  PeerResult r = RunPeer(
      {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", daemon_->port()), "-servername",
       "localhost", "-CAfile", daemon_->env().ca, "-verify_return_error", "-tls1_3", "-msg"},
      opts);
  ASSERT_FALSE(r.timed_out) << r.Describe() << "\n" << daemon_->Log();
  EXPECT_THAT(r.out, HasSubstr("ping-1")) << r.Describe();
  // -msg shows each handshake message: ">>>" sent, "<<<" received.
  const size_t sent_ku = Count(r.out, ">>> TLS 1.3, Handshake [length 0005], KeyUpdate");
  const size_t got_ku = Count(r.out, "<<< TLS 1.3, Handshake [length 0005], KeyUpdate");
  std::vector<ConnRecord> recs = backend_->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << daemon_->Log();

  if (expected == KeyUpdateOutcome::kCleanClose) {
    // 6.1: no rekey. tlsd ends the connection with close_notify, says why,
    // and the app's read returned 0.
    EXPECT_EQ(sent_ku, 1u) << r.Describe();
    EXPECT_THAT(r.out, Not(HasSubstr("ping-2"))) << r.Describe();
    EXPECT_THAT(r.out, HasSubstr("Alert [length 0002], warning close_notify")) << r.Describe();
    EXPECT_TRUE(daemon_->WaitForLog("cannot rekey")) << daemon_->Log();
    EXPECT_EQ(recs[0].handler_error, "");
    EXPECT_EQ(recs[0].received, "ping-1\n");
    return;
  }
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("ping-2")) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("ping-3")) << r.Describe();
  EXPECT_EQ(sent_ku, 2u) << r.Describe();
  EXPECT_EQ(got_ku, 1u) << "tlsd answers K (update_requested) with its own KeyUpdate, k not\n"
                        << r.Describe();
  EXPECT_EQ(recs[0].received, "ping-1\nping-2\nping-3\n");
  EXPECT_EQ(recs[0].handler_error, "");
  if (expected == KeyUpdateOutcome::kKernelRekeys) {
    EXPECT_EQ(recs[0].rx_path_name, "ktls-sw");
    EXPECT_EQ(before.Delta("TlsRxRekeyOk"), 2);
    EXPECT_EQ(before.Delta("TlsTxRekeyOk"), 1);
    EXPECT_EQ(before.Delta("TlsRxRekeyError"), 0);
  }
}

// A client that updates its keys several times, each time asking tlsd to
// update its own, with a data round trip after each.
TEST_F(ControlRecordTest, SeveralKeyUpdatesWithDataRoundTripsInBetween) {
  constexpr int kUpdates = 5;
  TlsStatSnapshot before;
  const KeyUpdateOutcome expected = ExpectedKeyUpdateOutcome();
  absl::StatusOr<std::unique_ptr<TlsClient>> c =
      TlsClient::Connect(daemon_->port(), {.version = TLS1_3_VERSION});
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << daemon_->Log();
  ASSERT_TRUE((*c)->Write("first").ok());
  ASSERT_TRUE((*c)->ReadExactly(5).ok());
  for (int i = 0; i < kUpdates; ++i) {
    SCOPED_TRACE(absl::StrCat("KeyUpdate #", i + 1));
    ASSERT_EQ(SSL_key_update((*c)->ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
    const std::string msg = absl::StrCat("after-update-", i + 1);
    ASSERT_TRUE((*c)->Write(msg).ok());
    if (expected == KeyUpdateOutcome::kCleanClose) {
      ReadEnd end = (*c)->ReadToEnd();
      EXPECT_EQ(end.kind, ReadEnd::kCloseNotify) << end.Describe();
      EXPECT_EQ(end.data, "") << "nothing after the KeyUpdate reaches the app";
      EXPECT_TRUE(daemon_->WaitForLog("cannot rekey")) << daemon_->Log();
      return;
    }
    absl::StatusOr<std::string> echo = (*c)->ReadExactly(msg.size());
    ASSERT_TRUE(echo.ok()) << echo.status() << "\n" << daemon_->Log();
    EXPECT_EQ(*echo, msg);
  }
  if (expected == KeyUpdateOutcome::kKernelRekeys) {
    EXPECT_EQ(before.Delta("TlsRxRekeyOk"), kUpdates);
    EXPECT_EQ(before.Delta("TlsTxRekeyOk"), kUpdates);
  }
  (*c)->Close();
  std::vector<ConnRecord> recs = backend_->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].handler_error, "");
}

// A KeyUpdate storm ends the connection (tlsd's per-connection limit: 16
// control records per 10 s) instead of costing tlsd a key derivation per
// record: with kTLS tlsd answers the 17th with unexpected_message; relaying,
// it closes the connection (OpenSSL sends no alert of our choosing).
TEST_F(ControlRecordTest, KeyUpdateStormEndsTheConnection) {
  if (KernelKtls() && !KernelCanRekey()) {
    GTEST_SKIP() << "skipped: this kernel cannot rekey, so the first KeyUpdate already ends "
                    "the connection (SeveralKeyUpdatesWithDataRoundTripsInBetween)";
  }
  absl::StatusOr<std::unique_ptr<TlsClient>> c =
      TlsClient::Connect(daemon_->port(), {.version = TLS1_3_VERSION});
  ASSERT_TRUE(c.ok()) << c.status();
  // One over the limit, each followed by a byte the app echoes. The client
  // then only reads: had it kept writing into the closed connection, its
  // failed SSL_write would leave OpenSSL unable to read the alert.
  constexpr int kLimit = 16;
  for (int sent = 0; sent < kLimit + 1; ++sent) {
    ASSERT_EQ(SSL_key_update((*c)->ssl(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    ASSERT_TRUE((*c)->Write("x").ok()) << "KeyUpdate #" << sent + 1;
  }
  ReadEnd end = (*c)->ReadToEnd();
  if (KernelKtls()) {
    EXPECT_EQ(end.kind, ReadEnd::kAlert) << end.Describe();
    EXPECT_EQ(end.alert, SSL_AD_UNEXPECTED_MESSAGE) << end.Describe();
  } else {
    EXPECT_TRUE(end.kind == ReadEnd::kEof || end.kind == ReadEnd::kError) << end.Describe();
  }
  if (KernelKtls()) {
    // The app echoes each byte before it reads the next KeyUpdate.
    EXPECT_EQ(end.data, std::string(kLimit, 'x')) << "the bytes behind the admitted KeyUpdates";
  } else {
    // The relay closes with echoes still on their way back through it.
    EXPECT_LE(end.data.size(), static_cast<size_t>(kLimit));
  }
  EXPECT_TRUE(daemon_->WaitForLog("more than 16 control records in 10s")) << daemon_->Log();
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
