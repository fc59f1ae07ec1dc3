#ifndef TLSD_COMMON_IPC_SEQPACKET_H_
#define TLSD_COMMON_IPC_SEQPACKET_H_

// Frames over AF_UNIX SOCK_SEQPACKET, with at most one fd per frame passed by
// SCM_RIGHTS. Shared by tlsd, libtlsfd and tls-wrap.

#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/unique_fd.h"
#include "common/wire/frame.h"

namespace tlsd {

// A received frame. `fd` is set only when one arrived; it is owned here, so
// a frame dropped on any error path closes it.
struct Frame {
  FrameHeader header;
  std::vector<uint8_t> payload;
  UniqueFd fd;
};

// SendFrame sends one frame (and `fd_to_pass` if >= 0; the caller keeps its
// copy and must close it once the send succeeded). `flags` is ORed into the
// sendmsg flags (MSG_DONTWAIT for event loops); MSG_NOSIGNAL is always set.
// EAGAIN comes back as kUnavailable with errno EAGAIN (see IsErrno).
absl::Status SendFrame(int sock, MsgType type, uint32_t request_id,
                       absl::Span<const uint8_t> payload, int fd_to_pass = -1, int flags = 0);

// RecvFrame receives one frame. Every fd that arrived is owned before anything
// is checked, so each rejection path closes them. Errors:
//   kUnavailable   peer closed (errno ECONNRESET) or EAGAIN (see IsErrno)
//   kInvalidArgument  truncated datagram or control data, more than one fd,
//                  an fd that is not SCM_RIGHTS, or a bad frame header
absl::StatusOr<Frame> RecvFrame(int sock, int flags = 0);

// IsErrno reports whether `status` was made by ErrnoToStatus(e, ...); a
// status without an errno (e.g. a decoding error) never matches.
bool IsErrno(const absl::Status& status, int e);

// PeerCredentials returns the kernel's SO_PEERCRED for a connected AF_UNIX
// socket: the only identity tlsd trusts for local peers.
absl::StatusOr<struct ucred> PeerCredentials(int sock);

// ListenSeqpacket binds a SOCK_SEQPACKET socket at `path`, chmods it to
// `mode` and listens. Non-blocking, CLOEXEC. A stale socket file is replaced;
// one that a live process accepts on is kAlreadyExists.
absl::StatusOr<UniqueFd> ListenSeqpacket(absl::string_view path, mode_t mode);

// ConnectSeqpacket connects to `path`. CLOEXEC; blocking unless `nonblock`.
absl::StatusOr<UniqueFd> ConnectSeqpacket(absl::string_view path, bool nonblock);

// The same for any AF_UNIX socket type (SOCK_STREAM for the metrics socket).
absl::StatusOr<UniqueFd> ListenUnix(absl::string_view path, mode_t mode, int type);
absl::StatusOr<UniqueFd> ConnectUnix(absl::string_view path, bool nonblock, int type);

}  // namespace tlsd

#endif  // TLSD_COMMON_IPC_SEQPACKET_H_
