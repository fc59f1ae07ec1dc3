#include "tlsd/supervisor/listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"

namespace tlsd {
namespace {

constexpr int kListenBacklog = 4096;

absl::Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoToStatus(errno, "fcntl O_NONBLOCK");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UniqueFd> ListenTcp(const ListenAddress& address) {
  const bool any = address.host.empty() || address.host == "*";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_family = any ? AF_INET6 : AF_UNSPEC;
  addrinfo* res = nullptr;
  const std::string port = absl::StrCat(address.port);
  int rc = getaddrinfo(any ? "::" : address.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen ", address.text, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(res, &freeaddrinfo);
  UniqueFd fd(socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) return ErrnoToStatus(errno, absl::StrCat("socket for ", address.text));
  int one = 1, zero = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // "*" is dual-stack; an explicit "[::]" is IPv6 only, so that it can sit
  // beside "0.0.0.0" on the same port (docs/config.md, as nginx does).
  if (res->ai_family == AF_INET6) {
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
  }
  if (bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("bind ", address.text));
  }
  if (listen(fd.get(), kListenBacklog) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("listen ", address.text));
  }
  return fd;
}

absl::StatusOr<SystemdSockets> SystemdSockets::Take() {
  SystemdSockets out;
  char** names = nullptr;
  int n = sd_listen_fds_with_names(/*unset_environment=*/1, &names);
  if (n < 0) return ErrnoToStatus(-n, "sd_listen_fds_with_names");
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    // Inherited fds arrive without CLOEXEC; no child should get them.
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    std::string name = names != nullptr && names[i] != nullptr ? names[i] : "unknown";
    out.fds_.insert_or_assign(name, UniqueFd(fd));
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) free(names[i]);
    free(names);
  }
  return out;
}

absl::StatusOr<UniqueFd> SystemdSockets::TakeTcpListener(const std::string& name) {
  auto it = fds_.find(name);
  if (it == fds_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "systemd socket '", name, "': not passed (FileDescriptorName= of the .socket unit)"));
  }
  UniqueFd fd = std::move(it->second);
  fds_.erase(it);
  if (sd_is_socket_inet(fd.get(), 0, SOCK_STREAM, /*listening=*/1, 0) <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("systemd socket '", name, "': not a listening TCP socket"));
  }
  if (absl::Status s = SetNonBlocking(fd.get()); !s.ok()) return s;
  return fd;
}

absl::StatusOr<UniqueFd> SystemdSockets::TakeFd(const std::string& name) {
  auto it = fds_.find(name);
  if (it == fds_.end()) return absl::NotFoundError(absl::StrCat("systemd fd '", name, "'"));
  UniqueFd fd = std::move(it->second);
  fds_.erase(it);
  return fd;
}

absl::StatusOr<UniqueFd> SystemdSockets::TakeUnixListener(const std::string& name) {
  auto it = fds_.find(name);
  if (it == fds_.end()) return absl::NotFoundError(absl::StrCat("systemd socket '", name, "'"));
  UniqueFd fd = std::move(it->second);
  fds_.erase(it);
  if (sd_is_socket_unix(fd.get(), SOCK_SEQPACKET, /*listening=*/1, nullptr, 0) <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("systemd socket '", name, "': not a listening AF_UNIX SOCK_SEQPACKET socket"));
  }
  if (absl::Status s = SetNonBlocking(fd.get()); !s.ok()) return s;
  return fd;
}

}  // namespace tlsd
