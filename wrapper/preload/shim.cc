// libtls-wrap-preload.so: tls-wrap's preload mode, loaded into a daemon that
// speaks plain TCP (LD_PRELOAD, set up by `tls-wrap preload`). The daemon is
// not changed and does not know:
//
//   bind() to $TLS_WRAP_PORT   remembered, not done: the plain port is never
//                              open on the network
//   listen() on that socket    subscribes to tlsd's pull backend
//                              $TLS_WRAP_BACKEND; the fd becomes a Listener
//                              (listener.h), readable when a connection waits
//   accept()/accept4() on it   return the next secured socket from tlsd (kTLS
//                              TCP socket, or a relay socketpair end), its
//                              address the client's
//   read()/recv*()/readv()     on such a socket go through tlsfd_read(), so
//                              that a record that is not application data is
//                              handled: close_notify is end-of-file (a plain
//                              read() on kTLS would fail with EIO), a
//                              KeyUpdate is answered by tlsd
//   shutdown(SHUT_WR)/close()  send close_notify (tlsfd_shutdown/close)
//   getpeername/getsockname    the TLS client's and tlsd's addresses
//
// Writes are not touched: plaintext written to the socket is encrypted by
// the kernel (or tlsd, relaying), and sendfile() keeps working.
//
// Before the daemon's main() runs, the shim installs libtlsfd's worker
// seccomp profile (tlsfd_restrict_key_access): getsockopt(SOL_TLS) would read
// a kTLS socket's traffic keys back, and the daemon has no business doing
// that. The private keys never leave tlsd.
//
// Limits (docs/tls-wrap.md): one port per process; a socket dup()ed by the
// daemon reads without the shim; a child that inherits a connection and
// exec()s reads it without the table; io_uring is not seen.

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "libtlsfd/include/tlsfd.h"
#include "wrapper/preload/listener.h"

#define SHIM_EXPORT extern "C" __attribute__((visibility("default")))

namespace tlswrap::preload {
namespace {

// --- Configuration (from tls-wrap preload, in the environment) ------------

struct Settings {
  bool active = false;
  uint16_t port = 0;
  std::string backend;
  std::string control = "/run/tlsd/control.sock";
};

Settings& GetSettings() {
  static Settings s;
  return s;
}

// --- The real functions ---------------------------------------------------

template <typename F>
F Real(const char* name) {
  void* p = dlsym(RTLD_NEXT, name);
  if (p == nullptr) {
    fprintf(stderr, "tls-wrap preload: no symbol %s in the C library\n", name);
    abort();
  }
  return reinterpret_cast<F>(p);
}
#define REAL(name) static const auto real_##name = Real<decltype(&::name)>(#name)

// --- Re-entry -------------------------------------------------------------
//
// libtlsfd itself calls read(), recvmsg(), close() ...: on the process's
// global symbol lookup those are the hooks below again. While a thread is
// inside the shim's own work, the hooks go straight to the C library.

thread_local bool t_in_shim __attribute__((tls_model("initial-exec"))) = false;

class InShim {
 public:
  InShim() : was_(t_in_shim) { t_in_shim = true; }
  ~InShim() { t_in_shim = was_; }
  InShim(const InShim&) = delete;
  InShim& operator=(const InShim&) = delete;

