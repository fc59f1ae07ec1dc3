// Codec tests for common/wire: golden encodings, round trips, and one row per
// distinct check in each decoder (STYLE.md 2.6, 2.9).
//
// The reject rows are built with a small big-endian builder that is written
// independently of ByteWriter, so a layout bug in the codec cannot hide behind
// the same bug in the test. ConnectionInfoLayoutMatchesEncode pins the builder
// to ConnectionInfo::Encode().

#include <errno.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/wire/byte_io.h"
#include "common/wire/frame.h"
#include "common/wire/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsd {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Helpers

// Bytes is a test-only big-endian builder (deliberately not ByteWriter).
class Bytes {
 public:
  Bytes& U8(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  Bytes& U16(uint16_t v) { return U8(v >> 8).U8(v & 0xff); }
  Bytes& U32(uint32_t v) { return U16(v >> 16).U16(v & 0xffff); }
  Bytes& U64(uint64_t v) { return U32(v >> 32).U32(v & 0xffffffffu); }
  Bytes& Raw(absl::string_view s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Raw(absl::Span<const uint8_t> s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Str8(absl::string_view s) { return U8(static_cast<uint8_t>(s.size())).Raw(s); }
  Bytes& Str16(absl::string_view s) { return U16(static_cast<uint16_t>(s.size())).Raw(s); }
  std::vector<uint8_t> Take() { return std::move(b_); }

 private:
  std::vector<uint8_t> b_;
};

std::vector<uint8_t> RawFrame(uint16_t version, uint16_t type, uint32_t request_id,
                              uint32_t payload_len, absl::string_view payload) {
  return Bytes().U16(version).U16(type).U32(request_id).U32(payload_len).Raw(payload).Take();
}

std::array<uint8_t, 16> V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return {a, b, c, d}; }

std::array<uint8_t, 16> V6(std::initializer_list<uint16_t> groups) {
  std::array<uint8_t, 16> out{};
  size_t i = 0;
  for (uint16_t g : groups) {
    out[i++] = static_cast<uint8_t>(g >> 8);
    out[i++] = static_cast<uint8_t>(g & 0xff);
  }
  return out;
}

// A valid ConnectionInfo over IPv4, no client certificate, every field set.
ConnectionInfo SampleV4() {
  ConnectionInfo c;
  c.connection_id = 0x0102030405060708ull;
  c.service = "web-https";
  c.backend = "app_1.local";
  c.sni = "www.example.com";
  c.alpn = "h2";
  c.tls_version = 0x0304;
  c.cipher_suite = 0x1302;
  c.cipher_name = "TLS_AES_256_GCM_SHA384";
  c.tx_path = DataPath::kKernelSoftware;
  c.rx_path = DataPath::kRelay;
  c.path_reason = "rx: kTLS rekey not supported";
  c.peer = WireAddress{4, V4(192, 0, 2, 10), 50000};
  c.local = WireAddress{4, V4(198, 51, 100, 1), 443};
  c.has_client_cert = false;
  c.resumed = true;
  c.handshake_us = 12345;
  c.sealed_state = std::string("\x00\x01\xfe\xff sealed", 10);
  return c;
}

// A valid ConnectionInfo over IPv6 with a client certificate.
ConnectionInfo SampleV6WithCert() {
  ConnectionInfo c;
  c.connection_id = 0xfffffffffffffffeull;
  c.service = "imaps";
  c.backend = "dovecot";
  c.sni = "mail.example.org";
  c.alpn = "";
  c.tls_version = 0x0303;
  c.cipher_suite = 0xc02f;
  c.cipher_name = "ECDHE-RSA-AES128-GCM-SHA256";
  c.tx_path = DataPath::kKernelDevice;
  c.rx_path = DataPath::kKernelDevice;
  c.path_reason = "";
  c.peer = WireAddress{6, V6({0x2001, 0x0db8, 0, 0, 0, 0, 0, 1}), 1};
  c.local = WireAddress{6, V6({0, 0, 0, 0, 0, 0, 0, 1}), 65535};
  c.has_client_cert = true;
  c.client_cert_subject = "CN=client.example.org,O=Example\\, Inc.,C=DE";
  for (size_t i = 0; i < c.client_cert_sha256.size(); ++i) {
    c.client_cert_sha256[i] = static_cast<uint8_t>(0xa0 + i);
  }
  c.resumed = false;
  c.handshake_us = 0xffffffffu;
  c.sealed_state = std::string(1024, '\x5a');
  return c;
}

// RawConnection mirrors the CONNECTION payload layout field by field with raw
// integer fields, so each reject row can break exactly one of them.
struct RawAddress {
  uint8_t family = 4;
  std::array<uint8_t, 16> addr = V4(192, 0, 2, 10);
  uint16_t port = 443;
};

struct RawConnection {
  uint64_t connection_id = 7;
  std::string service = "web";
  std::string backend = "app";
  std::string sni = "example.com";
  std::string alpn = "http/1.1";
  uint16_t tls_version = 0x0304;
  uint16_t cipher_suite = 0x1301;
  std::string cipher_name = "TLS_AES_128_GCM_SHA256";
  uint8_t tx = 1;
  uint8_t rx = 3;
  std::string path_reason = "relay";
  RawAddress peer;
  RawAddress local;
  uint8_t has_client_cert = 1;
  std::string subject = "CN=c";
  std::array<uint8_t, 32> sha256{};
  uint8_t resumed = 0;
  uint32_t handshake_us = 99;
  std::string sealed = "s";

  std::vector<uint8_t> Encode() const {
    Bytes b;
    b.U64(connection_id).Str8(service).Str8(backend).Str8(sni).Str8(alpn);
    b.U16(tls_version).U16(cipher_suite).Str8(cipher_name).U8(tx).U8(rx).Str16(path_reason);
    for (const RawAddress* a : {&peer, &local}) b.U8(a->family).Raw(a->addr).U16(a->port);
    b.U8(has_client_cert).Str16(subject).Raw(sha256).U8(resumed).U32(handshake_us);
    b.Str16(sealed);
    return b.Take();
  }
};

// Expects `s` to be kInvalidArgument whose message contains `substr`.
void ExpectInvalid(const absl::Status& s, absl::string_view substr) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(substr)));
}

