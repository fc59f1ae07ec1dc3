// tlsfd.hpp — a thin C++17 RAII face over tlsfd.h. Header-only, uses the C
// API and nothing else, throws nothing. Errors are the C API's negative
// errno values.
//
//   tlsfd::Server server;
//   if (int rc = tlsfd::Server::Subscribe("/run/tlsd/control.sock", "web", &server); rc < 0) {
//     std::fprintf(stderr, "subscribe: %s\n", tlsfd_last_error());
//     return 1;
//   }
//   tlsfd::Conn conn;
//   while (server.Accept(&conn) == 0) {
//     char buf[4096];
//     ssize_t n = conn.Read(buf, sizeof(buf));
//     if (n > 0) conn.Write(buf, static_cast<size_t>(n));
//     conn.Close();
//   }
#ifndef TLSFD_HPP_
#define TLSFD_HPP_

#include <cstddef>
#include <utility>

#include "tlsfd.h"

namespace tlsfd {

// Conn owns one tlsfd_conn; its destructor calls tlsfd_close(). Move-only.
class Conn {
 public:
  Conn() noexcept = default;
  // Conn takes ownership of `conn` (may be null).
  explicit Conn(tlsfd_conn* conn) noexcept : conn_(conn) {}
  Conn(Conn&& other) noexcept : conn_(other.release()) {}
  Conn& operator=(Conn&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { reset(); }

  // Connect is tlsfd_connect(): on success *out holds the new connection.
  static int Connect(const char* control_socket, const tlsfd_connect_params& params, int flags,
                     Conn* out) noexcept {
    tlsfd_conn* c = nullptr;
    int rc = tlsfd_connect(control_socket, &params, flags, &c);
    if (rc == 0) out->reset(c);
    return rc;
  }

  explicit operator bool() const noexcept { return conn_ != nullptr; }
  tlsfd_conn* get() const noexcept { return conn_; }
  // release gives up ownership without closing.
  [[nodiscard]] tlsfd_conn* release() noexcept { return std::exchange(conn_, nullptr); }
  // reset closes the current connection (tlsfd_close) and takes `conn`.
  void reset(tlsfd_conn* conn = nullptr) noexcept {
    if (conn_ != nullptr) {
      tlsfd_close(conn_);
    }
    conn_ = conn;
  }

  // fd returns tlsfd_conn_fd(): owned by the connection.
  int fd() const noexcept { return tlsfd_conn_fd(conn_); }
  // Read, Write, Shutdown: tlsfd_read, tlsfd_write, tlsfd_shutdown.
  ssize_t Read(void* buf, std::size_t len) noexcept { return tlsfd_read(conn_, buf, len); }
  ssize_t Write(const void* buf, std::size_t len) noexcept { return tlsfd_write(conn_, buf, len); }
  int Shutdown() noexcept { return tlsfd_shutdown(conn_); }
  // Close is tlsfd_close(): the Conn is empty afterwards. 0 for an empty Conn.
  int Close() noexcept { return tlsfd_close(release()); }
  // LastAlert is tlsfd_conn_last_alert().
  int LastAlert() const noexcept { return tlsfd_conn_last_alert(conn_); }
  // Info fills *out (struct_size is set here); returns tlsfd_conn_info's
  // result. The strings live as long as the connection.
  int Info(tlsfd_info* out) const noexcept {
    out->struct_size = sizeof(*out);
    return tlsfd_conn_info(conn_, out);
  }

 private:
  tlsfd_conn* conn_ = nullptr;
};

// Server owns one tlsfd_server; its destructor calls tlsfd_server_free().
// Move-only.
class Server {
 public:
  Server() noexcept = default;
  // Server takes ownership of `server` (may be null).
  explicit Server(tlsfd_server* server) noexcept : server_(server) {}
  Server(Server&& other) noexcept : server_(other.release()) {}
  Server& operator=(Server&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() { reset(); }

  // The factories mirror tlsfd_server_*(): 0 and *out replaced on success,
  // a negative errno (and *out untouched) on failure.
  static int Subscribe(const char* control_socket, const char* backend, Server* out) noexcept {
    tlsfd_server* s = nullptr;
    int rc = tlsfd_server_subscribe(control_socket, backend, &s);
    return Adopt(rc, s, out);
  }
  static int Listen(const char* socket_path, mode_t mode, Server* out) noexcept {
    tlsfd_server* s = nullptr;
    int rc = tlsfd_server_listen(socket_path, mode, &s);
    return Adopt(rc, s, out);
  }
  // FromFd takes `listening_fd` only on success, as tlsfd_server_from_fd.
  static int FromFd(int listening_fd, Server* out) noexcept {
    tlsfd_server* s = nullptr;
    int rc = tlsfd_server_from_fd(listening_fd, &s);
    return Adopt(rc, s, out);
  }
  static int FromSystemd(const char* fdname, Server* out) noexcept {
    tlsfd_server* s = nullptr;
    int rc = tlsfd_server_from_systemd(fdname, &s);
    return Adopt(rc, s, out);
  }

  explicit operator bool() const noexcept { return server_ != nullptr; }
  tlsfd_server* get() const noexcept { return server_; }
  [[nodiscard]] tlsfd_server* release() noexcept { return std::exchange(server_, nullptr); }
  void reset(tlsfd_server* server = nullptr) noexcept {
    if (server_ != nullptr) {
      tlsfd_server_free(server_);
    }
    server_ = server;
  }

  // fd is tlsfd_server_fd(): poll it for POLLIN.
  int fd() const noexcept { return tlsfd_server_fd(server_); }
  // RequirePeerUid is tlsfd_server_require_peer_uid().
  int RequirePeerUid(uid_t uid) noexcept { return tlsfd_server_require_peer_uid(server_, uid); }
  // SetControlSocket is tlsfd_server_set_control_socket().
  int SetControlSocket(const char* path) noexcept {
    return tlsfd_server_set_control_socket(server_, path);
  }
  // Accept is tlsfd_accept(); on success *out holds the new connection (any
  // connection it held before is closed).
  int Accept(Conn* out, int flags = 0) noexcept {
    tlsfd_conn* conn = nullptr;
    int rc = tlsfd_accept(server_, &conn, flags);
    if (rc == 0) {
      out->reset(conn);
    }
    return rc;
  }
  // Stats fills *out (struct_size is set here).
  int Stats(tlsfd_server_stats* out) const noexcept {
    out->struct_size = sizeof(*out);
    return tlsfd_server_get_stats(server_, out);
  }

 private:
  static int Adopt(int rc, tlsfd_server* made, Server* out) noexcept {
    if (rc == 0) {
      out->reset(made);
    }
    return rc;
  }

  tlsfd_server* server_ = nullptr;
};

}  // namespace tlsfd

#endif  // TLSFD_HPP_
