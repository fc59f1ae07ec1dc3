#ifndef TLSD_TLSD_TLS_TLS13_TICKETS_H_
#define TLSD_TLSD_TLS_TLS13_TICKETS_H_

// TLS 1.3 session tickets for outgoing connections that go on in kTLS.
//
// A TLS 1.3 server sends its NewSessionTickets after the handshake, as
// records under its application traffic key, often together with (or just
// before) its first application data. A client that hands its socket to the
// kernel right after SSL_connect would leave them to the app, and tlsd could
// not store them: an SSL_SESSION cannot be rebuilt from a ticket record
// without the SSL that made the handshake. So the connector gives the
// tickets a short while to arrive and lets OpenSSL take exactly those
// records, and nothing past them:
//  - each waiting record is looked at with MSG_PEEK and opened with the
//    server's traffic key (the captured SERVER_TRAFFIC_SECRET_0) at the next
//    sequence number;
//  - only a record that holds nothing but NewSessionTicket messages is taken
//    off the socket and fed to OpenSSL through a memory BIO holding just that
//    record, so OpenSSL's read can never reach the bytes behind it (the
//    app's first data, a KeyUpdate): those stay in the socket for kTLS;
//  - the count of records taken is the sequence number kTLS RX starts at
//    (KtlsOptions::tls13_rx_seq).

#include <openssl/ssl.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ktls/record_io.h"

namespace tlsd {

// The longest a record can be on the wire: a 5-byte header, 2^14 bytes of
// content and 256 of expansion (RFC 8446 5.2).
inline constexpr size_t kMaxTls13RecordLen = 5 + kMaxTlsPlaintextLen + 256;

// TicketWait is how long the connector waits for a server's tickets after
// the handshake of `fd`: four smoothed round-trip times (TCP_INFO), at least
// 50 ms (a server's processing of our Finished, on a slow machine) and at
// most 500 ms. The wait ends as soon as something else arrives.
absl::Duration TicketWait(int fd);

// CollectTls13Tickets lets OpenSSL process the NewSessionTicket records the
// server of the TLS 1.3 client `ssl` (connected on `fd`, handshake complete,
// SSL_CTX with InstallSecretCapture) sends before `until`, and returns how
// many records it took. It stops early at the first record that is anything
// else, and after the first tickets once nothing more is waiting. For
// anything but a TLS 1.3 client with a captured server secret it takes
// nothing and returns 0. An error (a record that fails to open, OpenSSL
// refusing a ticket) means the connection's input is no longer usable; the
// caller fails the connection.
absl::StatusOr<uint64_t> CollectTls13Tickets(SSL* ssl, int fd, absl::Time until);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_TLS13_TICKETS_H_