// ---------------------------------------------------------------------------
// ByteReader / ByteWriter

TEST(ByteIoTest, WriterIsBigEndian) {
  ByteWriter w;
  w.WriteU8(0x01);
  w.WriteU16(0x0203);
  w.WriteU32(0x04050607);
  w.WriteU64(0x08090a0b0c0d0e0full);
  w.WriteU8Prefixed("ab");
  w.WriteU16Prefixed("c");
  EXPECT_THAT(w.bytes(), ElementsAre(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                                     0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 2, 'a', 'b', 0, 1, 'c'));
}

TEST(ByteIoTest, ReaderRoundTripsWriter) {
  ByteWriter w;
  w.WriteU8(0xfe);
  w.WriteU16(0xfedc);
  w.WriteU32(0xfedcba98);
  w.WriteU64(0xfedcba9876543210ull);
  w.WriteU8Prefixed("");
  w.WriteU16Prefixed(std::string(300, 'x'));
  std::vector<uint8_t> bytes = w.Take();
  ByteReader r(bytes);
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  absl::string_view s8, s16;
  ASSERT_TRUE(r.ReadU8(&u8) && r.ReadU16(&u16) && r.ReadU32(&u32) && r.ReadU64(&u64) &&
              r.ReadU8Prefixed(&s8) && r.ReadU16Prefixed(&s16));
  EXPECT_EQ(u8, 0xfe);
  EXPECT_EQ(u16, 0xfedc);
  EXPECT_EQ(u32, 0xfedcba98u);
  EXPECT_EQ(u64, 0xfedcba9876543210ull);
  EXPECT_EQ(s8, "");
  EXPECT_EQ(s16, std::string(300, 'x'));
  EXPECT_TRUE(r.empty());
}

TEST(ByteIoTest, ShortReadsConsumeNothing) {
  const uint8_t in[] = {0x00, 0x05, 'a', 'b'};  // u16 prefix says 5, only 2 follow
  ByteReader r(in);
  uint32_t u32;
  uint64_t u64;
  absl::string_view s;
  absl::Span<const uint8_t> span;
  EXPECT_FALSE(r.ReadU64(&u64));
  EXPECT_FALSE(r.ReadBytes(5, &span));
  EXPECT_FALSE(r.ReadU16Prefixed(&s));
  EXPECT_EQ(r.remaining(), 4u);
  // The u8 prefix (0) succeeds; the next u8 prefix (5) overruns and rewinds.
  ASSERT_TRUE(r.ReadU8Prefixed(&s));
  EXPECT_EQ(s, "");
  EXPECT_FALSE(r.ReadU8Prefixed(&s));
  EXPECT_EQ(r.remaining(), 3u);
  ASSERT_TRUE(r.ReadBytes(3, &span));
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.ReadU32(&u32));
}

TEST(ByteIoDeathTest, OverlongPrefixedStringIsACallerBug) {
  ByteWriter w;
  EXPECT_DEATH(w.WriteU8Prefixed(std::string(256, 'x')), "check failed");
  EXPECT_DEATH(w.WriteU16Prefixed(std::string(65536, 'x')), "check failed");
}

// ---------------------------------------------------------------------------
// Frames

