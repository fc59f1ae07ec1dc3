#include "common/wire/messages.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/base/logging.h"
#include "common/wire/byte_io.h"

namespace tlsd {
namespace {

constexpr size_t kMaxErrorMessageLen = 1024;
constexpr size_t kMaxSubjectLen = 1024;
constexpr size_t kMaxSealedStateLen = 1024;
constexpr size_t kMaxReasonLen = 1024;

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": malformed"));
}

void WriteAddress(ByteWriter& w, const WireAddress& a) {
  w.WriteU8(a.family);
  w.WriteBytes(a.addr);
  w.WriteU16(a.port);
}

bool ReadAddress(ByteReader& r, WireAddress* a) {
  absl::Span<const uint8_t> bytes;
  if (!r.ReadU8(&a->family) || !r.ReadBytes(16, &bytes) || !r.ReadU16(&a->port)) {
    return false;
  }
  std::copy(bytes.begin(), bytes.end(), a->addr.begin());
  return true;
}

bool ReadBool(ByteReader& r, bool* out) {
  uint8_t v;
  if (!r.ReadU8(&v) || v > 1) return false;
  *out = v == 1;
  return true;
}

bool IsKnownDataPath(uint8_t p) { return p >= 1 && p <= 3; }

// Text that ends up in log lines must not be able to forge one: printable
// ASCII only (SNI host names and OpenSSL cipher names are).
bool IsPrintable(absl::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// One encoding per address: bytes past the family's length must be zero.
bool IsCanonicalAddress(const WireAddress& a) {
  size_t used = a.family == 4 ? 4 : a.family == 6 ? 16 : 0;
  for (size_t i = used; i < a.addr.size(); ++i) {
    if (a.addr[i] != 0) return false;
  }
  return a.family != 0 || a.port == 0;
}

}  // namespace

bool IsValidServiceName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::vector<uint8_t> Hello::Encode() const {
  ByteWriter w;
  w.WriteU8Prefixed(backend);
  return w.Take();
}

absl::StatusOr<Hello> Hello::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  absl::string_view backend;
  if (!r.ReadU8Prefixed(&backend) || !r.empty()) return Malformed("HELLO");
  if (!IsValidServiceName(backend)) {
    return absl::InvalidArgumentError("HELLO: backend name is not [A-Za-z0-9_.-]{1,64}");
  }
  return Hello{std::string(backend)};
}

bool IsValidHost(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  in6_addr a6;
  in_addr a4;
  const std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1 || inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    return true;
  }
  if (host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return false;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

std::vector<uint8_t> ConnectRequest::Encode() const {
  ByteWriter w;
  w.WriteU8Prefixed(profile);
  w.WriteU8Prefixed(host);
  w.WriteU16(port);
  w.WriteU8Prefixed(sni);
  TLSD_CHECK(alpn.size() <= kMaxConnectAlpn);
  w.WriteU8(static_cast<uint8_t>(alpn.size()));
  for (const std::string& p : alpn) w.WriteU8Prefixed(p);
  return w.Take();
}

absl::StatusOr<ConnectRequest> ConnectRequest::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  ConnectRequest m;
  absl::string_view profile, host, sni;
  uint8_t num_alpn = 0;
  if (!r.ReadU8Prefixed(&profile) || !r.ReadU8Prefixed(&host) || !r.ReadU16(&m.port) ||
      !r.ReadU8Prefixed(&sni) || !r.ReadU8(&num_alpn)) {
    return Malformed("CONNECT");
  }
  if (num_alpn > kMaxConnectAlpn) {
    return absl::InvalidArgumentError(
        absl::StrCat("CONNECT: more than ", kMaxConnectAlpn, " ALPN protocols"));
  }
  for (uint8_t i = 0; i < num_alpn; ++i) {
    absl::string_view p;
    if (!r.ReadU8Prefixed(&p)) return Malformed("CONNECT");
    if (p.empty() || !IsPrintable(p)) {
      return absl::InvalidArgumentError("CONNECT: an ALPN protocol is empty or not printable");
    }
    m.alpn.emplace_back(p);
  }
  if (!r.empty()) return Malformed("CONNECT");
  if (!IsValidServiceName(profile)) {
    return absl::InvalidArgumentError("CONNECT: profile name is not [A-Za-z0-9_.-]{1,64}");
  }
  if (!IsValidHost(host)) {
    return absl::InvalidArgumentError("CONNECT: host is neither a DNS name nor an IP address");
  }
  if (m.port == 0) return absl::InvalidArgumentError("CONNECT: port 0");
  if (!sni.empty() && !IsValidHost(sni)) {
    return absl::InvalidArgumentError("CONNECT: sni is not a DNS name");
  }
  m.profile = std::string(profile);
  m.host = std::string(host);
  m.sni = std::string(sni);
  return m;
}

