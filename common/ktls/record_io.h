#ifndef TLSD_COMMON_KTLS_RECORD_IO_H_
#define TLSD_COMMON_KTLS_RECORD_IO_H_

// Record-typed I/O on a socket with kernel TLS installed.
//
// With TLS_RX set, the kernel decrypts records and hands plaintext to
// recvmsg(). Every record that is not application data (alerts, post-handshake
// handshake messages) comes with a SOL_TLS/TLS_GET_RECORD_TYPE control message
// and is never merged with a record of another type; a plain read() without
// room for that cmsg fails with EIO instead. Sending a record of another type
// takes a TLS_SET_RECORD_TYPE cmsg on sendmsg() (PLATFORM-FACTS.md).
//
// These helpers do the syscalls and nothing else: what a record means is for
// the caller (libtlsfd's record policy, tlsd's control-record service). No
// OpenSSL, no logging.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tlsd {

// TLS ContentType values (RFC 8446 5.1, RFC 5246 6.2.1, RFC 6520).
inline constexpr uint8_t kRecordChangeCipherSpec = 20;
inline constexpr uint8_t kRecordAlert = 21;
inline constexpr uint8_t kRecordHandshake = 22;
inline constexpr uint8_t kRecordApplicationData = 23;
inline constexpr uint8_t kRecordHeartbeat = 24;

// RecordTypeName returns "change_cipher_spec", "alert", "handshake",
// "application_data", "heartbeat", or "unknown". Never null.
const char* RecordTypeName(uint8_t record_type);

// AlertLevel (RFC 5246 7.2; in TLS 1.3 the level is ignored on receipt for
// everything but the closure alerts, RFC 8446 6).
inline constexpr uint8_t kAlertLevelWarning = 1;
inline constexpr uint8_t kAlertLevelFatal = 2;

// AlertDescription values (RFC 8446 6, RFC 5246 7.2, RFC 6066, RFC 7301,
// RFC 7507). An alert record's payload is exactly {level, description}.
inline constexpr uint8_t kAlertCloseNotify = 0;
inline constexpr uint8_t kAlertUnexpectedMessage = 10;
inline constexpr uint8_t kAlertBadRecordMac = 20;
inline constexpr uint8_t kAlertDecryptionFailed = 21;  // reserved since TLS 1.2
inline constexpr uint8_t kAlertRecordOverflow = 22;
inline constexpr uint8_t kAlertDecompressionFailure = 30;  // reserved in TLS 1.3
inline constexpr uint8_t kAlertHandshakeFailure = 40;
inline constexpr uint8_t kAlertNoCertificate = 41;  // SSL 3.0 only
inline constexpr uint8_t kAlertBadCertificate = 42;
inline constexpr uint8_t kAlertUnsupportedCertificate = 43;
inline constexpr uint8_t kAlertCertificateRevoked = 44;
inline constexpr uint8_t kAlertCertificateExpired = 45;
inline constexpr uint8_t kAlertCertificateUnknown = 46;
inline constexpr uint8_t kAlertIllegalParameter = 47;
inline constexpr uint8_t kAlertUnknownCa = 48;
inline constexpr uint8_t kAlertAccessDenied = 49;
inline constexpr uint8_t kAlertDecodeError = 50;
inline constexpr uint8_t kAlertDecryptError = 51;
inline constexpr uint8_t kAlertExportRestriction = 60;  // reserved
inline constexpr uint8_t kAlertProtocolVersion = 70;
inline constexpr uint8_t kAlertInsufficientSecurity = 71;
inline constexpr uint8_t kAlertInternalError = 80;
inline constexpr uint8_t kAlertInappropriateFallback = 86;
inline constexpr uint8_t kAlertUserCanceled = 90;
inline constexpr uint8_t kAlertNoRenegotiation = 100;
inline constexpr uint8_t kAlertMissingExtension = 109;
inline constexpr uint8_t kAlertUnsupportedExtension = 110;
inline constexpr uint8_t kAlertCertificateUnobtainable = 111;
inline constexpr uint8_t kAlertUnrecognizedName = 112;
inline constexpr uint8_t kAlertBadCertificateStatusResponse = 113;
inline constexpr uint8_t kAlertBadCertificateHashValue = 114;
inline constexpr uint8_t kAlertUnknownPskIdentity = 115;
inline constexpr uint8_t kAlertCertificateRequired = 116;
inline constexpr uint8_t kAlertNoApplicationProtocol = 120;