TEST(FrameTest, GoldenEncoding) {
  const uint8_t payload[] = {0xaa, 0xbb};
  EXPECT_THAT(EncodeFrame(MsgType::kConnection, 0x0a0b0c0d, payload),
              ElementsAre(0, 1,                    // version
                          0, 4,                    // type CONNECTION
                          0x0a, 0x0b, 0x0c, 0x0d,  // request_id
                          0, 0, 0, 2,              // payload_len
                          0xaa, 0xbb));
}

TEST(FrameTest, RoundTripsEveryType) {
  const std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  for (uint16_t t = 1; t <= 10; ++t) {
    SCOPED_TRACE(t);
    ASSERT_TRUE(IsKnownMsgType(t));
    const MsgType type = static_cast<MsgType>(t);
    std::vector<uint8_t> datagram = EncodeFrame(type, 0xffffffffu - t, payload);
    ASSERT_EQ(datagram.size(), kFrameHeaderLen + payload.size());
    absl::Span<const uint8_t> out;
    absl::StatusOr<FrameHeader> h = DecodeFrame(datagram, &out);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(h->type, type);
    EXPECT_EQ(h->request_id, 0xffffffffu - t);
    EXPECT_THAT(out, ElementsAreArray(payload));
    // The payload is a view into the datagram, not a copy.
    EXPECT_EQ(out.data(), datagram.data() + kFrameHeaderLen);
  }
}

TEST(FrameTest, EmptyAndMaximalPayloads) {
  for (size_t len : {size_t{0}, kMaxFrameLen - kFrameHeaderLen}) {
    SCOPED_TRACE(len);
    std::vector<uint8_t> payload(len, 0x42);
    std::vector<uint8_t> datagram = EncodeFrame(MsgType::kHelloOk, 1, payload);
    EXPECT_EQ(datagram.size(), kFrameHeaderLen + len);
    absl::Span<const uint8_t> out;
    absl::StatusOr<FrameHeader> h = DecodeFrame(datagram, &out);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(out.size(), len);
  }
}

TEST(FrameTest, RejectsEveryTruncatedHeader) {
  std::vector<uint8_t> datagram = EncodeFrame(MsgType::kHello, 1, {});
  for (size_t len = 0; len < kFrameHeaderLen; ++len) {
    SCOPED_TRACE(len);
    absl::Span<const uint8_t> out;
    ExpectInvalid(DecodeFrame(absl::MakeConstSpan(datagram.data(), len), &out).status(),
                  "frame: shorter than its header");
  }
}

TEST(FrameTest, MsgTypeNamesAndRange) {
  EXPECT_FALSE(IsKnownMsgType(0));
  EXPECT_FALSE(IsKnownMsgType(11));
  EXPECT_STREQ(MsgTypeName(MsgType::kAdminReply), "ADMIN_REPLY");
  EXPECT_FALSE(IsKnownMsgType(0xffff));
  EXPECT_STREQ(MsgTypeName(MsgType::kHello), "HELLO");
  EXPECT_STREQ(MsgTypeName(MsgType::kConnection), "CONNECTION");
  EXPECT_STREQ(MsgTypeName(MsgType::kControlVerdict), "CONTROL_VERDICT");
  EXPECT_STREQ(MsgTypeName(static_cast<MsgType>(42)), "unknown");
}

TEST(FrameDeathTest, OversizePayloadIsACallerBug) {
  std::vector<uint8_t> payload(kMaxFrameLen - kFrameHeaderLen + 1);
  EXPECT_DEATH(EncodeFrame(MsgType::kHello, 1, payload), "check failed");
}

// ---------------------------------------------------------------------------
// HELLO

TEST(HelloTest, GoldenEncodingAndRoundTrip) {
  Hello h{"app_1.local"};
  std::vector<uint8_t> wire = h.Encode();
  EXPECT_EQ(wire, Bytes().Str8("app_1.local").Take());
  absl::StatusOr<Hello> back = Hello::Decode(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->backend, "app_1.local");
}

TEST(HelloTest, AcceptsLongestName) {
  std::string name(64, 'z');
  absl::StatusOr<Hello> back = Hello::Decode(Hello{name}.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->backend, name);
}

TEST(HelloTest, RejectsEveryTruncation) {
  std::vector<uint8_t> wire = Hello{"backend"}.Encode();
  for (size_t len = 0; len < wire.size(); ++len) {
    SCOPED_TRACE(len);
    ExpectInvalid(Hello::Decode(absl::MakeConstSpan(wire.data(), len)).status(),
                  "HELLO: malformed");
  }
}

