#include "tlsd/handshaker/proxy_protocol.h"

#include <arpa/inet.h>
#include <string.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace tlsd {
namespace {

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr char kV1Prefix[] = "PROXY ";
constexpr size_t kV1Max = 107;  // including CRLF

ProxyHeader Invalid(std::string why) {
  ProxyHeader h;
  h.result = ProxyHeader::Result::kInvalid;
  h.error = std::move(why);
  return h;
}

bool ParseIp(absl::string_view text, int family, WireAddress* out) {
  // inet_pton reads a C string: a NUL would hide what follows it.
  if (text.find('\0') != absl::string_view::npos) return false;
  const std::string s(text);
  out->family = family == AF_INET ? 4 : 6;
  return inet_pton(family, s.c_str(), out->addr.data()) == 1;
}

bool ParsePort(absl::string_view text, uint16_t* port) {
  // 0..65535 in decimal, no sign, no leading zeros (the spec's form).
  uint32_t v;
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0') ||
      !absl::SimpleAtoi(text, &v) || v > 65535 ||
      text.find_first_not_of("0123456789") != text.npos) {
    return false;
  }
  *port = static_cast<uint16_t>(v);
  return true;
}

ProxyHeader ParseV1(absl::Span<const uint8_t> in) {
  const absl::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  const size_t crlf = text.find("\r\n");
  if (crlf == absl::string_view::npos) {
    if (text.size() >= kV1Max) return Invalid("PROXY v1 header without CRLF in 107 bytes");
    return {};
  }
  if (crlf + 2 > kV1Max) return Invalid("PROXY v1 header longer than 107 bytes");
  ProxyHeader h;
  h.version = 1;
  h.length = crlf + 2;
  std::vector<absl::string_view> f = absl::StrSplit(text.substr(0, crlf), ' ');
  if (f.size() >= 2 && f[1] == "UNKNOWN") {
    h.result = ProxyHeader::Result::kOk;
    return h;
  }
  if (f.size() != 6) return Invalid("PROXY v1 header: want 6 fields");
  int family;
  if (f[1] == "TCP4") {
    family = AF_INET;
  } else if (f[1] == "TCP6") {
    family = AF_INET6;
  } else {
    return Invalid(absl::StrCat("PROXY v1 header: unknown protocol '", f[1], "'"));
  }
  if (!ParseIp(f[2], family, &h.source) || !ParseIp(f[3], family, &h.destination)) {
    return Invalid("PROXY v1 header: bad address");
  }
  if (!ParsePort(f[4], &h.source.port) || !ParsePort(f[5], &h.destination.port)) {
    return Invalid("PROXY v1 header: bad port");
  }
  h.has_addresses = true;
  h.result = ProxyHeader::Result::kOk;
  return h;
}

ProxyHeader ParseV2(absl::Span<const uint8_t> in) {
  if (in.size() < 16) return {};
  const uint8_t ver_cmd = in[12];
  const uint8_t fam = in[13];
  const size_t len = (static_cast<size_t>(in[14]) << 8) | in[15];
  if ((ver_cmd >> 4) != 2) return Invalid("PROXY v2 header: version is not 2");
  const uint8_t cmd = ver_cmd & 0x0F;
  if (cmd > 1) return Invalid("PROXY v2 header: unknown command");
  if (16 + len > kMaxProxyHeader) return Invalid("PROXY v2 header: too long");
  if (in.size() < 16 + len) return {};
  ProxyHeader h;
  h.version = 2;
  h.length = 16 + len;
  h.result = ProxyHeader::Result::kOk;
  if (cmd == 0) return h;  // LOCAL: the proxy's own connection
  const uint8_t* a = in.data() + 16;
  switch (fam) {
    case 0x11:  // TCP over IPv4
      if (len < 12) return Invalid("PROXY v2 header: short IPv4 address block");
      h.source.family = h.destination.family = 4;
      memcpy(h.source.addr.data(), a, 4);
      memcpy(h.destination.addr.data(), a + 4, 4);
      h.source.port = static_cast<uint16_t>((a[8] << 8) | a[9]);
      h.destination.port = static_cast<uint16_t>((a[10] << 8) | a[11]);
      h.has_addresses = true;
      return h;
    case 0x21:  // TCP over IPv6
      if (len < 36) return Invalid("PROXY v2 header: short IPv6 address block");
      h.source.family = h.destination.family = 6;
      memcpy(h.source.addr.data(), a, 16);
      memcpy(h.destination.addr.data(), a + 16, 16);
      h.source.port = static_cast<uint16_t>((a[32] << 8) | a[33]);
      h.destination.port = static_cast<uint16_t>((a[34] << 8) | a[35]);
      h.has_addresses = true;
      return h;
    default:
      return h;  // UNSPEC, UDP, UNIX: keep the socket's addresses
  }
}

}  // namespace

ProxyHeader ParseProxyHeader(absl::Span<const uint8_t> in) {
  // Decide on the shortest prefix that tells the versions apart.
  const size_t v2n = std::min(in.size(), sizeof kV2Signature);
  if (memcmp(in.data(), kV2Signature, v2n) == 0) {
    return in.size() < sizeof kV2Signature ? ProxyHeader{} : ParseV2(in);
  }
  const size_t v1n = std::min(in.size(), sizeof kV1Prefix - 1);
  if (memcmp(in.data(), kV1Prefix, v1n) == 0) {
    return in.size() < sizeof kV1Prefix - 1 ? ProxyHeader{} : ParseV1(in);
  }
  return Invalid("no PROXY header");
}

}  // namespace tlsd