 private:
  bool was_;
};

// --- The fd table ---------------------------------------------------------
//
// One slot per fd number below kMaxFd, read on every read() of the process:
// a lock-free load. The array is in .bss, so untouched pages cost nothing.

enum class Kind { kBound, kListener, kConn };

struct Entry {
  Kind kind;
  sockaddr_storage addr{};  // kBound/kListener: the address the daemon asked for
  socklen_t addr_len = 0;
  Listener* listener = nullptr;  // kListener, owned
  tlsfd_conn* conn = nullptr;    // kConn, owned
  pid_t owner = 0;               // kListener/kConn: the process that made it
};

constexpr int kMaxFd = 1 << 16;
std::atomic<Entry*> g_table[kMaxFd];

Entry* Lookup(int fd) {
  if (t_in_shim || fd < 0 || fd >= kMaxFd) return nullptr;
  return g_table[fd].load(std::memory_order_acquire);
}

Entry* Take(int fd) {
  if (t_in_shim || fd < 0 || fd >= kMaxFd) return nullptr;
  return g_table[fd].exchange(nullptr, std::memory_order_acq_rel);
}

void Put(int fd, Entry* e) {
  Entry* old = g_table[fd].exchange(e, std::memory_order_acq_rel);
  delete old;  // a stale entry (fd closed behind our back): drop it
}

tlsfd_conn* ConnOf(int fd) {
  Entry* e = Lookup(fd);
  return e != nullptr && e->kind == Kind::kConn ? e->conn : nullptr;
}

// Release frees what the entry owns. A listener or connection inherited
// through fork() is the parent's (its thread did not come along; the child
// must not send close_notify on the parent's connection): the child only
// drops its copy of the fd.
void Release(int fd, Entry* e) {
  REAL(close);
  InShim guard;
  switch (e->kind) {
    case Kind::kBound:
      real_close(fd);
      break;
    case Kind::kListener:
      if (e->owner == getpid()) delete e->listener;
      real_close(fd);
      break;
    case Kind::kConn:
      if (e->owner == getpid()) {
        tlsfd_close(e->conn);  // closes fd
      } else {
        real_close(fd);  // the tlsfd_conn is the parent's; leak the copy
      }
      break;
  }
  delete e;
}

int Fail(int e) {
  errno = e;
  return -1;
}

ssize_t FromTlsfd(ssize_t n) {
  if (n >= 0) return n;
  errno = static_cast<int>(-n);
  return -1;
}

// CopyAddr stores `src` into a caller's (addr, len) the way the kernel does:
// truncated to *len, *len set to the full size.
void CopyAddr(const sockaddr_storage& src, socklen_t src_len, sockaddr* addr, socklen_t* len) {
  if (addr == nullptr || len == nullptr) return;
  memcpy(addr, &src, std::min<socklen_t>(*len, src_len));
  *len = src_len;
}

socklen_t AddrLen(const sockaddr_storage& ss) {
  switch (ss.ss_family) {
    case AF_INET:
      return sizeof(sockaddr_in);
    case AF_INET6:
      return sizeof(sockaddr_in6);
  }
  return sizeof(sa_family_t);
}

bool IsWrappedPort(const sockaddr* addr, socklen_t len) {
  const Settings& s = GetSettings();
  if (!s.active || addr == nullptr) return false;
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(addr)->sin_port) == s.port;
  }
  if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_port) == s.port;
  }
  return false;
}

int AcceptWrapped(Entry* le, sockaddr* addr, socklen_t* len, int flags) {
  InShim guard;
  tlsfd_conn* c = le->listener->Accept();
  if (c == nullptr) return -1;
  const int fd = tlsfd_conn_fd(c);
  // libtlsfd gives a blocking, close-on-exec fd; accept4's flags decide.
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) {
    fcntl(fd, F_SETFL, (flags & SOCK_NONBLOCK) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
  }
  fcntl(fd, F_SETFD, (flags & SOCK_CLOEXEC) ? FD_CLOEXEC : 0);
  if (fd >= kMaxFd) {
    // Beyond the table the shim could not follow its reads: refuse it.
    tlsfd_close(c);
    return Fail(EMFILE);
  }
  tlsfd_info info{};
  info.struct_size = sizeof info;
  tlsfd_conn_info(c, &info);
  auto* e = new Entry{Kind::kConn};
  e->conn = c;
  e->owner = getpid();
  Put(fd, e);
  CopyAddr(info.peer_addr, AddrLen(info.peer_addr), addr, len);
  return fd;
}

// ReadConn reads plaintext for read/recv*/readv. `flags` may hold
// MSG_DONTWAIT (honoured on a blocking socket by checking readiness first;
// a record that is only partly in is then still waited for, briefly).
ssize_t ReadConn(tlsfd_conn* c, void* buf, size_t len, int flags) {
  InShim guard;
  if ((flags & MSG_DONTWAIT) != 0) {
    pollfd p{tlsfd_conn_fd(c), POLLIN, 0};
    if (poll(&p, 1, 0) == 0) return Fail(EAGAIN);
  }
  return FromTlsfd(tlsfd_read(c, buf, len));
}

// Flags that ReadConn can honour; others (MSG_PEEK, MSG_WAITALL, ...) go to
// the kernel as they are.
constexpr int kReadFlags = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC;

// FirstBuffer: readv/recvmsg read into the first non-empty buffer (a short
// read, which both allow).
const iovec* FirstBuffer(const iovec* iov, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (iov[i].iov_len > 0) return &iov[i];
  }
  return nullptr;
}

