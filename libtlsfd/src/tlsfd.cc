// The extern "C" entry points of tlsfd.h: argument checks, Status -> -errno,
// and nothing else (BoringSSL's thin-wrapper pattern). No C++ exception can
// cross this boundary: the code below only allocates, and allocation failure
// is reported as -ENOMEM.

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/un.h>

#include <algorithm>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/ktls/record_io.h"
#include "libtlsfd/include/tlsfd.h"
#include "libtlsfd/src/internal.h"

namespace tlsfd::internal {
namespace {

thread_local std::string t_last_error;

// Fail records `status` for tlsfd_last_error() and returns its -errno.
int Fail(const absl::Status& status) {
  SetLastError(status.message());
  int e = tlsd::StatusToErrno(status);
  return e > 0 ? -e : -EIO;
}

int InvalidArgument(const char* what) {
  SetLastError(what);
  return -EINVAL;
}

// Guarded runs `fn` and turns std::bad_alloc into -ENOMEM, the only
// exception the implementation can raise (abseil and libtlsfd throw nothing
// else).
template <typename Fn>
auto Guarded(Fn&& fn) noexcept -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
}

template <typename T>
int Publish(absl::StatusOr<std::unique_ptr<T>> made, T** out) {
  if (!made.ok()) {
    return Fail(made.status());
  }
  *out = made->release();
  return 0;
}

}  // namespace

void SetLastError(absl::string_view message) {
  try {
    t_last_error.assign(message.data(), message.size());
  } catch (const std::bad_alloc&) {
    t_last_error.clear();
  }
}

const char* LastError() { return t_last_error.c_str(); }

}  // namespace tlsfd::internal

using tlsfd::internal::Fail;
using tlsfd::internal::Guarded;
using tlsfd::internal::InvalidArgument;
using tlsfd::internal::Publish;
using tlsfd::internal::SetLastError;

extern "C" {

const char* tlsfd_version(void) { return "0.1.0"; }

int tlsfd_server_subscribe(const char* control_socket, const char* backend, tlsfd_server** out) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (control_socket == nullptr || backend == nullptr || out == nullptr) {
    return InvalidArgument("tlsfd_server_subscribe: NULL argument");
  }
  return Guarded([&] {
    SetLastError("");
    return Publish(tlsfd::internal::Subscribe(control_socket, backend), out);
  });
}

int tlsfd_server_listen(const char* socket_path, mode_t mode, tlsfd_server** out) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (socket_path == nullptr || out == nullptr) {
    return InvalidArgument("tlsfd_server_listen: NULL argument");
  }
  return Guarded([&] {
    SetLastError("");
    return Publish(tlsfd::internal::Listen(socket_path, mode), out);
  });
}

int tlsfd_server_from_fd(int listening_fd, tlsfd_server** out) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (out == nullptr) {
    return InvalidArgument("tlsfd_server_from_fd: NULL argument");
  }
  return Guarded([&] {
    SetLastError("");
    return Publish(tlsfd::internal::FromFd(listening_fd), out);
  });
}

int tlsfd_server_from_systemd(const char* fdname, tlsfd_server** out) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (out == nullptr) {
    return InvalidArgument("tlsfd_server_from_systemd: NULL argument");
  }
  return Guarded([&] {
    SetLastError("");
    return Publish(tlsfd::internal::FromSystemd(fdname), out);
  });
}

int tlsfd_server_require_peer_uid(tlsfd_server* srv, uid_t uid) {
  if (srv == nullptr) {
    return InvalidArgument("tlsfd_server_require_peer_uid: NULL server");
  }
  return Guarded([&] {
    SetLastError("");
    absl::Status st = tlsfd::internal::RequirePeerUid(*srv, uid);
    return st.ok() ? 0 : Fail(st);
  });
}

int tlsfd_server_set_control_socket(tlsfd_server* srv, const char* path) {
  if (srv == nullptr || path == nullptr) {
    return InvalidArgument("tlsfd_server_set_control_socket: NULL argument");
  }
  const size_t len = strnlen(path, sizeof(sockaddr_un::sun_path));
  if (path[0] != '/' || len >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgument(
        "tlsfd_server_set_control_socket: the path must be absolute and at most 107 bytes");
  }
  return Guarded([&] {
    SetLastError("");
    srv->control_socket.assign(path, len);
    return 0;
  });
}

int tlsfd_server_fd(const tlsfd_server* srv) {
  if (srv == nullptr) {
    return -EINVAL;
  }
  return srv->mode == tlsfd_server::Mode::kPull ? srv->sock.get() : srv->epoll.get();
}