TEST(AdminRequestTest, GoldenEncodingAndRejects) {
  EXPECT_EQ(AdminRequest{AdminCommand::kCerts}.Encode(), Bytes().U8(4).Take());
  absl::StatusOr<AdminRequest> back = AdminRequest::Decode(Bytes().U8(2).Take());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->command, AdminCommand::kReload);
  EXPECT_EQ(std::string(AdminCommandName(back->command)), "reload");
  ExpectInvalid(AdminRequest::Decode(Bytes().Take()).status(), "ADMIN_REQUEST: malformed");
  ExpectInvalid(AdminRequest::Decode(Bytes().U8(1).U8(0).Take()).status(),
                "ADMIN_REQUEST: malformed");
  ExpectInvalid(AdminRequest::Decode(Bytes().U8(0).Take()).status(),
                "ADMIN_REQUEST: unknown command 0");
  ExpectInvalid(AdminRequest::Decode(Bytes().U8(5).Take()).status(),
                "ADMIN_REQUEST: unknown command 5");
}

TEST(AdminReplyChunkTest, GoldenEncodingRoundTripAndRejects) {
  const AdminReplyChunk chunk{true, "{\"ok\":true}"};
  EXPECT_EQ(chunk.Encode(), Bytes().U8(1).Str16("{\"ok\":true}").Take());
  absl::StatusOr<AdminReplyChunk> back = AdminReplyChunk::Decode(chunk.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->last);
  EXPECT_EQ(back->data, chunk.data);
  ExpectInvalid(AdminReplyChunk::Decode(Bytes().U8(2).Str16("x").Take()).status(),
                "ADMIN_REPLY: bad last flag");
  ExpectInvalid(
      AdminReplyChunk::Decode(Bytes().U8(0).Str16(std::string(kMaxAdminChunk + 1, 'x')).Take())
          .status(),
      "ADMIN_REPLY: chunk too long");
  const std::vector<uint8_t> wire = chunk.Encode();
  for (size_t len = 0; len < wire.size(); ++len) {
    SCOPED_TRACE(len);
    ExpectInvalid(AdminReplyChunk::Decode(absl::MakeConstSpan(wire.data(), len)).status(),
                  "ADMIN_REPLY: malformed");
  }
}

TEST(ServiceNameTest, Charset) {
  EXPECT_TRUE(IsValidServiceName("a"));
  EXPECT_TRUE(IsValidServiceName("Az09_.-"));
  EXPECT_TRUE(IsValidServiceName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidServiceName(""));
  EXPECT_FALSE(IsValidServiceName(std::string(65, 'a')));
  for (absl::string_view bad : {"a b", "a/b", "a:b", "a@b", "é", "a\nb"}) {
    EXPECT_FALSE(IsValidServiceName(bad)) << bad;
  }
  EXPECT_FALSE(IsValidServiceName(absl::string_view("a\0b", 3)));
}

// ---------------------------------------------------------------------------
// CONNECT

TEST(ConnectRequestTest, GoldenEncodingAndRoundTrip) {
  ConnectRequest m{"upstream", "api.example.com", 8443, "", {"h2", "http/1.1"}};
  std::vector<uint8_t> wire = m.Encode();
  EXPECT_EQ(wire, Bytes()
                      .Str8("upstream")
                      .Str8("api.example.com")
                      .U16(8443)
                      .Str8("")
                      .U8(2)
                      .Str8("h2")
                      .Str8("http/1.1")
                      .Take());
  absl::StatusOr<ConnectRequest> back = ConnectRequest::Decode(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, m);
}

TEST(ConnectRequestTest, RejectsEveryTruncationAndTrailingBytes) {
  std::vector<uint8_t> wire = ConnectRequest{"p", "h", 1, "s", {"a"}}.Encode();
  for (size_t len = 0; len < wire.size(); ++len) {
    SCOPED_TRACE(len);
    ExpectInvalid(ConnectRequest::Decode(absl::MakeConstSpan(wire.data(), len)).status(),
                  "CONNECT: malformed");
  }
  wire.push_back(0);
  ExpectInvalid(ConnectRequest::Decode(wire).status(), "CONNECT: malformed");
}

TEST(ConnectRequestTest, RejectsBadFields) {
  auto decode = [](ConnectRequest m) {
    // Encode checks only what its prefixes need; Decode validates.
    return ConnectRequest::Decode(m.Encode()).status();
  };
  ExpectInvalid(decode({"bad name", "h", 1, "", {}}), "CONNECT: profile name");
  ExpectInvalid(decode({"p", "", 1, "", {}}), "CONNECT: host");
  ExpectInvalid(decode({"p", "a..b", 1, "", {}}), "CONNECT: host");
  ExpectInvalid(decode({"p", "-a.b", 1, "", {}}), "CONNECT: host");
  ExpectInvalid(decode({"p", "a_b.c", 1, "", {}}), "CONNECT: host");
  ExpectInvalid(decode({"p", "h", 0, "", {}}), "CONNECT: port 0");
  ExpectInvalid(decode({"p", "h", 1, "x y", {}}), "CONNECT: sni");
  ExpectInvalid(decode({"p", "h", 1, "", {std::string("a\nb")}}), "CONNECT: an ALPN");
  std::vector<uint8_t> nine = Bytes().Str8("p").Str8("h").U16(1).Str8("").U8(9).Take();
  ExpectInvalid(ConnectRequest::Decode(nine).status(), "CONNECT: more than 8 ALPN");
}

