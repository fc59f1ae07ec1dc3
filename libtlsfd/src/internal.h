#ifndef TLSD_LIBTLSFD_SRC_INTERNAL_H_
#define TLSD_LIBTLSFD_SRC_INTERNAL_H_

// The C++ objects behind tlsfd.h's opaque types (BoringSSL's pattern: the C
// structs are C++ classes here, and the extern "C" entry points in tlsfd.cc
// are thin wrappers that turn Status into -errno).

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/unique_fd.h"
#include "common/ipc/seqpacket.h"
#include "common/wire/messages.h"
#include "libtlsfd/include/tlsfd.h"

// tlsfd_conn owns one handed-off connection: its socket and its metadata.
struct tlsfd_conn {
  tlsfd_conn(tlsd::UniqueFd fd, tlsd::ConnectionInfo info);

  // Read, Write, Shutdown implement tlsfd_read/_write/_shutdown (same
  // contracts; `len` already clamped to SSIZE_MAX).
  ssize_t Read(uint8_t* buf, size_t len);
  ssize_t Write(const uint8_t* buf, size_t len);
  int Shutdown();
  // FlushBeforeClose runs just before tlsfd_close closes the socket: see
  // conn.cc for why a kTLS connection may linger up to kCloseLinger.
  void FlushBeforeClose();
  void FillInfo(tlsfd_info* info) const;

  // The longest tlsfd_close waits for the peer to acknowledge what was
  // written, when it must close with input unread (FlushBeforeClose).
  static constexpr absl::Duration kCloseLinger = absl::Milliseconds(250);

  bool ktls() const { return info_.rx_path != tlsd::DataPath::kRelay; }
  int fd() const { return fd_.get(); }
  int last_alert() const { return last_alert_.load(std::memory_order_relaxed); }
  // Where tlsd answers this connection's control records (set at accept).
  void set_control_socket(std::string path) { control_socket_ = std::move(path); }

 private:
  ssize_t ReadKtls(uint8_t* buf, size_t len);
  // OnHandshakeRecord hands a post-handshake record (`n` bytes already in
  // `buf`; the rest queued unless `end_of_record`) to tlsd and applies its
  // verdict. Returns 1 to read on, or what tlsfd_read returns.
  ssize_t OnHandshakeRecord(uint8_t* buf, size_t n, bool end_of_record);
  // Fail puts the read side in its final failed state and returns `error`.
  ssize_t Fail(int error);

  const tlsd::UniqueFd fd_;
  const tlsd::ConnectionInfo info_;
  // Derived once for tlsfd_info, so the pointers handed out stay valid.
  std::string peer_text_;
  std::string local_text_;
  std::string cert_sha256_hex_;
  sockaddr_storage peer_addr_{};
  sockaddr_storage local_addr_{};

  // Read side: touched only by the thread in tlsfd_read.
  enum class ReadState { kOpen, kEof, kFailed };
  ReadState read_state_ = ReadState::kOpen;
  int read_error_ = 0;
  int skipped_alerts_ = 0;
  std::string control_socket_;
  // The sealed state tlsd gave with the connection, replaced by each verdict
  // (after a KeyUpdate it names the new keys).
  std::string sealed_state_;
  // Shared between reader and writer.
  std::atomic<int> last_alert_{-1};
  // Set once close_notify went out, or the connection failed so that nothing
  // more may be sent.
  std::atomic<bool> tx_closed_{false};
  // Held by writers, and by the reader while tlsd answers a handshake
  // record: tlsd may send a KeyUpdate and install new TX keys, and a record
  // the application writes in between would go out under the old keys after
  // the peer switched.
  std::mutex tx_mu_;
};

// tlsfd_server is a pull subscription or a push listener with its links.
struct tlsfd_server {
  enum class Mode { kPull, kPush };

  explicit tlsfd_server(Mode m) : mode(m) {}
  ~tlsfd_server();

  const Mode mode;
  // Pull: the control socket. Push: the listening socket.
  tlsd::UniqueFd sock;
  // Push: the epoll set of `sock` and every link; what tlsfd_server_fd gives.
  tlsd::UniqueFd epoll;
  std::vector<tlsd::UniqueFd> links;
  // Set by tlsfd_server_listen: the socket file to remove on free, if it is
  // still the one we bound (same device and inode).
  std::string bound_path;
  dev_t bound_dev = 0;
  ino_t bound_ino = 0;
  std::optional<uid_t> required_uid;
  // Pull: once the subscription ended, every accept returns this.
  absl::Status ended;
  // Where connections' control records go: the subscription's socket for
  // pull; for push $TLSFD_CONTROL_SOCKET, else tlsd's default, unless
  // tlsfd_server_set_control_socket() said otherwise.
  std::string control_socket;
  tlsfd_server_stats stats{};
};

namespace tlsfd::internal {

// Server constructors behind tlsfd_server_*().
absl::StatusOr<std::unique_ptr<tlsfd_server>> Subscribe(absl::string_view control_socket,
                                                        absl::string_view backend);
absl::StatusOr<std::unique_ptr<tlsfd_server>> Listen(absl::string_view path, mode_t mode);
// FromFd takes `listening_fd` only on success.
absl::StatusOr<std::unique_ptr<tlsfd_server>> FromFd(int listening_fd);
absl::StatusOr<std::unique_ptr<tlsfd_server>> FromSystemd(const char* fdname);
absl::Status RequirePeerUid(tlsfd_server& server, uid_t uid);

// Accept implements tlsfd_accept. `flags` was validated by the caller.
absl::StatusOr<std::unique_ptr<tlsfd_conn>> Accept(tlsfd_server& server, int flags);

// ConnFromFrame turns one received frame into a connection, or says why it
// cannot be used (then the frame, and its fd, are dropped by the caller).
// `expected` is CONNECTION (accept) or CONNECT_REPLY (tlsfd_connect).
absl::StatusOr<std::unique_ptr<tlsfd_conn>> ConnFromFrame(tlsd::Frame frame, bool conn_nonblock,
                                                          tlsd::MsgType expected);

// Connect implements tlsfd_connect: asks tlsd at `control_socket` for
// `request` and waits for the connection or tlsd's refusal (its errno and
// words).
absl::StatusOr<std::unique_ptr<tlsfd_conn>> Connect(const std::string& control_socket,
                                                    const tlsd::ConnectRequest& request,
                                                    bool conn_nonblock);

// WaitReadable polls `fd` for input; ETIMEDOUT after `timeout_ms` (-1: no
// limit). `what` names the wait in errors.
absl::Status WaitReadable(int fd, int timeout_ms, absl::string_view what);

// DefaultControlSocket is $TLSFD_CONTROL_SOCKET or tlsd's default path.
std::string DefaultControlSocket();

// SetLastError / LastError: the thread-local text behind tlsfd_last_error().
void SetLastError(absl::string_view message);
const char* LastError();

}  // namespace tlsfd::internal

#endif  // TLSD_LIBTLSFD_SRC_INTERNAL_H_