int tlsfd_connect(const char* control_socket, const struct tlsfd_connect_params* params, int flags,
                  tlsfd_conn** out) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (control_socket == nullptr || params == nullptr || out == nullptr) {
    return InvalidArgument("tlsfd_connect: NULL argument");
  }
  if (params->struct_size < sizeof(tlsfd_connect_params) || params->profile == nullptr ||
      params->host == nullptr) {
    return InvalidArgument("tlsfd_connect: struct_size, profile or host not set");
  }
  if ((flags & ~TLSFD_CONN_NONBLOCK) != 0) {
    return InvalidArgument("tlsfd_connect: unknown flags");
  }
  return Guarded([&] {
    SetLastError("");
    tlsd::ConnectRequest request;
    request.profile = params->profile;
    request.host = params->host;
    request.port = params->port;
    if (params->sni != nullptr) request.sni = params->sni;
    for (const char* const* p = params->alpn; p != nullptr && *p != nullptr; ++p) {
      if (request.alpn.size() == tlsd::kMaxConnectAlpn) {
        return InvalidArgument("tlsfd_connect: more than 8 ALPN protocols");
      }
      request.alpn.emplace_back(*p);
    }
    // The same checks tlsd makes, so a bad request fails here with -EINVAL.
    absl::StatusOr<tlsd::ConnectRequest> checked = tlsd::ConnectRequest::Decode(request.Encode());
    if (!checked.ok()) {
      SetLastError(absl::StrCat("tlsfd_connect: ", checked.status().message()));
      return -EINVAL;
    }
    return Publish(
        tlsfd::internal::Connect(control_socket, request, (flags & TLSFD_CONN_NONBLOCK) != 0), out);
  });
}

int tlsfd_accept(tlsfd_server* srv, tlsfd_conn** out, int flags) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (srv == nullptr || out == nullptr) {
    return InvalidArgument("tlsfd_accept: NULL argument");
  }
  if ((flags & ~(TLSFD_NONBLOCK | TLSFD_CONN_NONBLOCK)) != 0) {
    return InvalidArgument("tlsfd_accept: unknown flags");
  }
  return Guarded([&] {
    absl::StatusOr<std::unique_ptr<tlsfd_conn>> conn = tlsfd::internal::Accept(*srv, flags);
    if (!conn.ok() && tlsd::StatusToErrno(conn.status()) == EAGAIN) {
      return -EAGAIN;  // the normal case for event loops: keep last_error as is
    }
    return Publish(std::move(conn), out);
  });
}

int tlsfd_server_get_stats(const tlsfd_server* srv, struct tlsfd_server_stats* out) {
  if (srv == nullptr || out == nullptr || out->struct_size < sizeof(tlsfd_server_stats)) {
    return -EINVAL;
  }
  size_t want = out->struct_size;
  tlsfd_server_stats copy = srv->stats;
  memcpy(out, &copy, std::min(want, sizeof(copy)));
  out->struct_size = want;
  return 0;
}

void tlsfd_server_free(tlsfd_server* srv) { delete srv; }

int tlsfd_conn_fd(const tlsfd_conn* conn) {
  if (conn == nullptr) {
    return -EINVAL;
  }
  return conn->fd();
}

ssize_t tlsfd_read(tlsfd_conn* conn, void* buf, size_t len) {
  if (conn == nullptr || (buf == nullptr && len > 0)) {
    return -EINVAL;
  }
  return Guarded(
      [&] { return conn->Read(static_cast<uint8_t*>(buf), std::min<size_t>(len, SSIZE_MAX)); });
}

ssize_t tlsfd_write(tlsfd_conn* conn, const void* buf, size_t len) {
  if (conn == nullptr || (buf == nullptr && len > 0)) {
    return -EINVAL;
  }
  return Guarded([&] {
    return conn->Write(static_cast<const uint8_t*>(buf), std::min<size_t>(len, SSIZE_MAX));
  });
}

int tlsfd_shutdown(tlsfd_conn* conn) {
  if (conn == nullptr) {
    return -EINVAL;
  }
  return Guarded([&] { return conn->Shutdown(); });
}

int tlsfd_close(tlsfd_conn* conn) {
  if (conn == nullptr) {
    return 0;
  }
  int rc = Guarded([&] { return conn->Shutdown(); });
  Guarded([&] {
    conn->FlushBeforeClose();
    return 0;
  });
  delete conn;  // closes the fd
  return rc;
}

int tlsfd_conn_last_alert(const tlsfd_conn* conn) {
  if (conn == nullptr) {
    return -EINVAL;
  }
  int alert = conn->last_alert();
  return alert >= 0 ? alert : -ENOMSG;
}

const char* tlsfd_alert_name(int description) {
  if (description < 0 || description > 255) {
    return "unknown";
  }
  return tlsd::AlertName(static_cast<uint8_t>(description));
}

int tlsfd_conn_info(const tlsfd_conn* conn, struct tlsfd_info* out) {
  if (conn == nullptr || out == nullptr || out->struct_size < sizeof(tlsfd_info)) {
    return -EINVAL;
  }
  size_t want = out->struct_size;
  tlsfd_info full{};
  full.struct_size = want;
  conn->FillInfo(&full);
  memcpy(out, &full, std::min(want, sizeof(full)));
  return 0;
}

const char* tlsfd_strerror(int neg_errno) {
  if (neg_errno >= 0) {
    return neg_errno == 0 ? "Success" : "Not an error code";
  }
  const char* s = strerrordesc_np(-neg_errno);
  return s != nullptr ? s : "Unknown error";
}

const char* tlsfd_last_error(void) { return tlsfd::internal::LastError(); }

}  // extern "C"