TEST(HostTest, NamesAndAddresses) {
  for (absl::string_view ok : {"localhost", "a.b.c", "xn--bcher-kva.example", "EXAMPLE.com.",
                               "127.0.0.1", "::1", "2001:db8::7", "a-b.c"}) {
    EXPECT_TRUE(IsValidHost(ok)) << ok;
  }
  EXPECT_TRUE(IsValidHost(std::string(63, 'a') + ".b"));
  EXPECT_FALSE(IsValidHost(std::string(64, 'a') + ".b"));
  for (absl::string_view bad : {"", ".", "a..b", "a b", "[::1]", "a/b", "-a", "a-", "a_b"}) {
    EXPECT_FALSE(IsValidHost(bad)) << bad;
  }
}

// ---------------------------------------------------------------------------
// ERROR

TEST(ErrorMsgTest, GoldenEncodingAndRoundTrip) {
  ErrorMsg m{ECONNREFUSED, "unknown backend: app"};
  std::vector<uint8_t> wire = m.Encode();
  EXPECT_EQ(wire, Bytes().U32(ECONNREFUSED).Str16("unknown backend: app").Take());
  absl::StatusOr<ErrorMsg> back = ErrorMsg::Decode(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->code, static_cast<uint32_t>(ECONNREFUSED));
  EXPECT_EQ(back->message, "unknown backend: app");
}

TEST(ErrorMsgTest, Boundaries) {
  // Largest errno-style code and longest message are accepted; empty message too.
  for (const ErrorMsg& m : {ErrorMsg{4095, std::string(1024, 'm')}, ErrorMsg{1, ""}}) {
    absl::StatusOr<ErrorMsg> back = ErrorMsg::Decode(m.Encode());
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->code, m.code);
    EXPECT_EQ(back->message, m.message);
  }
}

TEST(ErrorMsgTest, EncodeTruncatesOverlongMessage) {
  ErrorMsg m{EACCES, std::string(1024, 'a') + "tail"};
  absl::StatusOr<ErrorMsg> back = ErrorMsg::Decode(m.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->message, std::string(1024, 'a'));
}

TEST(ErrorMsgTest, RejectsEveryTruncation) {
  std::vector<uint8_t> wire = ErrorMsg{EPERM, "no"}.Encode();
  for (size_t len = 0; len < wire.size(); ++len) {
    SCOPED_TRACE(len);
    ExpectInvalid(ErrorMsg::Decode(absl::MakeConstSpan(wire.data(), len)).status(),
                  "ERROR: malformed");
  }
}

// ---------------------------------------------------------------------------
// CONNECTION

