#ifndef TLSD_TLSD_HANDSHAKER_CONN_INFO_H_
#define TLSD_TLSD_HANDSHAKER_CONN_INFO_H_

// Filling a connection's metadata (ConnectionInfo) from OpenSSL and the
// socket, shared by incoming (engine) and outgoing (connector) connections.

#include <openssl/ssl.h>

#include <string>

#include "common/wire/messages.h"
#include "tlsd/tls/ktls.h"

namespace tlsd {

// LocalAddress is getsockname as a WireAddress ("unknown" on failure).
WireAddress LocalAddress(int fd);
// PeerAddress is getpeername as a WireAddress ("unknown" on failure).
WireAddress PeerAddress(int fd);

// FillNegotiated copies what the handshake settled: version, cipher, ALPN,
// resumption.
void FillNegotiated(SSL* ssl, ConnectionInfo& info);

// FillPeerCertificate records the peer certificate's subject and SHA-256
// fingerprint, if the peer sent one (the client's, on incoming connections).
void FillPeerCertificate(SSL* ssl, ConnectionInfo& info);

// PathFor maps a direction's kTLS mode to the metadata's data path.
DataPath PathFor(KtlsMode mode);

// OpenSslFailure describes why a handshake step failed, for log lines and
// error replies; it empties the thread's OpenSSL error queue.
std::string OpenSslFailure(int ssl_error);

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_CONN_INFO_H_
