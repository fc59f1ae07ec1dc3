#ifndef TLSD_COMMON_WIRE_MESSAGES_H_
#define TLSD_COMMON_WIRE_MESSAGES_H_

// Payload codecs for the frames in frame.h. Every Decode() checks every field
// and rejects trailing bytes; no partially decoded object is ever returned.
// Encode() never fails: the fields were validated where they were produced
// (and the Encode functions TLSD_CHECK the length limits).

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tlsd {

// A service name: 1..64 of [A-Za-z0-9_.-]. Shared by config and wire so both
// accept exactly the same names.
bool IsValidServiceName(absl::string_view name);

// HELLO: a worker subscribes to the connections of one backend (pull mode).
struct Hello {
  std::string backend;

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<Hello> Decode(absl::Span<const uint8_t> in);
};

// CONNECT: a local app asks tlsd for an outgoing TLS connection. tlsd checks
// the app's SO_PEERCRED against `profile`'s policy and the destination
// against its patterns, connects, verifies the server (chain and `host`),
// installs kTLS and answers CONNECT_REPLY with the socket and a
// ConnectionInfo, or ERROR. `host` is a DNS name or a numeric IPv4/IPv6
// address (no brackets); `sni` defaults to `host` when it is a name.
inline constexpr size_t kMaxConnectAlpn = 8;

struct ConnectRequest {
  std::string profile;
  std::string host;  // 1..253 bytes: LDH labels, or an IP address
  uint16_t port = 0;
  std::string sni;                // empty: host (if a name), none for an address
  std::vector<std::string> alpn;  // preference order, each 1..255 printable bytes

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<ConnectRequest> Decode(absl::Span<const uint8_t> in);
  bool operator==(const ConnectRequest&) const = default;
};

// IsValidHost accepts a DNS name (letters, digits, '-', dots; labels of
// 1..63, total 1..253, optional final dot) or a numeric IPv4/IPv6 address.
bool IsValidHost(absl::string_view host);

// ERROR: `code` is a positive errno value (EACCES for a refused subscriber,
// ECONNREFUSED for an unknown backend, ...); `message` says why in words.
struct ErrorMsg {
  uint32_t code = 0;
  std::string message;  // at most 1024 bytes

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<ErrorMsg> Decode(absl::Span<const uint8_t> in);
};

// Where one direction's TLS records are processed after the handshake.
enum class DataPath : uint8_t {
  kKernelSoftware = 1,  // kTLS, kernel crypto
  kKernelDevice = 2,    // kTLS, NIC offload
  kRelay = 3,           // tlsd relays in user space over a socketpair
};
const char* DataPathName(DataPath p);  // "ktls-sw", "ktls-hw", "relay"

// An IPv4/IPv6 endpoint as it travels on the wire.
struct WireAddress {
  uint8_t family = 0;              // 0 unknown, 4 or 6
  std::array<uint8_t, 16> addr{};  // IPv4 in the first 4 bytes
  uint16_t port = 0;

  std::string ToString() const;  // "1.2.3.4:5", "[::1]:5", "unknown"
  bool operator==(const WireAddress&) const = default;
};

// WireAddressFromSockaddr converts an AF_INET/AF_INET6 socket address; any
// other family gives the "unknown" address.
WireAddress WireAddressFromSockaddr(const struct sockaddr_storage& ss);

// CONNECTION / CONNECT_REPLY metadata, sent with the connection's fd.
struct ConnectionInfo {
  uint64_t connection_id = 0;
  std::string service;
  std::string backend;
  std::string sni;
  std::string alpn;
  uint16_t tls_version = 0;   // 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3)
  uint16_t cipher_suite = 0;  // IANA value
  std::string cipher_name;    // OpenSSL's name, for logs and demo output
  DataPath tx_path = DataPath::kRelay;
  DataPath rx_path = DataPath::kRelay;
  std::string path_reason;  // why relay (or which options did not apply)
  WireAddress peer;
  WireAddress local;
  bool has_client_cert = false;
  std::string client_cert_subject;               // RFC 2253, at most 1024 bytes
  std::array<uint8_t, 32> client_cert_sha256{};  // of the DER certificate
  bool resumed = false;
  uint32_t handshake_us = 0;
  std::string sealed_state;  // opaque to the worker; returned with control records

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<ConnectionInfo> Decode(absl::Span<const uint8_t> in);
  bool operator==(const ConnectionInfo&) const = default;
};

// CONTROL_RECORD: a worker met a TLS record that is not application data on
// a kTLS socket (an alert, a KeyUpdate, a NewSessionTicket, a renegotiation
// attempt) and hands it to tlsd with the socket (as the frame's fd) and the
// sealed state it got with the connection.
inline constexpr size_t kMaxControlPayloadLen = 16384;  // one TLS record

struct ControlRecord {
  uint8_t record_type = 0;  // 21 alert, 22 handshake, 20 change_cipher_spec
  std::string payload;      // the record's plaintext
  std::string sealed_state;

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<ControlRecord> Decode(absl::Span<const uint8_t> in);
};

// What the worker does after tlsd handled a control record.
enum class ControlAction : uint8_t {
  kContinue = 1,     // handled (rekeyed, ticket stored, renegotiation refused): keep reading
  kEndOfStream = 2,  // the peer closed (close_notify answered), or tlsd ended it cleanly
  kFailed = 3,       // a fatal alert was received or sent: the connection is dead
};

// CONTROL_VERDICT: tlsd's answer. `sealed_state` replaces the worker's copy
// (new keys after a KeyUpdate); `alert` is the alert received or sent, if
// any; `message` says what happened, for the worker's logs.
struct ControlVerdict {
  ControlAction action = ControlAction::kFailed;
  uint8_t alert = 0;
  bool has_alert = false;
  std::string sealed_state;
  std::string message;  // at most 1024 bytes, printable

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<ControlVerdict> Decode(absl::Span<const uint8_t> in);
};

// ADMIN_REQUEST: an operator's command (tlsctl). Only root and members of
// [global] admin_group may send it (SO_PEERCRED / SO_PEERGROUPS); anyone
// else gets ERROR EACCES.
enum class AdminCommand : uint8_t {
  kStatus = 1,       // services, listeners, counters, backends
  kReload = 2,       // as SIGHUP
  kCheckConfig = 3,  // a reload's checks, nothing applied
  kCerts = 4,        // the certificates being served
};
const char* AdminCommandName(AdminCommand c);  // "status", "reload", ...

struct AdminRequest {
  AdminCommand command = AdminCommand::kStatus;

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<AdminRequest> Decode(absl::Span<const uint8_t> in);
};

// ADMIN_REPLY: the answer is one JSON object, sent in order in as many
// chunks as it needs (a frame holds at most kMaxAdminChunk bytes of it);
// `last` is set on the final one. A reader caps the whole at
// kMaxAdminReply.
inline constexpr size_t kMaxAdminChunk = 16384;
inline constexpr size_t kMaxAdminReply = 16 << 20;

struct AdminReplyChunk {
  bool last = false;
  std::string data;  // at most kMaxAdminChunk bytes

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<AdminReplyChunk> Decode(absl::Span<const uint8_t> in);
};

}  // namespace tlsd

#endif  // TLSD_COMMON_WIRE_MESSAGES_H_
