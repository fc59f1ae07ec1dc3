#ifndef TLSD_TLSD_TLS_SOCK_DIAG_H_
#define TLSD_TLSD_TLS_SOCK_DIAG_H_

// Reads back from the kernel what kTLS configuration a TCP socket really has,
// through sock_diag (NETLINK_SOCK_DIAG, INET_DIAG_ULP_INFO). This is the only
// way to tell software kTLS from NIC offload after the fact: the choice is
// made by the kernel at setsockopt time and falls back silently.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace tlsd {

// KtlsConf is the kernel's TLS_CONF_* value for one direction.
enum class KtlsConf : uint16_t {
  kUnknown = 0,
  kBase = 1,      // TLS_CONF_BASE: ULP attached, direction not configured
  kSw = 2,        // TLS_CONF_SW: software crypto in the kernel
  kHw = 3,        // TLS_CONF_HW: NIC offload (crypto only)
  kHwRecord = 4,  // TLS_CONF_HW_RECORD: NIC does the whole record layer
};

// TcpUlpDiag is what sock_diag said about one socket's upper-layer protocol.
struct TcpUlpDiag {
  // The kernel sent INET_DIAG_ULP_INFO. It does that only when the socket has
  // a ULP *and* the requester has CAP_NET_ADMIN in the socket's network
  // namespace; false therefore means "no ULP, or not allowed to see it".
  bool has_ulp_info = false;
  std::string ulp_name;  // "tls" for kTLS
  // The fields below are valid when ulp_name == "tls".
  uint16_t version = 0;      // TLS_1_2_VERSION / TLS_1_3_VERSION, 0 if unset
  uint16_t cipher_type = 0;  // TLS_CIPHER_*, 0 if unset
  KtlsConf tx_conf = KtlsConf::kUnknown;
  KtlsConf rx_conf = KtlsConf::kUnknown;
  bool tx_zerocopy_ro = false;  // TLS_INFO_ZC_RO_TX (reported for device TX)
  bool rx_no_pad = false;       // TLS_INFO_RX_NO_PAD
};

// QueryTcpUlpDiag asks the kernel about the connected TCP socket `fd`
// (AF_INET or AF_INET6) by its 4-tuple. Needs socket(AF_NETLINK) to be
// allowed (seccomp). Errors: kFailedPrecondition if `fd` is not a connected
// TCP socket; kNotFound if the kernel no longer knows the 4-tuple or has no
// TCP sock_diag at all (tcp_diag is a module on Debian; it autoloads for
// root, and must be present in minimal VMs and containers); errno
// statuses for netlink failures; kInternal for a reply that does not parse.
absl::StatusOr<TcpUlpDiag> QueryTcpUlpDiag(int fd);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_SOCK_DIAG_H_
