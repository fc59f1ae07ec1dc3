#include "common/ipc/seqpacket.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"

namespace tlsd {
namespace {

absl::StatusOr<sockaddr_un> UnixAddress(absl::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path '", path,
                                                   "': empty or longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

absl::Status SendFrame(int sock, MsgType type, uint32_t request_id,
                       absl::Span<const uint8_t> payload, int fd_to_pass, int flags) {
  if (payload.size() > kMaxFrameLen - kFrameHeaderLen) {
    return absl::InvalidArgumentError(
        absl::StrCat(MsgTypeName(type), ": payload of ", payload.size(), " bytes too large"));
  }
  std::vector<uint8_t> frame = EncodeFrame(type, request_id, payload);
  iovec iov{frame.data(), frame.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd_to_pass >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd_to_pass, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoToStatus(errno, absl::StrCat("send ", MsgTypeName(type)));
  // SOCK_SEQPACKET sends a datagram whole or not at all.
  return absl::OkStatus();
}

absl::StatusOr<Frame> RecvFrame(int sock, int flags) {
  std::vector<uint8_t> buf(kMaxFrameLen);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Room for more fds than we accept, so that a peer sending two is detected
  // as "more than one fd" (both closed) rather than as MSG_CTRUNC.
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoToStatus(errno, "receive frame");

  // Own every fd first: from here on, any return closes them.
  std::vector<UniqueFd> fds;
  bool foreign_cmsg = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t num_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < num_fds; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(fd);
      }
    } else {
      foreign_cmsg = true;
    }
  }
  // SOCK_SEQPACKET reports end-of-stream as a 0-byte read. A peer that sends
  // an empty datagram is indistinguishable from one that closed; both lose
  // the connection, which is right for a frame that cannot be valid anyway.
  if (n == 0) return ErrnoToStatus(ECONNRESET, "receive frame: peer closed");
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    return absl::InvalidArgumentError("receive frame: truncated frame or control data");
  }
  if (foreign_cmsg) {
    return absl::InvalidArgumentError("receive frame: unexpected control message");
  }
  if (fds.size() > 1) {
    return absl::InvalidArgumentError("receive frame: more than one fd");
  }
  absl::Span<const uint8_t> payload;
  absl::StatusOr<FrameHeader> header =
      DecodeFrame(absl::MakeConstSpan(buf.data(), static_cast<size_t>(n)), &payload);
  if (!header.ok()) return header.status();
  Frame frame{*header, std::vector<uint8_t>(payload.begin(), payload.end()), UniqueFd()};
  if (!fds.empty()) frame.fd = std::move(fds[0]);
  return frame;
}

bool IsErrno(const absl::Status& status, int e) {
  // Only statuses made from a real errno count: a decoding error that maps to
  // EINVAL at the C boundary is not "the kernel said EINVAL".
  return !status.ok() && HasErrno(status) && StatusToErrno(status) == e;
}

absl::StatusOr<struct ucred> PeerCredentials(int sock) {
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoToStatus(errno, "SO_PEERCRED");
  }
  return cred;
}

absl::StatusOr<UniqueFd> ConnectUnix(absl::string_view path, bool nonblock, int type) {
  absl::StatusOr<sockaddr_un> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0));
  if (!fd.valid()) return ErrnoToStatus(errno, "socket(AF_UNIX)");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("connect ", path));
  }
  return fd;
}

absl::StatusOr<UniqueFd> ListenUnix(absl::string_view path, mode_t mode, int type) {
  absl::StatusOr<sockaddr_un> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoToStatus(errno, "socket(AF_UNIX)");
  // A socket file left by a previous run would make bind fail with EADDRINUSE;
  // remove it, but never one that a live process still serves.
  struct stat st;
  if (lstat(addr->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
    if (ConnectUnix(path, /*nonblock=*/true, type).ok()) {
      return absl::AlreadyExistsError(
          absl::StrCat("listen ", path, ": another process is serving this socket"));
    }
    unlink(addr->sun_path);
  }
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("bind ", path));
  }
  absl::Status status;
  if (chmod(addr->sun_path, mode) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("chmod ", path));
  } else if (listen(fd.get(), SOMAXCONN) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("listen ", path));
  }
  if (!status.ok()) {
    unlink(addr->sun_path);  // do not leave a file nobody listens on
    return status;
  }
  return fd;
}

absl::StatusOr<UniqueFd> ListenSeqpacket(absl::string_view path, mode_t mode) {
  return ListenUnix(path, mode, SOCK_SEQPACKET);
}

absl::StatusOr<UniqueFd> ConnectSeqpacket(absl::string_view path, bool nonblock) {
  return ConnectUnix(path, nonblock, SOCK_SEQPACKET);
}

}  // namespace tlsd
