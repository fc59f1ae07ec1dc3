#include "libtlsfd/src/control_relay.h"

#include <errno.h>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/unique_fd.h"
#include "common/ipc/seqpacket.h"
#include "libtlsfd/src/internal.h"

namespace tlsfd::internal {

absl::StatusOr<tlsd::ControlVerdict> AskTlsd(const std::string& control_socket, int fd,
                                             uint8_t record_type, absl::Span<const uint8_t> payload,
                                             absl::string_view sealed_state,
                                             absl::Duration timeout) {
  if (payload.size() > tlsd::kMaxControlPayloadLen) {
    return tlsd::ErrnoToStatus(EMSGSIZE, "control record larger than one TLS record");
  }
  const std::string where = absl::StrCat("control record relay to tlsd at ", control_socket);
  // A connection per record: they are rare (a KeyUpdate now and then), and
  // tlsd keeps nothing about the worker between them.
  absl::StatusOr<tlsd::UniqueFd> sock = tlsd::ConnectSeqpacket(control_socket, /*nonblock=*/false);
  if (!sock.ok()) {
    return absl::Status(sock.status().code(), absl::StrCat(where, ": ", sock.status().message()));
  }
  tlsd::ControlRecord record;
  record.record_type = record_type;
  record.payload.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
  record.sealed_state = std::string(sealed_state);
  absl::Status sent = tlsd::SendFrame(sock->get(), tlsd::MsgType::kControlRecord, /*request_id=*/1,
                                      record.Encode(), fd);
  if (!sent.ok()) {
    return absl::Status(sent.code(), absl::StrCat(where, ": ", sent.message()));
  }
  absl::Status waited =
      WaitReadable(sock->get(), static_cast<int>(absl::ToInt64Milliseconds(timeout)),
                   absl::StrCat(where, ": waiting for the verdict"));
  if (!waited.ok()) return waited;
  absl::StatusOr<tlsd::Frame> reply = tlsd::RecvFrame(sock->get(), MSG_DONTWAIT);
  if (!reply.ok()) {
    return tlsd::ErrnoToStatus(
        tlsd::HasErrno(reply.status()) ? tlsd::StatusToErrno(reply.status()) : EPROTO,
        absl::StrCat(where, ": ", reply.status().message()));
  }
  if (reply->header.type == tlsd::MsgType::kError) {
    absl::StatusOr<tlsd::ErrorMsg> err = tlsd::ErrorMsg::Decode(reply->payload);
    if (!err.ok()) {
      return tlsd::ErrnoToStatus(EPROTO, absl::StrCat(where, ": ", err.status().message()));
    }
    const int code = err->code > 0 && err->code < 4096 ? static_cast<int>(err->code) : EPROTO;
    return tlsd::ErrnoToStatus(code,
                               absl::StrCat("tlsd refused the control record: ", err->message));
  }
  if (reply->header.type != tlsd::MsgType::kControlVerdict || reply->fd.valid()) {
    return tlsd::ErrnoToStatus(
        EPROTO, absl::StrCat(where, ": unexpected ", tlsd::MsgTypeName(reply->header.type),
                             reply->fd.valid() ? " with an fd" : ""));
  }
  absl::StatusOr<tlsd::ControlVerdict> verdict = tlsd::ControlVerdict::Decode(reply->payload);
  if (!verdict.ok()) {
    return tlsd::ErrnoToStatus(EPROTO, absl::StrCat(where, ": ", verdict.status().message()));
  }
  return verdict;
}

}  // namespace tlsfd::internal