std::vector<uint8_t> ErrorMsg::Encode() const {
  TLSD_CHECK(code != 0 && code <= 4095);  // Decode accepts only errno values
  ByteWriter w;
  w.WriteU32(code);
  w.WriteU16Prefixed(message.size() > kMaxErrorMessageLen
                         ? absl::string_view(message).substr(0, kMaxErrorMessageLen)
                         : absl::string_view(message));
  return w.Take();
}

absl::StatusOr<ErrorMsg> ErrorMsg::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  ErrorMsg m;
  absl::string_view message;
  if (!r.ReadU32(&m.code) || !r.ReadU16Prefixed(&message) || !r.empty()) {
    return Malformed("ERROR");
  }
  if (m.code == 0 || m.code > 4095) {
    return absl::InvalidArgumentError("ERROR: code is not an errno value");
  }
  if (message.size() > kMaxErrorMessageLen) {
    return absl::InvalidArgumentError("ERROR: message too long");
  }
  m.message = std::string(message);
  return m;
}

const char* DataPathName(DataPath p) {
  switch (p) {
    case DataPath::kKernelSoftware:
      return "ktls-sw";
    case DataPath::kKernelDevice:
      return "ktls-hw";
    case DataPath::kRelay:
      return "relay";
  }
  return "unknown";
}

WireAddress WireAddressFromSockaddr(const struct sockaddr_storage& ss) {
  WireAddress a;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    a.family = 4;
    memcpy(a.addr.data(), &in->sin_addr, 4);
    a.port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    a.family = 6;
    memcpy(a.addr.data(), &in6->sin6_addr, 16);
    a.port = ntohs(in6->sin6_port);
  }
  return a;
}

std::string WireAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 4) {
    inet_ntop(AF_INET, addr.data(), buf, sizeof(buf));
    return absl::StrCat(buf, ":", port);
  }
  if (family == 6) {
    inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
    return absl::StrCat("[", buf, "]:", port);
  }
  return "unknown";
}

std::vector<uint8_t> ConnectionInfo::Encode() const {
  TLSD_CHECK(client_cert_subject.size() <= kMaxSubjectLen);
  TLSD_CHECK(sealed_state.size() <= kMaxSealedStateLen);
  TLSD_CHECK(path_reason.size() <= kMaxReasonLen);
  ByteWriter w;
  w.WriteU64(connection_id);
  w.WriteU8Prefixed(service);
  w.WriteU8Prefixed(backend);
  w.WriteU8Prefixed(sni);
  w.WriteU8Prefixed(alpn);
  w.WriteU16(tls_version);
  w.WriteU16(cipher_suite);
  w.WriteU8Prefixed(cipher_name);
  w.WriteU8(static_cast<uint8_t>(tx_path));
  w.WriteU8(static_cast<uint8_t>(rx_path));
  w.WriteU16Prefixed(path_reason);
  WriteAddress(w, peer);
  WriteAddress(w, local);
  w.WriteU8(has_client_cert ? 1 : 0);
  w.WriteU16Prefixed(client_cert_subject);
  w.WriteBytes(client_cert_sha256);
  w.WriteU8(resumed ? 1 : 0);
  w.WriteU32(handshake_us);
  w.WriteU16Prefixed(sealed_state);
  return w.Take();
}