TEST(ConnectionInfoTest, LayoutMatchesEncode) {
  // Pins the test's RawConnection builder (used by the reject rows) to the
  // real encoder, so a row that breaks one field breaks only that field.
  RawConnection raw;
  ConnectionInfo c;
  c.connection_id = 7;
  c.service = "web";
  c.backend = "app";
  c.sni = "example.com";
  c.alpn = "http/1.1";
  c.tls_version = 0x0304;
  c.cipher_suite = 0x1301;
  c.cipher_name = "TLS_AES_128_GCM_SHA256";
  c.tx_path = DataPath::kKernelSoftware;
  c.rx_path = DataPath::kRelay;
  c.path_reason = "relay";
  c.peer = WireAddress{4, V4(192, 0, 2, 10), 443};
  c.local = c.peer;
  c.has_client_cert = true;
  c.client_cert_subject = "CN=c";
  c.resumed = false;
  c.handshake_us = 99;
  c.sealed_state = "s";
  EXPECT_EQ(c.Encode(), raw.Encode());
  absl::StatusOr<ConnectionInfo> back = ConnectionInfo::Decode(raw.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
}

TEST(ConnectionInfoTest, RoundTripIpv4WithoutCert) {
  const ConnectionInfo c = SampleV4();
  absl::StatusOr<ConnectionInfo> back = ConnectionInfo::Decode(c.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
  EXPECT_FALSE(back->has_client_cert);
  EXPECT_EQ(back->peer.ToString(), "192.0.2.10:50000");
  EXPECT_EQ(back->sealed_state.size(), 10u);  // embedded NUL survives
}

TEST(ConnectionInfoTest, RoundTripIpv6WithCert) {
  const ConnectionInfo c = SampleV6WithCert();
  absl::StatusOr<ConnectionInfo> back = ConnectionInfo::Decode(c.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
  EXPECT_TRUE(back->has_client_cert);
  EXPECT_EQ(back->client_cert_sha256[31], 0xa0 + 31);
  EXPECT_EQ(back->peer.ToString(), "[2001:db8::1]:1");
  EXPECT_EQ(back->local.ToString(), "[::1]:65535");
}

TEST(ConnectionInfoTest, RoundTripMixedFamiliesAndUnknownAddress) {
  ConnectionInfo c = SampleV4();
  c.local = SampleV6WithCert().local;  // v4 peer, v6 local
  c.peer = WireAddress{};              // family 0: unknown (e.g. AF_UNIX client)
  c.has_client_cert = true;            // a cert with an empty subject is legal
  c.client_cert_subject.clear();
  c.client_cert_sha256.fill(0xff);
  absl::StatusOr<ConnectionInfo> back = ConnectionInfo::Decode(c.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
  EXPECT_EQ(back->peer.ToString(), "unknown");
}

TEST(ConnectionInfoTest, AcceptsMaximalFields) {
  RawConnection raw;
  raw.service = std::string(64, 's');
  raw.backend = std::string(64, 'b');
  raw.sni = std::string(255, 'n');
  raw.alpn = std::string(255, 'a');
  raw.cipher_name = std::string(255, 'c');
  raw.subject = std::string(1024, 'S');
  raw.sealed = std::string(1024, '\0');
  raw.tls_version = 0x0303;
  raw.tx = 3;
  raw.rx = 1;
  raw.peer = RawAddress{0, {}, 0};  // unknown: canonical form is all zero
  raw.local.family = 6;
  raw.resumed = 1;
  std::vector<uint8_t> wire = raw.Encode();
  absl::StatusOr<ConnectionInfo> back = ConnectionInfo::Decode(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Encode(), wire);
  EXPECT_LE(wire.size() + kFrameHeaderLen, kMaxFrameLen);
}

TEST(ConnectionInfoTest, RejectsTruncationAtEveryOffset) {
  for (const ConnectionInfo& c : {SampleV4(), SampleV6WithCert()}) {
    std::vector<uint8_t> wire = c.Encode();
    ASSERT_TRUE(ConnectionInfo::Decode(wire).ok());
    for (size_t len = 0; len < wire.size(); ++len) {
      SCOPED_TRACE(len);
      ExpectInvalid(ConnectionInfo::Decode(absl::MakeConstSpan(wire.data(), len)).status(),
                    "CONNECTION: malformed");
    }
  }
}

TEST(ConnectionInfoDeathTest, EncodeChecksLimits) {
  ConnectionInfo c = SampleV6WithCert();
  c.client_cert_subject = std::string(1025, 'x');
  EXPECT_DEATH(c.Encode(), "check failed");
  c = SampleV4();
  c.sealed_state = std::string(1025, 'x');
  EXPECT_DEATH(c.Encode(), "check failed");
}

// ---------------------------------------------------------------------------
// WireAddress / DataPath

TEST(WireAddressTest, ToString) {
  EXPECT_EQ((WireAddress{4, V4(127, 0, 0, 1), 8443}).ToString(), "127.0.0.1:8443");
  EXPECT_EQ((WireAddress{4, V4(255, 255, 255, 255), 0}).ToString(), "255.255.255.255:0");
  EXPECT_EQ((WireAddress{6, V6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42}), 443}).ToString(),
            "[2001:db8::42]:443");
  EXPECT_EQ((WireAddress{6, V6({0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201}), 80}).ToString(),
            "[::ffff:192.0.2.1]:80");
  EXPECT_EQ((WireAddress{6, {}, 1}).ToString(), "[::]:1");
  EXPECT_EQ(WireAddress{}.ToString(), "unknown");
  EXPECT_EQ((WireAddress{0, V4(1, 2, 3, 4), 5}).ToString(), "unknown");
  EXPECT_EQ((WireAddress{2 /* AF_INET, not 4 */, V4(1, 2, 3, 4), 5}).ToString(), "unknown");
}

TEST(DataPathTest, Names) {
  EXPECT_STREQ(DataPathName(DataPath::kKernelSoftware), "ktls-sw");
  EXPECT_STREQ(DataPathName(DataPath::kKernelDevice), "ktls-hw");
  EXPECT_STREQ(DataPathName(DataPath::kRelay), "relay");
  EXPECT_STREQ(DataPathName(static_cast<DataPath>(0)), "unknown");
}

// ---------------------------------------------------------------------------
// Reject table: one row per distinct check in a decoder.

enum class Decoder { kFrame, kHello, kError, kConnection };

absl::Status RunDecoder(Decoder d, absl::Span<const uint8_t> in) {
  switch (d) {
    case Decoder::kFrame: {
      absl::Span<const uint8_t> payload;
      return DecodeFrame(in, &payload).status();
    }
    case Decoder::kHello:
      return Hello::Decode(in).status();
    case Decoder::kError:
      return ErrorMsg::Decode(in).status();
    case Decoder::kConnection:
      return ConnectionInfo::Decode(in).status();
  }
  return absl::InternalError("unreachable");
}

std::vector<uint8_t> Conn(const std::function<void(RawConnection&)>& edit) {
  RawConnection raw;
  edit(raw);
  return raw.Encode();
}

std::vector<uint8_t> Append(std::vector<uint8_t> v, uint8_t b) {
  v.push_back(b);
  return v;
}

struct RejectCase {
  const char* name;
  Decoder decoder;
  std::function<std::vector<uint8_t>()> input;
  const char* message;  // a substring of the expected status message
};

const RejectCase kRejectCases[] = {
    // DecodeFrame
    {"FrameOversize", Decoder::kFrame,
     [] {
       std::vector<uint8_t> f = RawFrame(1, 1, 0, kMaxFrameLen - kFrameHeaderLen + 1, "");
       f.resize(kMaxFrameLen + 1, 'x');
       return f;
     },
     "frame: 20481 bytes exceeds 20480"},
    {"FrameShorterThanHeader", Decoder::kFrame,
     [] { return Bytes().U16(1).U16(1).U32(0).U16(0).Take(); }, "shorter than its header"},
    {"FrameVersion0", Decoder::kFrame, [] { return RawFrame(0, 1, 0, 0, ""); },
     "unsupported wire version 0 (want 1)"},
    {"FrameVersion2", Decoder::kFrame, [] { return RawFrame(2, 1, 0, 0, ""); },
     "unsupported wire version 2 (want 1)"},
    {"FrameType0", Decoder::kFrame, [] { return RawFrame(1, 0, 0, 0, ""); },
     "unknown message type 0"},
    {"FrameType11", Decoder::kFrame, [] { return RawFrame(1, 11, 0, 0, ""); },
     "unknown message type 11"},
    {"FrameTypeFFFF", Decoder::kFrame, [] { return RawFrame(1, 0xffff, 0, 0, ""); },
     "unknown message type 65535"},
    {"FramePayloadLenTooLarge", Decoder::kFrame, [] { return RawFrame(1, 1, 0, 3, "ab"); },
     "payload length 3 but 2 bytes follow"},
    {"FramePayloadLenHuge", Decoder::kFrame, [] { return RawFrame(1, 1, 0, 0xffffffffu, "ab"); },
     "payload length 4294967295 but 2 bytes follow"},
    {"FrameTrailingByte", Decoder::kFrame, [] { return RawFrame(1, 1, 0, 1, "ab"); },
     "payload length 1 but 2 bytes follow"},

    // Hello::Decode
    {"HelloEmpty", Decoder::kHello, [] { return std::vector<uint8_t>{}; }, "HELLO: malformed"},
    {"HelloPrefixOverruns", Decoder::kHello, [] { return Bytes().U8(5).Raw("ab").Take(); },
     "HELLO: malformed"},
    {"HelloTrailingByte", Decoder::kHello, [] { return Append(Bytes().Str8("app").Take(), 0); },
     "HELLO: malformed"},
    {"HelloEmptyName", Decoder::kHello, [] { return Bytes().Str8("").Take(); },
     "HELLO: backend name is not"},
    {"HelloBadChar", Decoder::kHello, [] { return Bytes().Str8("../etc").Take(); },
     "HELLO: backend name is not"},
    {"HelloNulInName", Decoder::kHello,
     [] { return Bytes().Str8(absl::string_view("a\0b", 3)).Take(); },
     "HELLO: backend name is not"},
    {"HelloName65", Decoder::kHello, [] { return Bytes().Str8(std::string(65, 'a')).Take(); },
     "HELLO: backend name is not"},

    // ErrorMsg::Decode
    {"ErrorShortCode", Decoder::kError, [] { return Bytes().U16(0).U8(1).Take(); },
     "ERROR: malformed"},
    {"ErrorPrefixOverruns", Decoder::kError,
     [] { return Bytes().U32(EIO).U16(10).Raw("short").Take(); }, "ERROR: malformed"},
    {"ErrorTrailingByte", Decoder::kError,
     [] { return Append(Bytes().U32(EIO).Str16("x").Take(), 0); }, "ERROR: malformed"},
    {"ErrorCode0", Decoder::kError, [] { return Bytes().U32(0).Str16("ok?").Take(); },
     "ERROR: code is not an errno value"},
    {"ErrorCode4096", Decoder::kError, [] { return Bytes().U32(4096).Str16("").Take(); },
     "ERROR: code is not an errno value"},
    {"ErrorCodeNegative", Decoder::kError, [] { return Bytes().U32(0xffffffffu).Str16("").Take(); },
     "ERROR: code is not an errno value"},
    {"ErrorMessage1025", Decoder::kError,
     [] { return Bytes().U32(EIO).Str16(std::string(1025, 'm')).Take(); },
     "ERROR: message too long"},

    // ConnectionInfo::Decode (truncation at every offset is its own test)
    {"ConnTrailingByte", Decoder::kConnection, [] { return Append(RawConnection().Encode(), 0); },
     "CONNECTION: malformed"},
    {"ConnHasClientCert2", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.has_client_cert = 2; }); }, "CONNECTION: malformed"},
    {"ConnResumed2", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.resumed = 2; }); }, "CONNECTION: malformed"},
    {"ConnEmptyService", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.service = ""; }); },
     "CONNECTION: invalid service or backend name"},
    {"ConnBadService", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.service = "web https"; }); },
     "CONNECTION: invalid service or backend name"},
    {"ConnBadBackend", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.backend = std::string(65, 'b'); }); },
     "CONNECTION: invalid service or backend name"},
    {"ConnTls0302", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.tls_version = 0x0302; }); },
     "CONNECTION: unsupported TLS version 0x0302"},
    {"ConnTls0000", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.tls_version = 0; }); },
     "CONNECTION: unsupported TLS version 0x0000"},
    {"ConnTxPath0", Decoder::kConnection, [] { return Conn([](RawConnection& r) { r.tx = 0; }); },
     "CONNECTION: unknown data path"},
    {"ConnRxPath4", Decoder::kConnection, [] { return Conn([](RawConnection& r) { r.rx = 4; }); },
     "CONNECTION: unknown data path"},
    {"ConnPeerFamily5", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.peer.family = 5; }); },
     "CONNECTION: unknown address family"},
    {"ConnLocalFamilyAfInet", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.local.family = 2; }); },
     "CONNECTION: unknown address family"},
    {"ConnSubject1025", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.subject = std::string(1025, 'S'); }); },
     "CONNECTION: field too long"},
    {"ConnSealed1025", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.sealed = std::string(1025, 's'); }); },
     "CONNECTION: field too long"},
    {"ConnSubjectWithoutCert", Decoder::kConnection,
     [] {
       return Conn([](RawConnection& r) {
         r.has_client_cert = 0;
         r.subject = "CN=forged";
       });
     },
     "CONNECTION: client subject without client certificate"},
    {"ConnFingerprintWithoutCert", Decoder::kConnection,
     [] {
       return Conn([](RawConnection& r) {
         r.has_client_cert = 0;
         r.subject = "";
         r.sha256[0] = 1;
       });
     },
     "CONNECTION: client fingerprint without client certificate"},
    {"ConnV4WithTrailingAddressBytes", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.peer.addr[15] = 1; }); },
     "CONNECTION: non-canonical address"},
    {"ConnUnknownFamilyWithPort", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) {
            r.local = RawAddress{0, {}, 80};
          }); },
     "CONNECTION: non-canonical address"},
    {"ConnReason1025", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.path_reason = std::string(1025, 'r'); }); },
     "CONNECTION: field too long"},
    {"ConnSniWithNewline", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.sni = "a.example\nconn=1 forged"; }); },
     "CONNECTION: non-printable text field"},
    {"ConnAlpnWithNul", Decoder::kConnection,
     [] { return Conn([](RawConnection& r) { r.alpn = std::string("h2\0", 3); }); },
     "CONNECTION: non-printable text field"},
};

