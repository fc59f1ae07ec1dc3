#ifndef TLSD_TLSD_CONTROL_SEALED_STATE_H_
#define TLSD_TLSD_CONTROL_SEALED_STATE_H_

// The per-connection state tlsd needs to answer control records after a
// handoff, kept by the worker as an opaque blob so tlsd holds no table of
// handed-off connections (ARCHITECTURE.md "Per-connection state after
// handoff: none in tlsd").
//
// Blob = u8 format | nonce(12) | AES-256-GCM(state) | tag(16), with the
// connection's local and peer addresses as associated data. A worker cannot
// read or forge it; and because the state also records a hash of the key the
// kernel holds on the socket for each direction, tlsd can check that a blob
// belongs to the fd it arrived with and is the current one (an older blob
// names keys the kernel no longer has).

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/secret_bytes.h"
#include "common/base/unique_fd.h"
#include "common/wire/messages.h"

namespace tlsd {

using KeyHash = std::array<uint8_t, 32>;

// ConnState is what a sealed blob holds.
struct ConnState {
  bool is_server = true;
  uint16_t tls_version = 0;   // 0x0303 or 0x0304
  uint16_t cipher_suite = 0;  // IANA id
  uint64_t connection_id = 0;
  uint32_t rx_generation = 0;  // KeyUpdates applied to each direction
  uint32_t tx_generation = 0;
  SecretBytes rx_secret;  // TLS 1.3: current traffic secret of what we receive
  SecretBytes tx_secret;  // TLS 1.3: current traffic secret of what we send
  KeyHash rx_key_hash{};  // SHA-256 of the kernel's current RX key
  KeyHash tx_key_hash{};
  uint32_t window_records = 0;   // control records in the current rate window
  uint64_t window_start_ms = 0;  // start of that window (CLOCK_REALTIME ms)
};

// Sealer owns the sealing key (32 random bytes; never leaves tlsd).
class Sealer {
 public:
  // Random makes a fresh key: blobs die with this tlsd process.
  static std::unique_ptr<Sealer> Random();
  // FromFile loads a 32-byte key, so a restarted tlsd keeps serving control
  // records of connections handed off before (systemd credential or file).
  static absl::StatusOr<std::unique_ptr<Sealer>> FromFile(absl::string_view path);
  // FromFd reads the key from a memfd made by KeyMemfd (handed back by
  // systemd's fd store after a restart).
  static absl::StatusOr<std::unique_ptr<Sealer>> FromFd(int fd);
  // KeyMemfd puts the key in a sealed memfd, for systemd's fd store, so the
  // next tlsd process can open the blobs of connections this one handed off.
  absl::StatusOr<UniqueFd> KeyMemfd() const;

  // Seal encrypts `state`, binding it to the connection's addresses.
  std::string Seal(const ConnState& state, const WireAddress& local, const WireAddress& peer) const;
  // Open decrypts a blob; kInvalidArgument if it is malformed, was not made
  // by this key, or was made for other addresses.
  absl::StatusOr<ConnState> Open(absl::string_view blob, const WireAddress& local,
                                 const WireAddress& peer) const;

 private:
  explicit Sealer(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

// KernelKeyHash returns SHA-256 of the key the kernel currently holds for
// one direction of a kTLS socket (getsockopt(SOL_TLS, TLS_TX/TLS_RX)). Only
// the key is hashed: the IV and sequence number advance as records flow.
absl::StatusOr<KeyHash> KernelKeyHash(int fd, bool tx);

// SocketAddresses reads the local and peer address of a TCP socket.
absl::Status SocketAddresses(int fd, WireAddress* out_local, WireAddress* out_peer);

}  // namespace tlsd

#endif  // TLSD_TLSD_CONTROL_SEALED_STATE_H_