absl::StatusOr<ConnectionInfo> ConnectionInfo::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  ConnectionInfo c;
  absl::string_view service, backend, sni, alpn, cipher_name, reason, subject, sealed;
  uint8_t tx, rx;
  absl::Span<const uint8_t> fingerprint;
  if (!r.ReadU64(&c.connection_id) || !r.ReadU8Prefixed(&service) || !r.ReadU8Prefixed(&backend) ||
      !r.ReadU8Prefixed(&sni) || !r.ReadU8Prefixed(&alpn) || !r.ReadU16(&c.tls_version) ||
      !r.ReadU16(&c.cipher_suite) || !r.ReadU8Prefixed(&cipher_name) || !r.ReadU8(&tx) ||
      !r.ReadU8(&rx) || !r.ReadU16Prefixed(&reason) || !ReadAddress(r, &c.peer) ||
      !ReadAddress(r, &c.local) || !ReadBool(r, &c.has_client_cert) ||
      !r.ReadU16Prefixed(&subject) || !r.ReadBytes(32, &fingerprint) || !ReadBool(r, &c.resumed) ||
      !r.ReadU32(&c.handshake_us) || !r.ReadU16Prefixed(&sealed) || !r.empty()) {
    return Malformed("CONNECTION");
  }
  if (!IsValidServiceName(service) || !IsValidServiceName(backend)) {
    return absl::InvalidArgumentError("CONNECTION: invalid service or backend name");
  }
  if (c.tls_version != 0x0303 && c.tls_version != 0x0304) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CONNECTION: unsupported TLS version 0x%04x", c.tls_version));
  }
  if (!IsKnownDataPath(tx) || !IsKnownDataPath(rx)) {
    return absl::InvalidArgumentError("CONNECTION: unknown data path");
  }
  for (const WireAddress* a : {&c.peer, &c.local}) {
    if (a->family != 0 && a->family != 4 && a->family != 6) {
      return absl::InvalidArgumentError("CONNECTION: unknown address family");
    }
    if (!IsCanonicalAddress(*a)) {
      return absl::InvalidArgumentError("CONNECTION: non-canonical address");
    }
  }
  if (subject.size() > kMaxSubjectLen || sealed.size() > kMaxSealedStateLen ||
      reason.size() > kMaxReasonLen) {
    return absl::InvalidArgumentError("CONNECTION: field too long");
  }
  if (!IsPrintable(sni) || !IsPrintable(alpn) || !IsPrintable(cipher_name) ||
      !IsPrintable(reason)) {
    return absl::InvalidArgumentError("CONNECTION: non-printable text field");
  }
  if (!c.has_client_cert) {
    if (!subject.empty()) {
      return absl::InvalidArgumentError("CONNECTION: client subject without client certificate");
    }
    for (uint8_t b : fingerprint) {
      if (b != 0) {
        return absl::InvalidArgumentError(
            "CONNECTION: client fingerprint without client certificate");
      }
    }
  }
  c.service = std::string(service);
  c.backend = std::string(backend);
  c.sni = std::string(sni);
  c.alpn = std::string(alpn);
  c.cipher_name = std::string(cipher_name);
  c.tx_path = static_cast<DataPath>(tx);
  c.rx_path = static_cast<DataPath>(rx);
  c.path_reason = std::string(reason);
  c.client_cert_subject = std::string(subject);
  std::copy(fingerprint.begin(), fingerprint.end(), c.client_cert_sha256.begin());
  c.sealed_state = std::string(sealed);
  return c;
}

std::vector<uint8_t> ControlRecord::Encode() const {
  TLSD_CHECK(payload.size() <= kMaxControlPayloadLen);
  TLSD_CHECK(sealed_state.size() <= kMaxSealedStateLen);
  ByteWriter w;
  w.WriteU8(record_type);
  w.WriteU16Prefixed(payload);
  w.WriteU16Prefixed(sealed_state);
  return w.Take();
}

absl::StatusOr<ControlRecord> ControlRecord::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  ControlRecord c;
  absl::string_view payload, sealed;
  if (!r.ReadU8(&c.record_type) || !r.ReadU16Prefixed(&payload) || !r.ReadU16Prefixed(&sealed) ||
      !r.empty()) {
    return Malformed("CONTROL_RECORD");
  }
  // Application data never goes to tlsd: the worker reads it itself.
  if (c.record_type < 20 || c.record_type > 22) {
    return absl::InvalidArgumentError(
        absl::StrCat("CONTROL_RECORD: record type ", c.record_type, " is not a control record"));
  }
  if (payload.empty() || payload.size() > kMaxControlPayloadLen) {
    return absl::InvalidArgumentError("CONTROL_RECORD: payload empty or longer than a record");
  }
  if (sealed.empty() || sealed.size() > kMaxSealedStateLen) {
    return absl::InvalidArgumentError("CONTROL_RECORD: sealed state missing or too long");
  }
  c.payload = std::string(payload);
  c.sealed_state = std::string(sealed);
  return c;
}