void PrintTo(const RejectCase& c, std::ostream* os) { *os << c.name; }

class RejectTest : public ::testing::TestWithParam<RejectCase> {};

TEST_P(RejectTest, ReturnsInvalidArgument) {
  const RejectCase& c = GetParam();
  std::vector<uint8_t> input = c.input();
  ExpectInvalid(RunDecoder(c.decoder, input), c.message);
}

INSTANTIATE_TEST_SUITE_P(AllChecks, RejectTest, ::testing::ValuesIn(kRejectCases),
                         [](const ::testing::TestParamInfo<RejectCase>& info) {
                           return std::string(info.param.name);
                         });

// A frame carrying a valid payload of one type decodes as a frame, and the
// payload decodes with that type's codec: the two layers compose.
TEST(FrameAndMessageTest, ConnectionInsideFrame) {
  const ConnectionInfo c = SampleV6WithCert();
  std::vector<uint8_t> payload = c.Encode();
  std::vector<uint8_t> datagram = EncodeFrame(MsgType::kConnection, 77, payload);
  absl::Span<const uint8_t> out;
  absl::StatusOr<FrameHeader> h = DecodeFrame(datagram, &out);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->type, MsgType::kConnection);
  absl::StatusOr<ConnectionInfo> back = ConnectionInfo::Decode(out);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
}

}  // namespace
}  // namespace tlsd
