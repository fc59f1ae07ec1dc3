#ifndef TLSD_WRAPPER_CONN_ENV_H_
#define TLSD_WRAPPER_CONN_ENV_H_

// The environment tls-wrap gives a wrapped program for one connection: the
// connection's metadata as variables, in the spirit of inetd/tcpserver
// (REMOTE_ADDR...) and of web servers' TLS variables (TLS_*).

#include <string>
#include <vector>

#include "libtlsfd/include/tlsfd.h"

namespace tlswrap {

// ConnEnv returns "NAME=value" strings for `info`:
//   TLS_SERVICE, TLS_CONNECTION_ID, TLS_SNI, TLS_ALPN, TLS_VERSION
//   ("TLSv1.3"), TLS_CIPHER (IANA name), TLS_RESUMED ("1"/"0"),
//   TLS_KTLS_TX / TLS_KTLS_RX ("ktls-sw", "ktls-hw" or "relay"),
//   TLS_PEER_CERT_SHA256 and TLS_PEER_CERT_SUBJECT (only with a client
//   certificate), REMOTE_ADDR / REMOTE_PORT and LOCAL_ADDR / LOCAL_PORT
//   (only for an IPv4/IPv6 address; IPv6 without brackets).
// A variable whose value would be empty is left out, so a program can test
// for its presence. Values never hold a newline or NUL: tlsd's metadata
// cannot, and such a value would be left out.
std::vector<std::string> ConnEnv(const tlsfd_info& info);

// MergeEnv returns `base` (e.g. environ) without any TLS_*, REMOTE_* or
// LOCAL_* variable that ConnEnv sets or may set (a stale one from tls-wrap's
// own environment must not pass for the connection's), followed by `conn`.
std::vector<std::string> MergeEnv(const std::vector<std::string>& base,
                                  const std::vector<std::string>& conn);

}  // namespace tlswrap

#endif  // TLSD_WRAPPER_CONN_ENV_H_
