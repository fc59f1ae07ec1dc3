#include "tlsd/handshaker/proxy_protocol.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsd {
namespace {

using ::testing::HasSubstr;
using Result = ProxyHeader::Result;

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

const std::string kV2Sig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string V2(uint8_t ver_cmd, uint8_t fam, const std::string& body) {
  std::string h = kV2Sig;
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(fam);
  h += static_cast<char>(body.size() >> 8);
  h += static_cast<char>(body.size() & 0xff);
  return h + body;
}

TEST(ProxyProtocolTest, V1Tcp4GivesBothAddressesAndItsLength) {
  const std::string h = "PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n";
  ProxyHeader p = ParseProxyHeader(Bytes(h + "\x16\x03\x01"));
  ASSERT_EQ(p.result, Result::kOk) << p.error;
  EXPECT_EQ(p.version, 1);
  EXPECT_EQ(p.length, h.size());
  ASSERT_TRUE(p.has_addresses);
  EXPECT_EQ(p.source.ToString(), "203.0.113.7:40000");
  EXPECT_EQ(p.destination.ToString(), "198.51.100.1:443");
}

TEST(ProxyProtocolTest, V1Tcp6AndUnknown) {
  ProxyHeader p = ParseProxyHeader(Bytes("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"));
  ASSERT_EQ(p.result, Result::kOk) << p.error;
  EXPECT_EQ(p.source.ToString(), "[2001:db8::1]:1");
  EXPECT_EQ(p.destination.ToString(), "[2001:db8::2]:65535");
  ProxyHeader u = ParseProxyHeader(Bytes("PROXY UNKNOWN whatever\r\n"));
  ASSERT_EQ(u.result, Result::kOk);
  EXPECT_FALSE(u.has_addresses);
}

TEST(ProxyProtocolTest, EveryPrefixOfAValidHeaderIsIncomplete) {
  const std::string v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
  std::string v2body(12, '\0');
  const std::string v2 = V2(0x21, 0x11, v2body);
  for (const std::string& h : {v1, v2}) {
    for (size_t n = 0; n < h.size(); ++n) {
      EXPECT_EQ(ParseProxyHeader(Bytes(h.substr(0, n))).result, Result::kIncomplete)
          << n << " bytes of " << (h[0] == 'P' ? "v1" : "v2");
    }
    EXPECT_EQ(ParseProxyHeader(Bytes(h)).result, Result::kOk);
  }
}

TEST(ProxyProtocolTest, V2ProxyTcp4Tcp6LocalAndTlvs) {
  std::string b4 = {char(203), 0, 113,        7,    char(198), 51,
                    100,       1, char(0x9c), 0x40, 0x01,      char(0xbb)};
  ProxyHeader p = ParseProxyHeader(Bytes(V2(0x21, 0x11, b4 + "TLVS")));
  ASSERT_EQ(p.result, Result::kOk) << p.error;
  EXPECT_EQ(p.version, 2);
  EXPECT_EQ(p.length, 16 + 16u);
  EXPECT_EQ(p.source.ToString(), "203.0.113.7:40000");
  EXPECT_EQ(p.destination.ToString(), "198.51.100.1:443");

  std::string b6(36, '\0');
  b6[15] = 1;   // ::1
  b6[31] = 2;   // ::2
  b6[33] = 80;  // source port 80
  b6[35] = 81;
  ProxyHeader p6 = ParseProxyHeader(Bytes(V2(0x21, 0x21, b6)));
  ASSERT_EQ(p6.result, Result::kOk) << p6.error;
  EXPECT_EQ(p6.source.ToString(), "[::1]:80");
  EXPECT_EQ(p6.destination.ToString(), "[::2]:81");

  ProxyHeader local = ParseProxyHeader(Bytes(V2(0x20, 0x00, "")));
  ASSERT_EQ(local.result, Result::kOk);
  EXPECT_FALSE(local.has_addresses);
  EXPECT_EQ(local.length, 16u);
}

TEST(ProxyProtocolTest, MalformedHeadersSayWhy) {
  struct Case {
    std::string bytes;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"\x16\x03\x01\x02\x00", "no PROXY header"},
      {"GET / HTTP/1.1\r\n", "no PROXY header"},
      {"PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n", "bad address"},
      {"PROXY TCP4 1.1.1.1 1.1.1.1 1 65536\r\n", "bad port"},
      {"PROXY TCP4 1.1.1.1 1.1.1.1 01 2\r\n", "bad port"},
      {"PROXY TCP4 1.1.1.1 1.1.1.1 1\r\n", "want 6 fields"},
      {"PROXY UDP4 1.1.1.1 1.1.1.1 1 2\r\n", "unknown protocol"},
      {"PROXY TCP6 1.1.1.1 1.1.1.1 1 2\r\n", "bad address"},
      // A NUL inside an address must not cut it short (found by fuzzing:
      // inet_pton read "::" and ignored the rest).
      {std::string("PROXY TCP6 2001:db8::1 ::\0\0"
                   "1 50000 443\r\n",
                   40),
       "bad address"},
      {"PROXY " + std::string(120, 'x'), "without CRLF in 107 bytes"},
      {V2(0x11, 0x11, std::string(12, '\0')), "version is not 2"},
      {V2(0x22, 0x11, std::string(12, '\0')), "unknown command"},
      {V2(0x21, 0x11, std::string(11, '\0')), "short IPv4"},
      {V2(0x21, 0x21, std::string(35, '\0')), "short IPv6"},
      {V2(0x21, 0x11, std::string(2000, '\0')), "too long"},
  };
  for (const Case& c : cases) {
    ProxyHeader p = ParseProxyHeader(Bytes(c.bytes));
    EXPECT_EQ(p.result, Result::kInvalid) << c.why;
    EXPECT_THAT(p.error, HasSubstr(c.why));
  }
}

}  // namespace
}  // namespace tlsd
