#ifndef TLSD_TLSD_HANDSHAKER_PROXY_PROTOCOL_H_
#define TLSD_TLSD_HANDSHAKER_PROXY_PROTOCOL_H_

// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2)
// that an L4 load balancer puts in front of the client's bytes, so that the
// real client address reaches tlsd's metadata and logs. Parsing only; the
// engine peeks at the socket, parses, and consumes exactly `length` bytes.

#include <stddef.h>
#include <stdint.h>

#include <string>

#include "absl/types/span.h"
#include "common/wire/messages.h"

namespace tlsd {

// The longest header accepted: v1's 107 bytes, or v2's 16 plus addresses and
// TLVs up to this bound (larger ones are refused).
inline constexpr size_t kMaxProxyHeader = 16 + 1024;

struct ProxyHeader {
  enum class Result {
    kIncomplete,  // a valid beginning: wait for more bytes
    kInvalid,     // not a PROXY header, or a malformed one (see `error`)
    kOk,
  };
  Result result = Result::kIncomplete;
  std::string error;
  size_t length = 0;  // bytes the header takes (kOk)
  int version = 0;    // 1 or 2
  // The client and the address it connected to, as the proxy saw them.
  // Absent (`has_addresses` false) for v1 UNKNOWN, v2 LOCAL (a health check
  // from the proxy itself) and v2 families other than TCP over IPv4/IPv6:
  // then the socket's own addresses stand.
  bool has_addresses = false;
  WireAddress source;
  WireAddress destination;
};

// ParseProxyHeader looks at the first bytes of a connection.
ProxyHeader ParseProxyHeader(absl::Span<const uint8_t> in);

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_PROXY_PROTOCOL_H_
