// tlsfd_connect: outgoing connections set up by tlsd (CONNECT).

#include <errno.h>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/ipc/seqpacket.h"
#include "libtlsfd/src/internal.h"

namespace tlsfd::internal {
namespace {

// tlsd bounds each request by its profile's connect_timeout_ms (at most
// 600 s); this only bounds a tlsd that never answers.
constexpr int kConnectReplyTimeoutMs = 610'000;

}  // namespace

absl::StatusOr<std::unique_ptr<tlsfd_conn>> Connect(const std::string& control_socket,
                                                    const tlsd::ConnectRequest& request,
                                                    bool conn_nonblock) {
  absl::StatusOr<tlsd::UniqueFd> sock = tlsd::ConnectSeqpacket(control_socket, /*nonblock=*/false);
  if (!sock.ok()) {
    return absl::Status(sock.status().code(), absl::StrCat("tlsd's control socket ", control_socket,
                                                           ": ", sock.status().message()));
  }
  absl::Status sent =
      tlsd::SendFrame(sock->get(), tlsd::MsgType::kConnect, /*request_id=*/1, request.Encode());
  if (!sent.ok()) return sent;
  absl::Status waited = WaitReadable(sock->get(), kConnectReplyTimeoutMs, "wait for tlsd's answer");
  if (!waited.ok()) return waited;
  absl::StatusOr<tlsd::Frame> reply = tlsd::RecvFrame(sock->get(), MSG_DONTWAIT);
  if (!reply.ok()) {
    if (!tlsd::HasErrno(reply.status())) {
      return tlsd::ErrnoToStatus(
          EPROTO, absl::StrCat("tlsd's answer to CONNECT: ", reply.status().message()));
    }
    return reply.status();
  }
  if (reply->header.type == tlsd::MsgType::kError) {
    absl::StatusOr<tlsd::ErrorMsg> err = tlsd::ErrorMsg::Decode(reply->payload);
    if (!err.ok()) return tlsd::ErrnoToStatus(EPROTO, err.status().message());
    // tlsd's own words: "server certificate verification failed: ...",
    // "... is not a destination of client profile ...".
    return tlsd::ErrnoToStatus(static_cast<int>(err->code), err->message);
  }
  absl::StatusOr<std::unique_ptr<tlsfd_conn>> conn =
      ConnFromFrame(*std::move(reply), conn_nonblock, tlsd::MsgType::kConnectReply);
  if (!conn.ok()) {
    return tlsd::ErrnoToStatus(EPROTO,
                               absl::StrCat("tlsd's answer to CONNECT: ", conn.status().message()));
  }
  (*conn)->set_control_socket(control_socket);
  return conn;
}

}  // namespace tlsfd::internal