// AlertName returns the RFC name of an alert description ("close_notify",
// "handshake_failure", ...), or "unknown" for an unassigned value. Never null;
// the string is static.
const char* AlertName(uint8_t description);

// HandshakeType values that can follow a completed handshake (RFC 8446 4,
// RFC 5246 7.4): the only handshake messages a kTLS socket can surface.
inline constexpr uint8_t kHandshakeHelloRequest = 0;  // TLS 1.2 renegotiation
inline constexpr uint8_t kHandshakeClientHello = 1;   // TLS 1.2 renegotiation
inline constexpr uint8_t kHandshakeNewSessionTicket = 4;
inline constexpr uint8_t kHandshakeKeyUpdate = 24;

// HandshakeTypeName returns "hello_request", "client_hello",
// "new_session_ticket", "key_update", or "unknown". Never null.
const char* HandshakeTypeName(uint8_t handshake_type);

// kMaxTlsPlaintextLen is the largest plaintext one record carries (2^14): a
// RecvTlsRecord buffer this size always holds a whole control record.
inline constexpr size_t kMaxTlsPlaintextLen = 16384;

// RecordRead describes what one RecvTlsRecord call placed in the buffer.
struct RecordRead {
  // The record's ContentType: from the TLS_GET_RECORD_TYPE cmsg, or
  // kRecordApplicationData when none came (a socket without kTLS RX).
  uint8_t record_type = kRecordApplicationData;
  // Bytes written at the start of the buffer. 0 means end of stream: the peer
  // closed TCP (or, on a non-kTLS stream socket, its end). A non-data record
  // larger than the buffer is returned in pieces; the next call returns the
  // rest with the same type.
  size_t len = 0;
  // The kernel said the record ended here (MSG_EOR): for a non-data record
  // returned in pieces, false until the last piece.
  bool end_of_record = false;
};

// RecvTlsRecord does one recvmsg(fd, buf, flags) with room for the
// TLS_GET_RECORD_TYPE cmsg. `flags` is passed on (MSG_DONTWAIT, MSG_PEEK);
// MSG_CMSG_CLOEXEC is always added, and any fd that arrives anyway (an AF_UNIX
// peer sending SCM_RIGHTS) is closed. Nothing is retried: EINTR and EAGAIN
// come back as errors. Errors are ErrnoToStatus(errno, ...), so
// StatusToErrno() recovers the errno: EAGAIN, EINTR, EBADMSG (decryption
// failed: the connection is dead), EKEYEXPIRED (TLS 1.3 KeyUpdate received,
// kernel 6.14+: RX is paused until new keys are installed), ECONNRESET, ... A
// malformed TLS_GET_RECORD_TYPE cmsg is kInternal with errno EIO.
absl::StatusOr<RecordRead> RecvTlsRecord(int fd, absl::Span<uint8_t> buf, int flags = 0);

// RecordTypeFromControl extracts the record type from the control messages
// of a received msghdr: kRecordApplicationData when there is no
// SOL_TLS/TLS_GET_RECORD_TYPE cmsg, EIO (kInternal) when there is one of the
// wrong size or the control data was truncated. Split out of RecvTlsRecord
// so the parsing can be tested without a kTLS kernel.
absl::StatusOr<uint8_t> RecordTypeFromControl(const struct msghdr& msg);

// SendTlsRecord sends `payload` as one record of type `record_type` (e.g.
// kRecordAlert with {kAlertLevelWarning, kAlertCloseNotify}) with a
// TLS_SET_RECORD_TYPE cmsg; MSG_NOSIGNAL is always set, MSG_MORE never (the
// kernel refuses it with a record type). The fd must have kTLS TX installed:
// any other socket ignores the cmsg and sends the payload as plain bytes.
// Payloads over 2^14 bytes are split by the kernel into records of the same
// type. EINTR is retried and short writes are continued; a non-blocking fd
// whose send buffer is full fails with EAGAIN. Errors as for RecvTlsRecord
// (EPIPE/ECONNRESET when the peer is gone).
absl::Status SendTlsRecord(int fd, uint8_t record_type, absl::Span<const uint8_t> payload);

}  // namespace tlsd

#endif  // TLSD_COMMON_KTLS_RECORD_IO_H_