std::vector<uint8_t> ControlVerdict::Encode() const {
  TLSD_CHECK(sealed_state.size() <= kMaxSealedStateLen);
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(action));
  w.WriteU8(has_alert ? 1 : 0);
  w.WriteU8(alert);
  w.WriteU16Prefixed(sealed_state);
  w.WriteU16Prefixed(message.size() > kMaxErrorMessageLen
                         ? absl::string_view(message).substr(0, kMaxErrorMessageLen)
                         : absl::string_view(message));
  return w.Take();
}

absl::StatusOr<ControlVerdict> ControlVerdict::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  ControlVerdict v;
  uint8_t action;
  absl::string_view sealed, message;
  if (!r.ReadU8(&action) || !ReadBool(r, &v.has_alert) || !r.ReadU8(&v.alert) ||
      !r.ReadU16Prefixed(&sealed) || !r.ReadU16Prefixed(&message) || !r.empty()) {
    return Malformed("CONTROL_VERDICT");
  }
  if (action < 1 || action > 3) {
    return absl::InvalidArgumentError("CONTROL_VERDICT: unknown action");
  }
  if (!v.has_alert && v.alert != 0) {
    return absl::InvalidArgumentError("CONTROL_VERDICT: alert without has_alert");
  }
  if (sealed.size() > kMaxSealedStateLen || message.size() > kMaxErrorMessageLen ||
      !IsPrintable(message)) {
    return absl::InvalidArgumentError("CONTROL_VERDICT: field too long or not printable");
  }
  v.action = static_cast<ControlAction>(action);
  v.sealed_state = std::string(sealed);
  v.message = std::string(message);
  return v;
}

const char* AdminCommandName(AdminCommand c) {
  switch (c) {
    case AdminCommand::kStatus:
      return "status";
    case AdminCommand::kReload:
      return "reload";
    case AdminCommand::kCheckConfig:
      return "check-config";
    case AdminCommand::kCerts:
      return "certs";
  }
  return "unknown";
}

std::vector<uint8_t> AdminRequest::Encode() const {
  ByteWriter w;
  w.WriteU8(static_cast<uint8_t>(command));
  return w.Take();
}

absl::StatusOr<AdminRequest> AdminRequest::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  uint8_t command;
  if (!r.ReadU8(&command) || !r.empty()) return Malformed("ADMIN_REQUEST");
  if (command < static_cast<uint8_t>(AdminCommand::kStatus) ||
      command > static_cast<uint8_t>(AdminCommand::kCerts)) {
    return absl::InvalidArgumentError(absl::StrCat("ADMIN_REQUEST: unknown command ", command));
  }
  return AdminRequest{static_cast<AdminCommand>(command)};
}

std::vector<uint8_t> AdminReplyChunk::Encode() const {
  TLSD_CHECK(data.size() <= kMaxAdminChunk);
  ByteWriter w;
  w.WriteU8(last ? 1 : 0);
  w.WriteU16Prefixed(data);
  return w.Take();
}

absl::StatusOr<AdminReplyChunk> AdminReplyChunk::Decode(absl::Span<const uint8_t> in) {
  ByteReader r(in);
  uint8_t last;
  absl::string_view data;
  if (!r.ReadU8(&last) || !r.ReadU16Prefixed(&data) || !r.empty()) {
    return Malformed("ADMIN_REPLY");
  }
  if (last > 1) return absl::InvalidArgumentError("ADMIN_REPLY: bad last flag");
  if (data.size() > kMaxAdminChunk)
    return absl::InvalidArgumentError("ADMIN_REPLY: chunk too long");
  return AdminReplyChunk{last == 1, std::string(data)};
}

}  // namespace tlsd
