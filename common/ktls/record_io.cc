#include "common/ktls/record_io.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/unique_fd.h"

// <linux/tls.h> has the TLS_* cmsg types; SOL_TLS is in glibc's socket.h
// since 2.27, but not on every libc.
#include <linux/tls.h>
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace tlsd {
namespace {

// Room for the one-byte record type cmsg, plus slack so that an AF_UNIX peer
// passing a few fds is seen (and the fds closed) rather than truncated.
constexpr size_t kControlLen = CMSG_SPACE(sizeof(uint8_t)) + CMSG_SPACE(4 * sizeof(int));

}  // namespace

const char* RecordTypeName(uint8_t record_type) {
  switch (record_type) {
    case kRecordChangeCipherSpec:
      return "change_cipher_spec";
    case kRecordAlert:
      return "alert";
    case kRecordHandshake:
      return "handshake";
    case kRecordApplicationData:
      return "application_data";
    case kRecordHeartbeat:
      return "heartbeat";
  }
  return "unknown";
}

const char* AlertName(uint8_t description) {
  switch (description) {
    case kAlertCloseNotify:
      return "close_notify";
    case kAlertUnexpectedMessage:
      return "unexpected_message";
    case kAlertBadRecordMac:
      return "bad_record_mac";
    case kAlertDecryptionFailed:
      return "decryption_failed";
    case kAlertRecordOverflow:
      return "record_overflow";
    case kAlertDecompressionFailure:
      return "decompression_failure";
    case kAlertHandshakeFailure:
      return "handshake_failure";
    case kAlertNoCertificate:
      return "no_certificate";
    case kAlertBadCertificate:
      return "bad_certificate";
    case kAlertUnsupportedCertificate:
      return "unsupported_certificate";
    case kAlertCertificateRevoked:
      return "certificate_revoked";
    case kAlertCertificateExpired:
      return "certificate_expired";
    case kAlertCertificateUnknown:
      return "certificate_unknown";
    case kAlertIllegalParameter:
      return "illegal_parameter";
    case kAlertUnknownCa:
      return "unknown_ca";
    case kAlertAccessDenied:
      return "access_denied";
    case kAlertDecodeError:
      return "decode_error";
    case kAlertDecryptError:
      return "decrypt_error";
    case kAlertExportRestriction:
      return "export_restriction";
    case kAlertProtocolVersion:
      return "protocol_version";
    case kAlertInsufficientSecurity:
      return "insufficient_security";
    case kAlertInternalError:
      return "internal_error";
    case kAlertInappropriateFallback:
      return "inappropriate_fallback";
    case kAlertUserCanceled:
      return "user_canceled";
    case kAlertNoRenegotiation:
      return "no_renegotiation";
    case kAlertMissingExtension:
      return "missing_extension";
    case kAlertUnsupportedExtension:
      return "unsupported_extension";
    case kAlertCertificateUnobtainable:
      return "certificate_unobtainable";
    case kAlertUnrecognizedName:
      return "unrecognized_name";
    case kAlertBadCertificateStatusResponse:
      return "bad_certificate_status_response";
    case kAlertBadCertificateHashValue:
      return "bad_certificate_hash_value";
    case kAlertUnknownPskIdentity:
      return "unknown_psk_identity";
    case kAlertCertificateRequired:
      return "certificate_required";
    case kAlertNoApplicationProtocol:
      return "no_application_protocol";
  }
  return "unknown";
}

const char* HandshakeTypeName(uint8_t handshake_type) {
  switch (handshake_type) {
    case kHandshakeHelloRequest:
      return "hello_request";
    case kHandshakeClientHello:
      return "client_hello";
    case kHandshakeNewSessionTicket:
      return "new_session_ticket";
    case kHandshakeKeyUpdate:
      return "key_update";
  }
  return "unknown";
}

absl::StatusOr<uint8_t> RecordTypeFromControl(const struct msghdr& msg) {
  if (msg.msg_flags & MSG_CTRUNC) {
    return ErrnoToStatus(EIO, "TLS record type: control data truncated");
  }
  uint8_t record_type = kRecordApplicationData;
  // CMSG_NXTHDR takes a non-const msghdr but only reads it.
  auto* m = const_cast<struct msghdr*>(&msg);
  for (cmsghdr* c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level != SOL_TLS || c->cmsg_type != TLS_GET_RECORD_TYPE) {
      continue;
    }
    if (c->cmsg_len != CMSG_LEN(sizeof(uint8_t))) {
      return ErrnoToStatus(
          EIO, absl::StrCat("TLS record type: cmsg of ", c->cmsg_len - CMSG_LEN(0), " bytes"));
    }
    memcpy(&record_type, CMSG_DATA(c), sizeof(record_type));
  }
  return record_type;
}

absl::StatusOr<RecordRead> RecvTlsRecord(int fd, absl::Span<uint8_t> buf, int flags) {
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[kControlLen];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = ::recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    return ErrnoToStatus(errno, "recvmsg on TLS socket");
  }

  // Only an AF_UNIX peer can send fds; own them so they are closed.
  std::vector<UniqueFd> stray_fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t num_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < num_fds; ++i) {
        int stray;
        memcpy(&stray, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        stray_fds.emplace_back(stray);
      }
    }
  }
  absl::StatusOr<uint8_t> record_type = RecordTypeFromControl(msg);
  if (!record_type.ok()) {
    return record_type.status();
  }
  return RecordRead{*record_type, static_cast<size_t>(n), (msg.msg_flags & MSG_EOR) != 0};
}

absl::Status SendTlsRecord(int fd, uint8_t record_type, absl::Span<const uint8_t> payload) {
  size_t sent = 0;
  do {
    iovec iov{const_cast<uint8_t*>(payload.data()) + sent, payload.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint8_t))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_TLS;
    c->cmsg_type = TLS_SET_RECORD_TYPE;
    c->cmsg_len = CMSG_LEN(sizeof(uint8_t));
    memcpy(CMSG_DATA(c), &record_type, sizeof(record_type));
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoToStatus(errno,
                           absl::StrCat("send TLS ", RecordTypeName(record_type), " record"));
    }
    sent += static_cast<size_t>(n);
  } while (sent < payload.size());
  return absl::OkStatus();
}

}  // namespace tlsd