void Init() {
  Settings& s = GetSettings();
  const char* backend = getenv("TLS_WRAP_BACKEND");
  const char* port = getenv("TLS_WRAP_PORT");
  const char* control = getenv("TLS_WRAP_CONTROL");
  if (backend == nullptr || *backend == '\0') return;  // loaded but not asked to do anything
  char* end = nullptr;
  long p = port != nullptr ? strtol(port, &end, 10) : 0;
  if (port == nullptr || *end != '\0' || p < 1 || p > 65535) {
    fprintf(stderr, "tls-wrap preload: TLS_WRAP_PORT must be 1..65535, got '%s'\n",
            port != nullptr ? port : "");
    _exit(64);
  }
  s.port = static_cast<uint16_t>(p);
  s.backend = backend;
  if (control != nullptr && *control != '\0') s.control = control;
  // Fail closed: a daemon that could read its connections' traffic keys is
  // not what tls-wrap promises.
  InShim guard;
  int rc = tlsfd_restrict_key_access();
  if (rc < 0) {
    fprintf(stderr, "tls-wrap preload: cannot install the key-access filter: %s\n",
            tlsfd_strerror(rc));
    _exit(71);
  }
  s.active = true;
}

__attribute__((constructor)) void OnLoad() { Init(); }

}  // namespace
}  // namespace tlswrap::preload

using namespace tlswrap::preload;  // NOLINT: the exported hooks below

// --- Listening side -------------------------------------------------------

SHIM_EXPORT int bind(int fd, const sockaddr* addr, socklen_t len) {
  REAL(bind);
  if (!IsWrappedPort(addr, len) || fd < 0 || fd >= kMaxFd) return real_bind(fd, addr, len);
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM) {
    return real_bind(fd, addr, len);
  }
  auto* e = new Entry{Kind::kBound};
  memcpy(&e->addr, addr, std::min<size_t>(len, sizeof e->addr));
  e->addr_len = len;
  Put(fd, e);
  return 0;
}

SHIM_EXPORT int listen(int fd, int backlog) {
  REAL(listen);
  Entry* e = Lookup(fd);
  if (e == nullptr || e->kind != Kind::kBound) return real_listen(fd, backlog);
  const Settings& s = GetSettings();
  InShim guard;
  std::string error;
  Listener* l = Listener::Start(fd, s.control, s.backend, e->addr, e->addr_len, &error);
  if (l == nullptr) {
    int saved = errno;
    fprintf(stderr, "tls-wrap preload: %s\n", error.c_str());
    return Fail(saved);
  }
  auto* le = new Entry{Kind::kListener};
  le->addr = e->addr;
  le->addr_len = e->addr_len;
  le->listener = l;
  le->owner = getpid();
  Put(fd, le);  // frees the kBound entry
  fprintf(stderr, "tls-wrap preload: port %u: connections from tlsd backend '%s'\n", s.port,
          s.backend.c_str());
  return 0;
}

SHIM_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  REAL(accept4);
  Entry* e = Lookup(fd);
  if (e == nullptr || e->kind != Kind::kListener) return real_accept4(fd, addr, len, flags);
  if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0) return Fail(EINVAL);
  return AcceptWrapped(e, addr, len, flags);
}

SHIM_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  REAL(accept);
  Entry* e = Lookup(fd);
  if (e == nullptr || e->kind != Kind::kListener) return real_accept(fd, addr, len);
  return AcceptWrapped(e, addr, len, 0);
}

SHIM_EXPORT int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  REAL(getsockname);
  Entry* e = Lookup(fd);
  if (e == nullptr) return real_getsockname(fd, addr, len);
  if (e->kind == Kind::kConn) {
    tlsfd_info info{};
    info.struct_size = sizeof info;
    tlsfd_conn_info(e->conn, &info);
    CopyAddr(info.local_addr, AddrLen(info.local_addr), addr, len);
  } else {
    CopyAddr(e->addr, e->addr_len, addr, len);
  }
  return 0;
}

SHIM_EXPORT int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  REAL(getpeername);
  Entry* e = Lookup(fd);
  if (e == nullptr) return real_getpeername(fd, addr, len);
  if (e->kind != Kind::kConn) return Fail(ENOTCONN);
  tlsfd_info info{};
  info.struct_size = sizeof info;
  tlsfd_conn_info(e->conn, &info);
  CopyAddr(info.peer_addr, AddrLen(info.peer_addr), addr, len);
  return 0;
}

// Options set on the listening socket after listen() (there is no socket
// behind it any more) succeed without effect; a few are answered for
// daemons that check what they listen on.
SHIM_EXPORT int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  REAL(setsockopt);
  Entry* e = Lookup(fd);
  if (e != nullptr && e->kind == Kind::kListener) return 0;
  return real_setsockopt(fd, level, name, val, len);
}

