#include "tlsd/tls/ktls_record_io.h"

#include <errno.h>
#include <linux/tls.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace tlsd {
namespace {

// Keeps the errno payload (and so StatusToErrno) of `status` but replaces
// its code, for errnos whose generic mapping would mislead a kTLS caller.
absl::Status WithCode(const absl::Status& status, absl::StatusCode code,
                      absl::string_view message) {
  absl::Status out(code, message);
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& p) {
    out.SetPayload(url, p);
  });
  return out;
}

}  // namespace

absl::StatusOr<size_t> SendTlsRecord(int fd, uint8_t record_type,
                                     absl::Span<const uint8_t> payload) {
  // The cmsg buffer must be aligned for cmsghdr; a union guarantees it.
  union {
    char buf[CMSG_SPACE(sizeof(uint8_t))];
    cmsghdr align;
  } control;
  std::memset(&control, 0, sizeof(control));

  iovec iov;
  iov.iov_base = const_cast<uint8_t*>(payload.data());
  iov.iov_len = payload.size();
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_TLS;
  cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
  cmsg->cmsg_len = CMSG_LEN(sizeof(record_type));
  std::memcpy(CMSG_DATA(cmsg), &record_type, sizeof(record_type));

  for (;;) {
    // MSG_NOSIGNAL: a gone peer is a Status, not a SIGPIPE. No MSG_MORE: the
    // kernel refuses it together with a record type (EINVAL).
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) {
      return ErrnoToStatus(
          errno, absl::StrCat("sendmsg TLS record type ", record_type));
    }
  }
}

absl::StatusOr<TlsRecordRead> RecvTlsRecord(int fd, absl::Span<uint8_t> buf,
                                            int flags) {
  union {
    char buf[CMSG_SPACE(sizeof(uint8_t))];
    cmsghdr align;
  } control;

  for (;;) {
    std::memset(&control, 0, sizeof(control));
    iovec iov;
    iov.iov_base = buf.data();
    iov.iov_len = buf.size();
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);

    ssize_t n = ::recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      int e = errno;
      if (e == EINTR) {
        continue;
      }
      absl::Status status = ErrnoToStatus(e, "recvmsg TLS record");
      if (e == EBADMSG) {
        return WithCode(status, absl::StatusCode::kDataLoss,
                        "recvmsg TLS record: record failed authentication "
                        "(connection is dead)");
      }
      if (e == EKEYEXPIRED) {
        return WithCode(status, absl::StatusCode::kFailedPrecondition,
                        "recvmsg TLS record: peer sent KeyUpdate; set TLS_RX "
                        "to the next key before reading");
      }
      return status;
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      return absl::InternalError("recvmsg TLS record: control data truncated");
    }
    TlsRecordRead out;
    out.len = static_cast<size_t>(n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE &&
          c->cmsg_len >= CMSG_LEN(sizeof(uint8_t))) {
        std::memcpy(&out.record_type, CMSG_DATA(c), sizeof(uint8_t));
      }
    }
    // A 0-byte read is EOF only when it carried no record type: the kernel
    // can return an empty record with its cmsg.
    out.eof = (n == 0 && CMSG_FIRSTHDR(&msg) == nullptr);
    return out;
  }
}

}  // namespace tlsd
