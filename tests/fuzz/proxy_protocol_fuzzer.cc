// libFuzzer target for the PROXY protocol header parser (v1 text and v2
// binary), tlsd::ParseProxyHeader: the first bytes of a connection on a
// listener with proxy_protocol = true, before any TLS.
//
// Oracles, beyond the sanitizers:
//   - kOk: 0 < length <= input size, version 1 (length <= 107, ends in CRLF,
//     a TCP4/TCP6 line is printable ASCII) or 2 (length = 16 + the header's length field, <=
//     kMaxProxyHeader); addresses are present only as a matching IPv4 or IPv6 pair; no error;
//   - kInvalid has an error message; kIncomplete says nothing else;
//   - more bytes never change a decision: a kIncomplete input's prefixes are
//     kIncomplete, a prefix that is kInvalid stays kInvalid, and a kOk input
//     cut to `length` parses to the same header (the engine peeks, parses,
//     and consumes exactly `length` bytes);
//   - addresses re-encoded as a v1 line and as a v2 header parse back to the
//     same addresses.

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/wire/messages.h"
#include "tests/fuzz/fuzz_oracle.h"
#include "tlsd/handshaker/proxy_protocol.h"

namespace tlsd {
namespace {

using Result = ProxyHeader::Result;

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

bool SameHeader(const ProxyHeader& a, const ProxyHeader& b) {
  return a.result == b.result && a.error == b.error && a.length == b.length &&
         a.version == b.version && a.has_addresses == b.has_addresses && a.source == b.source &&
         a.destination == b.destination;
}

void CheckShape(const ProxyHeader& h, absl::Span<const uint8_t> in) {
  switch (h.result) {
    case Result::kOk:
      FUZZ_REQUIRE(h.error.empty());
      FUZZ_REQUIRE(h.length > 0 && h.length <= in.size());
      FUZZ_REQUIRE(h.length <= kMaxProxyHeader);
      if (h.version == 1) {
        FUZZ_REQUIRE(h.length <= 107);
        FUZZ_REQUIRE(memcmp(in.data(), "PROXY ", 6) == 0);
        FUZZ_REQUIRE(in[h.length - 2] == '\r' && in[h.length - 1] == '\n');
        if (h.has_addresses) {  // TCP4/TCP6 lines are printable US-ASCII
          for (size_t i = 0; i < h.length - 2; ++i) FUZZ_REQUIRE(in[i] >= 0x20 && in[i] < 0x7f);
        }
      } else {
        FUZZ_REQUIRE(h.version == 2);
        FUZZ_REQUIRE(in.size() >= 16 && memcmp(in.data(), kV2Signature, 12) == 0);
        FUZZ_REQUIRE(h.length == 16 + ((size_t{in[14]} << 8) | in[15]));
      }
      if (h.has_addresses) {
        FUZZ_REQUIRE(h.source.family == h.destination.family);
        FUZZ_REQUIRE(h.source.family == 4 || h.source.family == 6);
      } else {
        FUZZ_REQUIRE(h.source == WireAddress{} && h.destination == WireAddress{});
      }
      break;
    case Result::kInvalid:
      FUZZ_REQUIRE(!h.error.empty());
      break;
    case Result::kIncomplete:
      FUZZ_REQUIRE(h.error.empty() && h.length == 0 && !h.has_addresses);
      break;
  }
}

// A later byte never changes what an earlier prefix decided.
void CheckPrefix(const ProxyHeader& whole, absl::Span<const uint8_t> in, size_t cut) {
  const ProxyHeader part = ParseProxyHeader(in.first(cut));
  CheckShape(part, in.first(cut));
  if (whole.result == Result::kIncomplete) FUZZ_REQUIRE(part.result == Result::kIncomplete);
  if (part.result == Result::kInvalid) FUZZ_REQUIRE(whole.result == Result::kInvalid);
  if (part.result == Result::kOk) FUZZ_REQUIRE(SameHeader(part, whole));
}

std::string Ip(const WireAddress& a) {
  char buf[INET6_ADDRSTRLEN];
  FUZZ_REQUIRE(inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.addr.data(), buf, sizeof buf));
  return buf;
}

void CheckReencoded(const ProxyHeader& h) {
  const bool v4 = h.source.family == 4;
  const std::string line =
      absl::StrCat("PROXY ", v4 ? "TCP4 " : "TCP6 ", Ip(h.source), " ", Ip(h.destination), " ",
                   h.source.port, " ", h.destination.port, "\r\n");
  const ProxyHeader v1 = ParseProxyHeader(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(line.data()), line.size()));
  FUZZ_REQUIRE(v1.result == Result::kOk && v1.version == 1 && v1.length == line.size());
  FUZZ_REQUIRE(v1.has_addresses && v1.source == h.source && v1.destination == h.destination);

  std::vector<uint8_t> bin(kV2Signature, kV2Signature + 12);
  const size_t alen = v4 ? 4 : 16;
  const size_t len = 2 * alen + 4;
  bin.push_back(0x21);  // version 2, PROXY
  bin.push_back(v4 ? 0x11 : 0x21);
  bin.push_back(0);
  bin.push_back(static_cast<uint8_t>(len));
  bin.insert(bin.end(), h.source.addr.begin(), h.source.addr.begin() + alen);
  bin.insert(bin.end(), h.destination.addr.begin(), h.destination.addr.begin() + alen);
  for (uint16_t port : {h.source.port, h.destination.port}) {
    bin.push_back(static_cast<uint8_t>(port >> 8));
    bin.push_back(static_cast<uint8_t>(port));
  }
  const ProxyHeader v2 = ParseProxyHeader(bin);
  FUZZ_REQUIRE(v2.result == Result::kOk && v2.version == 2 && v2.length == bin.size());
  FUZZ_REQUIRE(v2.has_addresses && v2.source == h.source && v2.destination == h.destination);
}

}  // namespace
}  // namespace tlsd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tlsd;
  const absl::Span<const uint8_t> in(data, size);
  const ProxyHeader h = ParseProxyHeader(in);
  CheckShape(h, in);
  // Parsing is cheap; a few cut points keep a run fast.
  for (size_t cut : {size_t{0}, size / 2, size > 0 ? size - 1 : 0}) CheckPrefix(h, in, cut);
  if (h.result == Result::kOk) {
    CheckPrefix(h, in, h.length);
    if (h.has_addresses) CheckReencoded(h);
  }
  return 0;
}