SHIM_EXPORT int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  REAL(getsockopt);
  Entry* e = Lookup(fd);
  if (e == nullptr || e->kind != Kind::kListener || level != SOL_SOCKET || val == nullptr ||
      len == nullptr || *len < sizeof(int)) {
    return real_getsockopt(fd, level, name, val, len);
  }
  int v;
  switch (name) {
    case SO_TYPE:
      v = SOCK_STREAM;
      break;
    case SO_DOMAIN:
      v = e->addr.ss_family;
      break;
    case SO_PROTOCOL:
      v = IPPROTO_TCP;
      break;
    case SO_ACCEPTCONN:
      v = 1;
      break;
    case SO_ERROR:
      v = 0;
      break;
    default:
      return Fail(ENOPROTOOPT);
  }
  memcpy(val, &v, sizeof v);
  *len = sizeof v;
  return 0;
}

// --- Connections ----------------------------------------------------------

SHIM_EXPORT ssize_t read(int fd, void* buf, size_t len) {
  REAL(read);
  tlsfd_conn* c = ConnOf(fd);
  return c != nullptr ? ReadConn(c, buf, len, 0) : real_read(fd, buf, len);
}

SHIM_EXPORT ssize_t recv(int fd, void* buf, size_t len, int flags) {
  REAL(recv);
  tlsfd_conn* c = ConnOf(fd);
  if (c == nullptr || (flags & ~kReadFlags) != 0) return real_recv(fd, buf, len, flags);
  return ReadConn(c, buf, len, flags);
}

SHIM_EXPORT ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* addr,
                             socklen_t* addr_len) {
  REAL(recvfrom);
  tlsfd_conn* c = ConnOf(fd);
  if (c == nullptr || (flags & ~kReadFlags) != 0) {
    return real_recvfrom(fd, buf, len, flags, addr, addr_len);
  }
  // A connected stream socket reports no source address.
  if (addr_len != nullptr) *addr_len = 0;
  return ReadConn(c, buf, len, flags);
}

SHIM_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  REAL(recvmsg);
  tlsfd_conn* c = ConnOf(fd);
  if (c == nullptr || msg == nullptr || (flags & ~kReadFlags) != 0) {
    return real_recvmsg(fd, msg, flags);
  }
  const iovec* v = FirstBuffer(msg->msg_iov, msg->msg_iovlen);
  msg->msg_controllen = 0;
  msg->msg_flags = 0;
  msg->msg_namelen = 0;
  if (v == nullptr) return 0;
  return ReadConn(c, v->iov_base, v->iov_len, flags);
}

SHIM_EXPORT ssize_t readv(int fd, const iovec* iov, int n) {
  REAL(readv);
  tlsfd_conn* c = ConnOf(fd);
  if (c == nullptr || n < 0) return real_readv(fd, iov, n);
  const iovec* v = FirstBuffer(iov, static_cast<size_t>(n));
  if (v == nullptr) return 0;
  return ReadConn(c, v->iov_base, v->iov_len, 0);
}

// _FORTIFY_SOURCE builds (Debian's daemons) call these instead when the
// buffer's size is known at compile time.
SHIM_EXPORT ssize_t __read_chk(int fd, void* buf, size_t len, size_t buflen) {
  if (len > buflen) abort();
  return read(fd, buf, len);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
  if (len > buflen) abort();
  return recv(fd, buf, len, flags);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags,
                                   sockaddr* addr, socklen_t* addr_len) {
  if (len > buflen) abort();
  return recvfrom(fd, buf, len, flags, addr, addr_len);
}

SHIM_EXPORT int shutdown(int fd, int how) {
  REAL(shutdown);
  tlsfd_conn* c = ConnOf(fd);
  if (c == nullptr || how == SHUT_RD) return real_shutdown(fd, how);
  InShim guard;
  int rc = tlsfd_shutdown(c);  // close_notify, then SHUT_WR
  if (rc < 0) return Fail(-rc);
  return how == SHUT_RDWR ? real_shutdown(fd, SHUT_RD) : 0;
}

SHIM_EXPORT int close(int fd) {
  REAL(close);
  Entry* e = Take(fd);
  if (e == nullptr) return real_close(fd);
  Release(fd, e);
  return 0;
}

// dup2/dup3 onto one of our fd numbers closes it first, as close() would.
SHIM_EXPORT int dup2(int oldfd, int newfd) {
  REAL(dup2);
  if (oldfd != newfd) {
    if (Entry* e = Take(newfd)) Release(newfd, e);
  }
  return real_dup2(oldfd, newfd);
}

SHIM_EXPORT int dup3(int oldfd, int newfd, int flags) {
  REAL(dup3);
  if (oldfd != newfd) {
    if (Entry* e = Take(newfd)) Release(newfd, e);
  }
  return real_dup3(oldfd, newfd, flags);
}
