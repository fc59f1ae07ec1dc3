#ifndef TLSD_TLSD_TLS_KTLS_RECORD_IO_H_
#define TLSD_TLSD_TLS_KTLS_RECORD_IO_H_

// Record-typed I/O on a kTLS socket. This file must not include OpenSSL: it
// is built as its own target (tlsd_tls_record_io) so that libtlsfd and tls-wrap,
// which see only kTLS sockets, can use it without linking libssl.

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tlsd {

// TLS record content types (RFC 8446 B.1; the same values in TLS 1.2).
inline constexpr uint8_t kTlsRecordChangeCipherSpec = 20;
inline constexpr uint8_t kTlsRecordAlert = 21;
inline constexpr uint8_t kTlsRecordHandshake = 22;
inline constexpr uint8_t kTlsRecordApplicationData = 23;

// kMaxTlsPlaintextLen is the largest plaintext one record carries (2^14). A
// RecvTlsRecord buffer this size always holds a whole control record.
inline constexpr size_t kMaxTlsPlaintextLen = 16384;

// SendTlsRecord sends `payload` on a socket with kTLS TX as records of
// content type `record_type`, with one sendmsg(2) carrying a SOL_TLS /
// TLS_SET_RECORD_TYPE cmsg (retried on EINTR). The kernel closes the record(s)
// at the end of the call; payloads longer than kMaxTlsPlaintextLen become
// several records of the same type.
//
// Returns the number of payload bytes the kernel accepted. That is all of
// them on a blocking socket; on a non-blocking one it can be fewer, and the
// caller sends the rest with another call. An empty payload is sent as is
// (the kernel decides; alerts and handshake messages are never empty).
// Errors: kUnavailable with EAGAIN when nothing could be queued on a
// non-blocking socket, or when the peer has gone; the errno payload of
// ErrnoToStatus otherwise. On a socket without kTLS TX the cmsg is ignored by
// TCP and the bytes go out in clear: only call this on kTLS sockets.
absl::StatusOr<size_t> SendTlsRecord(int fd, uint8_t record_type,
                                     absl::Span<const uint8_t> payload);

// TlsRecordRead describes what one RecvTlsRecord call returned.
struct TlsRecordRead {
  // Content type of the bytes returned. One call never mixes types.
  uint8_t record_type = kTlsRecordApplicationData;
  // Plaintext bytes written to the caller's buffer. 0 with eof == false
  // happens only for an empty record.
  size_t len = 0;
  // The peer closed its side of the TCP connection (recvmsg returned 0).
  bool eof = false;
};

// RecvTlsRecord reads plaintext from a socket with kTLS RX into `buf`, with
// room for the kernel's SOL_TLS / TLS_GET_RECORD_TYPE cmsg, so control
// records (alerts, handshake messages such as NewSessionTicket or KeyUpdate)
// are returned with their type instead of failing with EIO as a plain read()
// does. Data records may be coalesced into one call; a control record is
// returned alone, and if `buf` is shorter than the record the rest comes with
// the next call (use kMaxTlsPlaintextLen to always get it whole).
// `flags` are passed to recvmsg(2) (e.g. MSG_DONTWAIT, MSG_PEEK);
// MSG_CMSG_CLOEXEC is always added.
//
// On a socket without kTLS RX there is no cmsg and the bytes are reported as
// application data. Errors (EINTR is retried):
//   kDataLoss          EBADMSG: a record failed authentication; the kernel
//                      has marked the connection dead.
//   kFailedPrecondition EKEYEXPIRED: a TLS 1.3 KeyUpdate was received (kernel
//                      6.14+) and TLS_RX must be set to the next key first.
//   kInternal          MSG_CTRUNC: the record type cmsg did not fit.
//   others             as ErrnoToStatus (EAGAIN on MSG_DONTWAIT is
//                      kUnavailable; EIO for a control record the kernel
//                      could not return).
absl::StatusOr<TlsRecordRead> RecvTlsRecord(int fd, absl::Span<uint8_t> buf,
                                            int flags = 0);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_KTLS_RECORD_IO_H_
