#include "tlsd/config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/errno_status.h"
#include "common/base/key_uri.h"
#include "common/base/status_macros.h"
#include "common/base/unique_fd.h"
#include "common/wire/messages.h"

namespace tlsd {
namespace {

// --- Limits. Each says why it is what it is. -------------------------------

// A config file is a few kilobytes. The cap only stops `--config /dev/zero`
// (or a log file passed by mistake) from eating memory.
constexpr size_t kMaxConfigBytes = 1 << 20;

// A handshake that has not finished in 5 minutes is an attack or a dead
// peer; longer timeouts only let slow clients pin handshake slots.
constexpr int64_t kMaxHandshakeTimeoutMs = 300000;

// RFC 8446 4.6.1 caps a ticket's lifetime at 7 days; keys rotated less often
// than that only keep old tickets decryptable for longer than any client may
// use them.
constexpr int64_t kMaxTicketRotateSeconds = int64_t{7} * 24 * 3600;

// One handshake thread per core is the design; more than 1024 is a typo
// (and each thread costs a stack and an epoll instance).
constexpr int64_t kMaxThreads = 1024;

// uid_t/gid_t (uint32_t) -1 means "no change" to chown(2)/setresuid(2) and
// is never a real id.
constexpr int64_t kMaxId = 0xfffffffe;

// Names of services and backends travel in wire frames (u8-length-prefixed)
// and in every log line; keep them short and free of quoting problems.
constexpr size_t kMaxNameLen = 64;

// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kMaxUnixPathLen = sizeof(sockaddr_un::sun_path) - 1;

// ALPN protocol names are u8-length-prefixed on the wire (RFC 7301 3.1).
constexpr size_t kMaxAlpnLen = 255;

// systemd's fdname_is_valid(): at most 255 printable ASCII characters, no
// ':' (the separator in $LISTEN_FDNAMES).
constexpr size_t kMaxFdNameLen = 255;

// Long strings are cut in messages so one bad value cannot flood a log line.
constexpr size_t kMaxQuotedLen = 80;

constexpr uint16_t kTls12 = 0x0303;
constexpr uint16_t kTls13 = 0x0304;

// --- Small text helpers. ----------------------------------------------------

std::string_view StdView(absl::string_view s) { return {s.data(), s.size()}; }
absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

// Quote renders a user-supplied string for a message: single quotes, C
// escapes for anything unprintable, cut at kMaxQuotedLen.
std::string Quote(absl::string_view s) {
  if (s.size() > kMaxQuotedLen) {
    return absl::StrCat("'", absl::CEscape(s.substr(0, kMaxQuotedLen)), "...'");
  }
  return absl::StrCat("'", absl::CEscape(s), "'");
}

// Describe names a TOML value's type and shows the value, for "got ..." in
// type errors.
std::string Describe(const toml::node& node) {
  std::ostringstream out;
  switch (node.type()) {
    case toml::node_type::string:
      return absl::StrCat("string ", Quote(AbslView(*node.value<std::string_view>())));
    case toml::node_type::integer:
      return absl::StrCat("integer ", *node.value<int64_t>());
    case toml::node_type::floating_point:
      return absl::StrCat("float ", *node.value<double>());
    case toml::node_type::boolean:
      return absl::StrCat("boolean ", *node.value<bool>() ? "true" : "false");
    case toml::node_type::date:
      out << "date " << *node.as_date();
      return out.str();
    case toml::node_type::time:
      out << "time " << *node.as_time();
      return out.str();
    case toml::node_type::date_time:
      out << "date-time " << *node.as_date_time();
      return out.str();
    case toml::node_type::array:
      return "array";
    case toml::node_type::table:
      return "table";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// EditDistance is the optimal-string-alignment distance (Levenshtein plus
// adjacent transpositions, so "listne" is 1 away from "listen").
size_t EditDistance(absl::string_view a, absl::string_view b) {
  const size_t n = a.size();
  const size_t m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) {
    d[i][0] = i;
  }
  for (size_t j = 0; j <= m; ++j) {
    d[0][j] = j;
  }
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// DidYouMean returns " (did you mean 'x'?)" for the closest candidate at
// edit distance <= 2 (the first one on ties), or "".
std::string DidYouMean(absl::string_view word, absl::Span<const std::string> candidates) {
  constexpr size_t kMaxSuggestDistance = 2;
  const std::string* best = nullptr;
  size_t best_distance = kMaxSuggestDistance + 1;
  for (const std::string& c : candidates) {
    const size_t distance = EditDistance(word, c);
    if (distance < best_distance) {
      best = &c;
      best_distance = distance;
    }
  }
  if (best == nullptr) {
    return "";
  }
  return absl::StrCat(" (did you mean ", Quote(*best), "?)");
}

// IsValidName: names of services and backends.
bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLen) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

// IsValidDnsName accepts a host name as SNI carries it (RFC 6066 3: no
// trailing dot) or a wildcard whose "*" is the whole leftmost label.
bool IsValidDnsName(absl::string_view name) {
  if (absl::StartsWith(name, "*.")) {
    name.remove_prefix(2);
  }
  if (name.empty() || name.size() > 253) {
    return false;
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') {
        return false;
      }
    }
  }
  return true;
}

// SniCovers: does SNI pattern `a` (as in a route) match every name that
// pattern `b` matches? Empty means "any SNI".
bool SniCovers(absl::string_view a, absl::string_view b) {
  if (a.empty()) {
    return true;
  }
  if (b.empty()) {
    return false;
  }
  if (a == b) {
    return true;
  }
  if (absl::StartsWith(a, "*.") && !absl::StartsWith(b, "*.")) {
    const size_t dot = b.find('.');
    return dot != absl::string_view::npos && b.substr(dot) == a.substr(1);
  }
  return false;
}

std::string VersionName(uint16_t v) { return v == kTls12 ? "1.2" : "1.3"; }

// --- Listen addresses. ------------------------------------------------------

// ParsedListen is a ListenAddress plus what the overlap check needs.
struct ParsedListen {
  ListenAddress address;
  enum class Family { kAny, kV4, kV6 } family = Family::kAny;
  std::array<uint8_t, 16> bytes{};  // network order; 4 used for kV4
  bool unspecified = false;         // 0.0.0.0 or ::
};

// Overlaps: would binding both fail (EADDRINUSE), or split one address's
// connections between two services? "*" is dual-stack, so it overlaps
// everything on the same port.
bool Overlaps(const ParsedListen& a, const ParsedListen& b) {
  using Family = ParsedListen::Family;
  if (a.address.port != b.address.port) {
    return false;
  }
  if (a.family == Family::kAny || b.family == Family::kAny) {
    return true;
  }
  if (a.family != b.family) {
    return false;
  }
  return a.unspecified || b.unspecified || a.bytes == b.bytes;
}

// --- Users and groups. ------------------------------------------------------

// LookupId resolves a user (kUser) or group name to its id: nullopt when
// there is no such entry, ErrnoToStatus(rc, what) when NSS itself failed.
// May block on network NSS modules; config loading happens once, before
// serving.
enum class IdKind { kUser, kGroup };
absl::StatusOr<std::optional<uint32_t>> LookupId(IdKind kind, const std::string& name,
                                                 absl::string_view what) {
  const long hint = sysconf(kind == IdKind::kUser ? _SC_GETPW_R_SIZE_MAX : _SC_GETGR_R_SIZE_MAX);
  size_t buf_len = hint > 0 ? static_cast<size_t>(hint) : 16384;
  // Large groups need large buffers; 16 MiB of members is past any sane
  // group and stops an endless ERANGE loop.
  constexpr size_t kMaxBufLen = 16 << 20;
  for (;;) {
    std::vector<char> buf(buf_len);
    int rc;
    bool found;
    uint32_t id = 0;
    if (kind == IdKind::kUser) {
      struct passwd pw;
      struct passwd* result = nullptr;
      rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result);
      found = result != nullptr;
      if (found) {
        id = result->pw_uid;
      }
    } else {
      struct group gr;
      struct group* result = nullptr;
      rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &result);
      found = result != nullptr;
      if (found) {
        id = result->gr_gid;
      }
    }
    if (rc == ERANGE && buf_len < kMaxBufLen) {
      buf_len *= 2;
      continue;
    }
    if (found) {
      return id;
    }
    // getpwnam_r(3): 0, ENOENT, ESRCH, EBADF or EPERM all may mean "not
    // found", depending on the NSS module.
    if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM) {
      return std::nullopt;
    }
    return tlsd::ErrnoToStatus(rc, what);  // not absl::ErrnoToStatus (ADL)
  }
}

// --- The parser. ------------------------------------------------------------

// Entry is one key of a TOML table, where it was written, and its value.
// Errors about the value are reported at the key's line: that is where the
// admin looks, and a multi-line array's elements carry their own lines.
struct Entry {
  absl::string_view key;
  const toml::node* value;
  int line;    // of the key (1-based)
  int column;  // of the key, to order keys written on one line
};

// LineOf is a node's 1-based line; parsed nodes always have one, the max()
// only keeps a message from ever saying "line 0".
int LineOf(const toml::node& node) {
  return std::max<int>(1, static_cast<int>(node.source().begin.line));
}

// EntriesInOrder lists a table's keys in the order they appear in the file;
// toml::table itself is sorted by name, which would make "the first error"
// depend on spelling rather than position.
std::vector<Entry> EntriesInOrder(const toml::table& table) {
  std::vector<Entry> entries;
  for (auto&& [key, value] : table) {
    entries.push_back(Entry{AbslView(key.str()), &value,
                            std::max<int>(1, static_cast<int>(key.source().begin.line)),
                            static_cast<int>(key.source().begin.column)});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return entries;
}

// FirstError keeps the error with the lowest line among those added (the
// first added on ties), so cross-table checks, which run in no particular
// file order, still report the problem nearest the top of the file.
class FirstError {
 public:
  void Add(int line, absl::Status status) {
    if (!status_.ok() && line >= line_) {
      return;
    }
    line_ = line;
    status_ = std::move(status);
  }
  const absl::Status& status() const { return status_; }

 private:
  int line_ = 0;
  absl::Status status_;
};

// Per-table facts the cross-table checks need and the public structs do not
// carry: the lines of individual keys.
struct ServiceLines {
  int name = 0;
  int backend = 0;
  int systemd_socket = 0;
  std::vector<ParsedListen> listen;
  std::vector<int> listen_lines;
  std::vector<int> route_backend_lines;
};
struct BackendLines {
  int name = 0;
};
struct ProfileLines {
  int name = 0;
};

class Parser {
 public:
  explicit Parser(absl::string_view source) : source_(source) {}

  absl::StatusOr<Config> Parse(absl::string_view text);

 private:
  // Handler reads one key's value.
  using Handler = std::function<absl::Status(const Entry&)>;
  struct KeyHandler {
    std::string key;
    Handler handler;
  };

  absl::Status Error(int line, absl::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ":", line, ": ", problem));
  }

  // ForEachKey visits `table` in file order, calling the handler registered
  // for each key. The first key with no handler is an "unknown key" error
  // naming `where` (e.g. "[[service]]") with a did-you-mean suggestion.
  absl::Status ForEachKey(const toml::table& table, absl::string_view where,
                          const std::vector<KeyHandler>& handlers) const;

  // Typed readers. Each returns "KEY must be ..., got ..." on a wrong type.
  absl::StatusOr<std::string> ReadString(const Entry& e) const;
  absl::StatusOr<std::string> ReadNonEmptyString(const Entry& e) const;
  absl::StatusOr<bool> ReadBool(const Entry& e) const;
  absl::StatusOr<int64_t> ReadInt(const Entry& e, int64_t min, int64_t max) const;
  absl::StatusOr<std::vector<std::pair<std::string, int>>> ReadStringArray(const Entry& e) const;
  absl::StatusOr<std::string> ReadAbsolutePath(const Entry& e) const;
  // A key: an absolute path or an OpenSSL store URI (common/base/key_uri.h).
  absl::StatusOr<std::string> ReadKeyLocation(const Entry& e) const;
  absl::StatusOr<std::string> ReadSocketPath(const Entry& e) const;
  absl::StatusOr<std::string> ReadName(const Entry& e) const;
  absl::StatusOr<uint16_t> ReadVersion(const Entry& e) const;
  template <typename T>
  absl::StatusOr<T> ReadEnum(const Entry& e,
                             std::initializer_list<std::pair<absl::string_view, T>> values) const;
  absl::StatusOr<std::vector<const toml::table*>> ReadTableArray(const Entry& e,
                                                                 absl::string_view header) const;
  absl::StatusOr<std::vector<uint32_t>> ReadIds(const Entry& e, IdKind kind) const;
  // ReadId: one user or group id, by name (looked up) or number.
  absl::StatusOr<uint32_t> ReadId(const Entry& e, IdKind kind) const;
  // ReadGroup: one group, by name or number.
  absl::StatusOr<uint32_t> ReadGroup(const Entry& e) const;
  absl::StatusOr<ParsedListen> ParseListen(absl::string_view text, int line) const;

  absl::Status ParseGlobal(const Entry& e, GlobalConfig& out) const;
  absl::Status ParseService(const toml::table& table, ServiceConfig& out,
                            ServiceLines& lines) const;
  absl::Status ParseCertificate(const toml::table& table, CertificateConfig& out) const;
  absl::Status ParseRoute(const toml::table& table, RouteConfig& out, int& backend_line) const;
  absl::Status ParseBackend(const toml::table& table, BackendConfig& out,
                            BackendLines& lines) const;
  absl::Status ParseClientProfile(const toml::table& table, ClientProfileConfig& out,
                                  ProfileLines& lines) const;
  absl::StatusOr<DestinationPattern> ParseDestination(absl::string_view text, int line) const;
  absl::Status CheckRoutes(const ServiceConfig& service) const;
  absl::Status CrossCheck(const Config& config, const std::vector<ServiceLines>& service_lines,
                          const std::vector<BackendLines>& backend_lines) const;

  std::string source_;
};

absl::Status Parser::ForEachKey(const toml::table& table, absl::string_view where,
                                const std::vector<KeyHandler>& handlers) const {
  for (const Entry& e : EntriesInOrder(table)) {
    auto it = std::find_if(handlers.begin(), handlers.end(),
                           [&](const KeyHandler& h) { return h.key == e.key; });
    if (it == handlers.end()) {
      std::vector<std::string> known;
      for (const KeyHandler& h : handlers) {
        known.push_back(h.key);
      }
      return Error(e.line, absl::StrCat("unknown key ", Quote(e.key), " in ", where,
                                        DidYouMean(e.key, known)));
    }
    TLSD_RETURN_IF_ERROR(it->handler(e));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Parser::ReadString(const Entry& e) const {
  const auto* s = e.value->as_string();
  if (s == nullptr) {
    return Error(e.line, absl::StrCat(e.key, " must be a string, got ", Describe(*e.value)));
  }
  // TOML allows "\u0000"; every string here ends up in a C API that would
  // silently cut it there.
  if (s->get().find('\0') != std::string::npos) {
    return Error(e.line,
                 absl::StrCat(e.key, " ", Quote(s->get()), " must not contain a NUL character"));
  }
  return s->get();
}

absl::StatusOr<std::string> Parser::ReadNonEmptyString(const Entry& e) const {
  TLSD_ASSIGN_OR_RETURN(std::string s, ReadString(e));
  if (s.empty()) {
    return Error(e.line, absl::StrCat(e.key, " must not be empty"));
  }
  return s;
}

absl::StatusOr<bool> Parser::ReadBool(const Entry& e) const {
  const auto* b = e.value->as_boolean();
  if (b == nullptr) {
    return Error(e.line, absl::StrCat(e.key, " must be true or false, got ", Describe(*e.value)));
  }
  return b->get();
}

absl::StatusOr<int64_t> Parser::ReadInt(const Entry& e, int64_t min, int64_t max) const {
  const auto* i = e.value->as_integer();
  if (i == nullptr) {
    return Error(e.line, absl::StrCat(e.key, " must be an integer, got ", Describe(*e.value)));
  }
  const int64_t v = i->get();
  if (v >= min && v <= max) {
    return v;
  }
  constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
  std::string problem;
  if (min == 0 && v < 0) {
    problem = "must not be negative";
  } else if (max == kU32Max && v < min) {
    problem = absl::StrCat("must be at least ", min);
  } else if (min == 0 && v > max) {
    problem = absl::StrCat("must be at most ", max);
  } else {
    problem = absl::StrCat("must be between ", min, " and ", max);
  }
  return Error(e.line, absl::StrCat(e.key, " ", problem, ", got ", v));
}

absl::StatusOr<std::vector<std::pair<std::string, int>>> Parser::ReadStringArray(
    const Entry& e) const {
  const auto* a = e.value->as_array();
  if (a == nullptr) {
    return Error(e.line,
                 absl::StrCat(e.key, " must be an array of strings, got ", Describe(*e.value)));
  }
  std::vector<std::pair<std::string, int>> out;
  for (const toml::node& element : *a) {
    const Entry item{e.key, &element, LineOf(element), 0};
    if (!element.is_string()) {
      return Error(item.line,
                   absl::StrCat(e.key, " entries must be strings, got ", Describe(element)));
    }
    TLSD_ASSIGN_OR_RETURN(std::string s, ReadString(item));
    out.emplace_back(std::move(s), item.line);
  }
  return out;
}

absl::StatusOr<std::string> Parser::ReadAbsolutePath(const Entry& e) const {
  TLSD_ASSIGN_OR_RETURN(std::string path, ReadString(e));
  // Relative paths would depend on the daemon's working directory, which
  // systemd sets to "/" and a shell to wherever the admin happened to be.
  if (!absl::StartsWith(path, "/")) {
    return Error(e.line, absl::StrCat(e.key, " must be an absolute path, got ", Quote(path)));
  }
  return path;
}

absl::StatusOr<std::string> Parser::ReadKeyLocation(const Entry& e) const {
  TLSD_ASSIGN_OR_RETURN(std::string key, ReadString(e));
  if (IsKeyUri(key)) return key;
  if (!absl::StartsWith(key, "/")) {
    return Error(e.line, absl::StrCat(e.key,
                                      " must be an absolute path or an OpenSSL store URI "
                                      "(file:..., pkcs11:...), got ",
                                      Quote(key)));
  }
  return key;
}

absl::StatusOr<std::string> Parser::ReadSocketPath(const Entry& e) const {
  TLSD_ASSIGN_OR_RETURN(std::string path, ReadAbsolutePath(e));
  if (path.size() > kMaxUnixPathLen) {
    return Error(e.line,
                 absl::StrCat(e.key, " ", Quote(path), " is ", path.size(),
                              " bytes long: unix socket paths are limited to ", kMaxUnixPathLen));
  }
  return path;
}

absl::StatusOr<std::string> Parser::ReadName(const Entry& e) const {
  TLSD_ASSIGN_OR_RETURN(std::string name, ReadString(e));
  if (!IsValidName(name)) {
    return Error(e.line, absl::StrCat(e.key, " ", Quote(name), " must be 1 to ", kMaxNameLen,
                                      " characters from A-Z a-z 0-9 . _ -"));
  }
  return name;
}

absl::StatusOr<uint16_t> Parser::ReadVersion(const Entry& e) const {
  if (e.value->is_floating_point()) {
    // `min_version = 1.2` is valid TOML (a float) and the likeliest typo.
    return Error(e.line, absl::StrCat(e.key,
                                      " must be a quoted string (\"1.2\" or "
                                      "\"1.3\"), got ",
                                      Describe(*e.value)));
  }
  TLSD_ASSIGN_OR_RETURN(std::string v, ReadString(e));
  if (v == "1.2") {
    return kTls12;
  }
  if (v == "1.3") {
    return kTls13;
  }
  return Error(e.line, absl::StrCat(e.key, " ", Quote(v),
                                    " is not supported: tlsd supports only "
                                    "TLS \"1.2\" and \"1.3\""));
}

template <typename T>
absl::StatusOr<T> Parser::ReadEnum(
    const Entry& e, std::initializer_list<std::pair<absl::string_view, T>> values) const {
  TLSD_ASSIGN_OR_RETURN(std::string v, ReadString(e));
  std::vector<absl::string_view> names;
  for (const auto& [name, value] : values) {
    if (v == name) {
      return value;
    }
    names.push_back(name);
  }
  return Error(e.line,
               absl::StrCat(e.key, " ", Quote(v), " is not one of: ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<std::vector<const toml::table*>> Parser::ReadTableArray(
    const Entry& e, absl::string_view header) const {
  const auto* a = e.value->as_array();
  std::string got;
  if (a == nullptr) {
    got = Describe(*e.value);
  } else {
    std::vector<const toml::table*> tables;
    for (const toml::node& element : *a) {
      if (!element.is_table()) {
        got = absl::StrCat("array containing ", Describe(element));
        break;
      }
      tables.push_back(element.as_table());
    }
    if (got.empty()) {
      return tables;
    }
  }
  return Error(e.line,
               absl::StrCat(e.key, " must be an array of tables (", header, "), got ", got));
}

absl::StatusOr<std::vector<uint32_t>> Parser::ReadIds(const Entry& e, IdKind kind) const {
  const absl::string_view what = kind == IdKind::kUser ? "user" : "group";
  const auto* a = e.value->as_array();
  if (a == nullptr) {
    return Error(e.line, absl::StrCat(e.key, " must be an array of ", what,
                                      " names or numbers, got ", Describe(*e.value)));
  }
  std::vector<uint32_t> ids;
  for (const toml::node& element : *a) {
    const int line = LineOf(element);
    if (!element.is_integer() && !element.is_string()) {
      return Error(line, absl::StrCat(e.key, " entries must be ", what, " names or numbers, got ",
                                      Describe(element)));
    }
    TLSD_ASSIGN_OR_RETURN(uint32_t id, ReadId(Entry{e.key, &element, line, 0}, kind));
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<uint32_t> Parser::ReadId(const Entry& e, IdKind kind) const {
  const absl::string_view what = kind == IdKind::kUser ? "user" : "group";
  const int line = e.line;
  if (const auto* i = e.value->as_integer()) {
    if (i->get() < 0 || i->get() > kMaxId) {
      return Error(line, absl::StrCat(e.key, " entry ", i->get(), " is not a valid ", what,
                                      " id (0 to ", kMaxId, ")"));
    }
    return static_cast<uint32_t>(i->get());
  }
  TLSD_ASSIGN_OR_RETURN(std::string name, ReadString(e));
  // An NSS failure keeps its errno's status code (e.g. kUnavailable for
  // EAGAIN), so a caller can tell "try again" from "fix the config".
  TLSD_ASSIGN_OR_RETURN(std::optional<uint32_t> id,
                        LookupId(kind, name,
                                 absl::StrCat(source_, ":", line, ": ", e.key, " entry ",
                                              Quote(name), ": cannot look up ", what)));
  if (!id.has_value()) {
    uint32_t unused;
    // "1000" in quotes is a name, not a number; say so rather than leave
    // the admin staring at a user that obviously exists.
    const bool numeric = absl::SimpleAtoi(name, &unused);
    return Error(line, absl::StrCat(e.key, " entry ", Quote(name), ": no such ", what,
                                    numeric ? " (write numeric ids without "
                                              "quotes)"
                                            : ""));
  }
  return *id;
}

absl::StatusOr<uint32_t> Parser::ReadGroup(const Entry& e) const {
  if (!e.value->is_integer() && !e.value->is_string()) {
    return Error(e.line,
                 absl::StrCat(e.key, " must be a group name or number, got ", Describe(*e.value)));
  }
  return ReadId(e, IdKind::kGroup);
}

absl::StatusOr<ParsedListen> Parser::ParseListen(absl::string_view text, int line) const {
  ParsedListen out;
  out.address.text = std::string(text);
  const std::string shown = Quote(text);
  absl::string_view host;
  absl::string_view port;
  bool bracketed = false;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return Error(line, absl::StrCat("listen address ", shown, " has no closing ']'"));
    }
    host = text.substr(1, close - 1);
    absl::string_view rest = text.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) {
      return Error(line,
                   absl::StrCat("listen address ", shown, " has no port (expected HOST:PORT)"));
    }
    port = rest;
    bracketed = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return Error(line,
                   absl::StrCat("listen address ", shown, " has no port (expected HOST:PORT)"));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }

  uint32_t port_number = 0;
  const bool all_digits =
      !port.empty() && std::all_of(port.begin(), port.end(), absl::ascii_isdigit);
  if (!all_digits || !absl::SimpleAtoi(port, &port_number) || port_number == 0 ||
      port_number > 65535) {
    if (port.empty()) {
      return Error(line,
                   absl::StrCat("listen address ", shown, " has no port (expected HOST:PORT)"));
    }
    return Error(line, absl::StrCat("listen address ", shown,
                                    ": port must be from 1 to 65535, got ", Quote(port)));
  }
  out.address.port = static_cast<uint16_t>(port_number);

  const std::string host_str(host);
  if (!bracketed && host == "*") {
    out.family = ParsedListen::Family::kAny;
    out.address.host = "*";
    return out;
  }
  if (bracketed && inet_pton(AF_INET6, host_str.c_str(), out.bytes.data()) == 1) {
    out.family = ParsedListen::Family::kV6;
    out.unspecified =
        std::all_of(out.bytes.begin(), out.bytes.end(), [](uint8_t b) { return b == 0; });
    out.address.host = host_str;
    return out;
  }
  if (!bracketed && inet_pton(AF_INET, host_str.c_str(), out.bytes.data()) == 1) {
    out.family = ParsedListen::Family::kV4;
    out.unspecified =
        out.bytes[0] == 0 && out.bytes[1] == 0 && out.bytes[2] == 0 && out.bytes[3] == 0;
    out.address.host = host_str;
    return out;
  }
  if (bracketed) {
    return Error(line, absl::StrCat("listen address ", shown, ": ", Quote(host),
                                    " in brackets is not an IPv6 address"));
  }
  // Host names are refused on purpose: what they resolve to can change
  // between config check and bind, and may be several addresses.
  return Error(line, absl::StrCat("listen address ", shown, ": host ", Quote(host),
                                  " is not an IPv4 address, a bracketed IPv6 "
                                  "address or '*'"));
}

absl::Status Parser::ParseGlobal(const Entry& e, GlobalConfig& out) const {
  const toml::table* table = e.value->as_table();
  if (table == nullptr) {
    return Error(e.line,
                 absl::StrCat("global must be a table ([global]), got ", Describe(*e.value)));
  }
  return ForEachKey(
      *table, "[global]",
      {
          {"threads",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 0, kMaxThreads));
             out.threads = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"control_socket",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.control_socket, ReadSocketPath(k));
             return absl::OkStatus();
           }},
          {"state_dir",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.state_dir, ReadAbsolutePath(k));
             return absl::OkStatus();
           }},
          {"user",
           [&](const Entry& k) -> absl::Status {
             // Resolved when privileges are dropped, not here: the user may
             // be created by systemd-sysusers after the config was checked.
             TLSD_ASSIGN_OR_RETURN(out.user, ReadNonEmptyString(k));
             return absl::OkStatus();
           }},
          {"admin_group",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.admin_gid, ReadGroup(k));
             return absl::OkStatus();
           }},
          {"metrics_listen",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(std::string text, ReadNonEmptyString(k));
             out.metrics_text = text;
             if (text.starts_with("/")) {
               TLSD_ASSIGN_OR_RETURN(out.metrics_socket_path, ReadSocketPath(k));
               return absl::OkStatus();
             }
             TLSD_ASSIGN_OR_RETURN(ParsedListen parsed, ParseListen(text, k.line));
             // Metrics say what is served and how much: no
             // business outside the machine. A reverse proxy
             // or node exporter can forward them on purpose.
             const std::array<uint8_t, 16> v6_loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                       0, 0, 0, 0, 0, 0, 0, 1};
             const bool loopback =
                 (parsed.family == ParsedListen::Family::kV4 && parsed.bytes[0] == 127) ||
                 (parsed.family == ParsedListen::Family::kV6 && parsed.bytes == v6_loopback);
             if (!loopback) {
               return Error(k.line, absl::StrCat("metrics_listen ", Quote(text),
                                                 " must be a loopback address (127.0.0.1:PORT, "
                                                 "[::1]:PORT) or an absolute unix socket path"));
             }
             out.metrics_address = parsed.address;
             return absl::OkStatus();
           }},
          {"log_level",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.log_level, ReadEnum<std::string>(k, {{"error", "error"},
                                                                            {"warning", "warning"},
                                                                            {"notice", "notice"},
                                                                            {"info", "info"},
                                                                            {"debug", "debug"}}));
             return absl::OkStatus();
           }},
      });
}

absl::Status Parser::ParseCertificate(const toml::table& table, CertificateConfig& out) const {
  out.line = LineOf(table);
  bool has_cert = false;
  bool has_key = false;
  TLSD_RETURN_IF_ERROR(
      ForEachKey(table, "[[service.certificate]]",
                 {
                     {"cert",
                      [&](const Entry& k) -> absl::Status {
                        TLSD_ASSIGN_OR_RETURN(out.cert_path, ReadAbsolutePath(k));
                        has_cert = true;
                        return absl::OkStatus();
                      }},
                     {"key",
                      [&](const Entry& k) -> absl::Status {
                        TLSD_ASSIGN_OR_RETURN(out.key_path, ReadKeyLocation(k));
                        has_key = true;
                        return absl::OkStatus();
                      }},
                     {"ocsp_response",
                      [&](const Entry& k) -> absl::Status {
                        TLSD_ASSIGN_OR_RETURN(out.ocsp_response_path, ReadAbsolutePath(k));
                        return absl::OkStatus();
                      }},
                     {"server_names",
                      [&](const Entry& k) -> absl::Status {
                        TLSD_ASSIGN_OR_RETURN(auto names, ReadStringArray(k));
                        for (auto& [name, line] : names) {
                          if (!IsValidDnsName(name)) {
                            return Error(line, absl::StrCat("server_names entry ", Quote(name),
                                                            " is not a DNS name or "
                                                            "'*.' wildcard"));
                          }
                          // SNI is case-insensitive (RFC 6066 3); store one spelling.
                          out.server_names.push_back(absl::AsciiStrToLower(name));
                        }
                        return absl::OkStatus();
                      }},
                 }));
  if (!has_cert) {
    return Error(out.line, "[[service.certificate]] is missing required key 'cert'");
  }
  if (!has_key) {
    return Error(out.line, "[[service.certificate]] is missing required key 'key'");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseRoute(const toml::table& table, RouteConfig& out,
                                int& backend_line) const {
  out.line = LineOf(table);
  TLSD_RETURN_IF_ERROR(
      ForEachKey(table, "[[service.route]]",
                 {
                     {"sni",
                      [&](const Entry& k) -> absl::Status {
                        TLSD_ASSIGN_OR_RETURN(std::string sni, ReadNonEmptyString(k));
                        if (!IsValidDnsName(sni)) {
                          return Error(k.line, absl::StrCat("route sni ", Quote(sni),
                                                            " is not a DNS name or '*.' "
                                                            "wildcard"));
                        }
                        out.sni = absl::AsciiStrToLower(sni);
                        return absl::OkStatus();
                      }},
                     {"alpn",
                      [&](const Entry& k) -> absl::Status {
                        TLSD_ASSIGN_OR_RETURN(out.alpn, ReadNonEmptyString(k));
                        return absl::OkStatus();
                      }},
                     {"backend",
                      [&](const Entry& k) -> absl::Status {
                        TLSD_ASSIGN_OR_RETURN(out.backend, ReadName(k));
                        backend_line = k.line;
                        return absl::OkStatus();
                      }},
                 }));
  if (backend_line == 0) {
    return Error(out.line, "[[service.route]] is missing required key 'backend'");
  }
  if (out.sni.empty() && out.alpn.empty()) {
    return Error(out.line,
                 "[[service.route]] needs sni, alpn or both: a route matching "
                 "every connection is the service's backend key");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseService(const toml::table& table, ServiceConfig& out,
                                  ServiceLines& lines) const {
  out.line = LineOf(table);
  int min_version_line = 0;
  int max_version_line = 0;
  int client_auth_line = 0;
  int client_ca_line = 0;
  int client_crl_line = 0;
  int ticket_key_file_line = 0;
  int unknown_sni_line = 0;
  std::vector<int> alpn_lines;

  TLSD_RETURN_IF_ERROR(ForEachKey(
      table, "[[service]]",
      {
          {"name",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.name, ReadName(k));
             lines.name = k.line;
             return absl::OkStatus();
           }},
          {"listen",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(auto texts, ReadStringArray(k));
             for (const auto& [text, line] : texts) {
               TLSD_ASSIGN_OR_RETURN(ParsedListen parsed, ParseListen(text, line));
               out.listen.push_back(parsed.address);
               lines.listen.push_back(std::move(parsed));
               lines.listen_lines.push_back(line);
             }
             return absl::OkStatus();
           }},
          {"systemd_socket",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(std::string fdname, ReadNonEmptyString(k));
             const bool valid = fdname.size() <= kMaxFdNameLen &&
                                std::all_of(fdname.begin(), fdname.end(), [](char c) {
                                  return c >= ' ' && c <= '~' && c != ':';
                                });
             if (!valid) {
               return Error(k.line, absl::StrCat("systemd_socket ", Quote(fdname),
                                                 " is not a valid FileDescriptorName= "
                                                 "(at most 255 printable ASCII "
                                                 "characters, no ':')"));
             }
             out.systemd_socket = std::move(fdname);
             lines.systemd_socket = k.line;
             return absl::OkStatus();
           }},
          {"certificate",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(auto tables, ReadTableArray(k, "[[service.certificate]]"));
             for (const toml::table* t : tables) {
               CertificateConfig cert;
               TLSD_RETURN_IF_ERROR(ParseCertificate(*t, cert));
               out.certificates.push_back(std::move(cert));
             }
             return absl::OkStatus();
           }},
          {"min_version",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.min_version, ReadVersion(k));
             min_version_line = k.line;
             return absl::OkStatus();
           }},
          {"max_version",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.max_version, ReadVersion(k));
             max_version_line = k.line;
             return absl::OkStatus();
           }},
          {"tls12_ciphers",
           [&](const Entry& k) -> absl::Status {
             // Checked against OpenSSL by the handshake code, which owns the
             // SSL_CTX; here only that something was written.
             TLSD_ASSIGN_OR_RETURN(out.tls12_ciphers, ReadNonEmptyString(k));
             return absl::OkStatus();
           }},
          {"tls13_ciphersuites",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.tls13_ciphersuites, ReadNonEmptyString(k));
             return absl::OkStatus();
           }},
          {"alpn",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(auto protocols, ReadStringArray(k));
             for (auto& [protocol, line] : protocols) {
               if (protocol.empty() || protocol.size() > kMaxAlpnLen) {
                 return Error(
                     line, absl::StrCat("alpn entry ", Quote(protocol), " must be 1 to 255 bytes"));
               }
               if (std::find(out.alpn.begin(), out.alpn.end(), protocol) != out.alpn.end()) {
                 return Error(line,
                              absl::StrCat("alpn entry ", Quote(protocol), " is listed twice"));
               }
               out.alpn.push_back(std::move(protocol));
             }
             return absl::OkStatus();
           }},
          {"client_auth",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(
                 out.client_auth,
                 ReadEnum<ClientAuthMode>(k, {{"none", ClientAuthMode::kNone},
                                              {"optional", ClientAuthMode::kOptional},
                                              {"require", ClientAuthMode::kRequire}}));
             client_auth_line = k.line;
             return absl::OkStatus();
           }},
          {"client_ca",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.client_ca_path, ReadAbsolutePath(k));
             client_ca_line = k.line;
             return absl::OkStatus();
           }},
          {"client_crl",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.client_crl_path, ReadAbsolutePath(k));
             client_crl_line = k.line;
             return absl::OkStatus();
           }},
          {"session_tickets",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.session_tickets, ReadBool(k));
             return absl::OkStatus();
           }},
          {"ticket_key_file",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.ticket_key_file, ReadAbsolutePath(k));
             ticket_key_file_line = k.line;
             return absl::OkStatus();
           }},
          {"ticket_rotate_seconds",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 1, kMaxTicketRotateSeconds));
             out.ticket_rotate_seconds = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"session_cache",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.session_cache, ReadBool(k));
             return absl::OkStatus();
           }},
          {"handshake_timeout_ms",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 1, kMaxHandshakeTimeoutMs));
             out.handshake_timeout_ms = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"max_handshakes",
           [&](const Entry& k) -> absl::Status {
             // 0 would refuse every connection: use a stopped service, not
             // a config that looks alive.
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 1, std::numeric_limits<uint32_t>::max()));
             out.max_handshakes = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"max_handshakes_per_source",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 0, std::numeric_limits<uint32_t>::max()));
             out.max_handshakes_per_source = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"handshakes_per_second",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 0, 10000000));
             out.handshakes_per_second = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"handshakes_per_second_per_source",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 0, 1000000));
             out.handshakes_per_second_per_source = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"ktls",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.ktls,
                                   ReadEnum<KtlsPolicy>(k, {{"require", KtlsPolicy::kRequire},
                                                            {"prefer", KtlsPolicy::kPrefer}}));
             return absl::OkStatus();
           }},
          {"offload",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(
                 out.offload, ReadEnum<OffloadPolicy>(k, {{"off", OffloadPolicy::kOff},
                                                          {"auto", OffloadPolicy::kAuto},
                                                          {"require", OffloadPolicy::kRequire}}));
             return absl::OkStatus();
           }},
          {"rx_expect_no_pad",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.rx_expect_no_pad, ReadBool(k));
             return absl::OkStatus();
           }},
          {"tx_zerocopy_ro",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.tx_zerocopy_ro, ReadBool(k));
             return absl::OkStatus();
           }},
          {"proxy_protocol",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.proxy_protocol, ReadBool(k));
             return absl::OkStatus();
           }},
          {"backend",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.backend, ReadName(k));
             lines.backend = k.line;
             return absl::OkStatus();
           }},
          {"route",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(auto tables, ReadTableArray(k, "[[service.route]]"));
             for (const toml::table* t : tables) {
               RouteConfig route;
               int backend_line = 0;
               TLSD_RETURN_IF_ERROR(ParseRoute(*t, route, backend_line));
               out.routes.push_back(std::move(route));
               lines.route_backend_lines.push_back(backend_line);
             }
             return absl::OkStatus();
           }},
          {"unknown_sni",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(
                 out.unknown_sni,
                 ReadEnum<UnknownSniPolicy>(k, {{"default", UnknownSniPolicy::kDefault},
                                                {"reject", UnknownSniPolicy::kReject}}));
             unknown_sni_line = k.line;
             return absl::OkStatus();
           }},
      }));

  // Checks that involve several keys of this table. Missing keys are
  // reported at the [[service]] header.
  if (lines.name == 0) {
    return Error(out.line, "[[service]] is missing required key 'name'");
  }
  const std::string svc = absl::StrCat("service ", Quote(out.name));
  if (out.listen.empty() && out.systemd_socket.empty()) {
    return Error(out.line, absl::StrCat(svc,
                                        " has neither listen nor systemd_socket: it "
                                        "would accept no connections"));
  }
  if (out.certificates.empty()) {
    return Error(out.line, absl::StrCat(svc,
                                        " has no [[service.certificate]]: it "
                                        "needs at least one cert and key"));
  }
  if (out.min_version > out.max_version) {
    return Error(
        std::max(min_version_line, max_version_line),
        absl::StrCat("min_version '", VersionName(out.min_version),
                     "' is greater than max_version '", VersionName(out.max_version), "'"));
  }
  if (out.client_auth != ClientAuthMode::kNone && out.client_ca_path.empty()) {
    return Error(client_auth_line,
                 absl::StrCat("client_auth '",
                              out.client_auth == ClientAuthMode::kRequire ? "require" : "optional",
                              "' needs client_ca, the CA bundle that verifies "
                              "client certificates"));
  }
  // Both below are settings that would be silently ignored, and an admin who
  // wrote them believes something (client certificates are checked; tickets
  // are shared across instances) that would not be true.
  if (out.client_auth == ClientAuthMode::kNone && !out.client_ca_path.empty()) {
    return Error(client_ca_line,
                 "client_ca is set but client_auth is 'none': client "
                 "certificates would never be requested");
  }
  if (out.client_auth == ClientAuthMode::kNone && !out.client_crl_path.empty()) {
    return Error(client_crl_line,
                 "client_crl is set but client_auth is 'none': no client certificate would "
                 "be checked against it");
  }
  if (!out.session_tickets && !out.ticket_key_file.empty()) {
    return Error(ticket_key_file_line, "ticket_key_file is set but session_tickets is false");
  }
  if (out.backend.empty() && out.routes.empty()) {
    return Error(out.line, absl::StrCat(svc,
                                        " has no backend and no [[service.route]]: "
                                        "its connections would have nowhere to go"));
  }
  if (out.unknown_sni == UnknownSniPolicy::kReject &&
      std::all_of(out.certificates.begin(), out.certificates.end(),
                  [](const CertificateConfig& c) { return c.server_names.empty(); })) {
    return Error(unknown_sni_line,
                 "unknown_sni 'reject' needs server_names on at least one "
                 "certificate: otherwise every client sending SNI is refused");
  }
  return CheckRoutes(out);
}

// CheckRoutes refuses routes that can never match: an ALPN the service does
// not offer, or a route fully covered by an earlier one (routes are tried in
// file order).
absl::Status Parser::CheckRoutes(const ServiceConfig& service) const {
  for (size_t j = 0; j < service.routes.size(); ++j) {
    const RouteConfig& route = service.routes[j];
    if (!route.alpn.empty() &&
        std::find(service.alpn.begin(), service.alpn.end(), route.alpn) == service.alpn.end()) {
      return Error(route.line, absl::StrCat("route alpn ", Quote(route.alpn),
                                            " is not in the service's alpn list, so the "
                                            "route could never match"));
    }
    for (size_t i = 0; i < j; ++i) {
      const RouteConfig& earlier = service.routes[i];
      const bool alpn_covered = earlier.alpn.empty() || earlier.alpn == route.alpn;
      if (alpn_covered && SniCovers(earlier.sni, route.sni)) {
        return Error(
            route.line,
            absl::StrCat("route (sni ", route.sni.empty() ? "any" : Quote(route.sni), ", alpn ",
                         route.alpn.empty() ? "any" : Quote(route.alpn),
                         ") can never match: the route at line ", earlier.line, " matches first"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseBackend(const toml::table& table, BackendConfig& out,
                                  BackendLines& lines) const {
  out.line = LineOf(table);
  int mode_line = 0;
  int socket_line = 0;
  TLSD_RETURN_IF_ERROR(ForEachKey(
      table, "[[backend]]",
      {
          {"name",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.name, ReadName(k));
             lines.name = k.line;
             return absl::OkStatus();
           }},
          {"mode",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(
                 out.mode, ReadEnum<BackendMode>(
                               k, {{"push", BackendMode::kPush}, {"pull", BackendMode::kPull}}));
             mode_line = k.line;
             return absl::OkStatus();
           }},
          {"socket",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.socket_path, ReadSocketPath(k));
             socket_line = k.line;
             return absl::OkStatus();
           }},
          {"allow_uids",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.allow_uids, ReadIds(k, IdKind::kUser));
             return absl::OkStatus();
           }},
          {"allow_gids",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.allow_gids, ReadIds(k, IdKind::kGroup));
             return absl::OkStatus();
           }},
          {"queue_limit",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 0, std::numeric_limits<uint32_t>::max()));
             out.queue_limit = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"queue_timeout_ms",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 0, std::numeric_limits<uint32_t>::max()));
             out.queue_timeout_ms = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
      }));
  if (lines.name == 0) {
    return Error(out.line, "[[backend]] is missing required key 'name'");
  }
  // No default mode: push and pull differ in who connects to whom and in
  // what allow_uids means, so the admin has to say which one is meant.
  if (mode_line == 0) {
    return Error(out.line, absl::StrCat("backend ", Quote(out.name),
                                        " is missing required key 'mode' "
                                        "(\"push\" or \"pull\")"));
  }
  if (out.mode == BackendMode::kPush && out.socket_path.empty()) {
    return Error(out.line, absl::StrCat("push backend ", Quote(out.name),
                                        " needs socket, the path of its "
                                        "SOCK_SEQPACKET listening socket"));
  }
  if (out.mode == BackendMode::kPull && !out.socket_path.empty()) {
    return Error(socket_line, absl::StrCat("pull backend ", Quote(out.name),
                                           " must not have a socket: pull "
                                           "workers connect to tlsd"));
  }
  if (out.mode == BackendMode::kPull && out.allow_uids.empty() && out.allow_gids.empty()) {
    return Error(out.line, absl::StrCat("pull backend ", Quote(out.name),
                                        " has no allow_uids or allow_gids: that would "
                                        "let any local user subscribe and receive its "
                                        "connections"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DestinationPattern> Parser::ParseDestination(absl::string_view text,
                                                            int line) const {
  DestinationPattern d;
  d.text = std::string(text);
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return Error(line, absl::StrCat("destination ", Quote(text),
                                    " is not HOST:PORT (HOST a name, *.name, *, an IPv4 "
                                    "address or [IPv6]; PORT a number or *)"));
  }
  absl::string_view host = text.substr(0, colon);
  absl::string_view port = text.substr(colon + 1);
  if (port == "*") {
    d.any_port = true;
  } else {
    int p = 0;
    if (!absl::SimpleAtoi(port, &p) || p < 1 || p > 65535 || port.front() == '+') {
      return Error(line, absl::StrCat("destination ", Quote(text), ": port ", Quote(port),
                                      " is not 1..65535 or *"));
    }
    d.port = static_cast<uint16_t>(p);
  }
  if (host == "*") {
    d.any_host = true;
    return d;
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) {
      return Error(line, absl::StrCat("destination ", Quote(text), ": ", Quote(host),
                                      " is not an IPv6 address"));
    }
    d.host = std::string(host);
    return d;
  }
  if (absl::StartsWith(host, "*.")) {
    d.suffix = true;
    host.remove_prefix(2);
  }
  if (!IsValidHost(host) || host.find(':') != absl::string_view::npos) {
    return Error(line, absl::StrCat("destination ", Quote(text), ": ", Quote(host),
                                    " is not a DNS name, *.name, * or an address "
                                    "(IPv6 in brackets)"));
  }
  d.host = absl::AsciiStrToLower(host);
  return d;
}

absl::Status Parser::ParseClientProfile(const toml::table& table, ClientProfileConfig& out,
                                        ProfileLines& lines) const {
  out.line = LineOf(table);
  int min_version_line = 0;
  int max_version_line = 0;
  int cert_line = 0;
  int key_line = 0;
  bool has_destinations = false;
  TLSD_RETURN_IF_ERROR(ForEachKey(
      table, "[[client_profile]]",
      {
          {"name",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.name, ReadName(k));
             lines.name = k.line;
             return absl::OkStatus();
           }},
          {"allow_uids",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.allow_uids, ReadIds(k, IdKind::kUser));
             return absl::OkStatus();
           }},
          {"allow_gids",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.allow_gids, ReadIds(k, IdKind::kGroup));
             return absl::OkStatus();
           }},
          {"destinations",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(auto texts, ReadStringArray(k));
             if (texts.empty()) {
               return Error(k.line, "destinations is empty: the profile could reach nothing");
             }
             for (const auto& [text, line] : texts) {
               TLSD_ASSIGN_OR_RETURN(DestinationPattern d, ParseDestination(text, line));
               out.destinations.push_back(std::move(d));
             }
             has_destinations = true;
             return absl::OkStatus();
           }},
          {"ca_file",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.ca_file, ReadAbsolutePath(k));
             return absl::OkStatus();
           }},
          {"cert",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.cert_path, ReadAbsolutePath(k));
             cert_line = k.line;
             return absl::OkStatus();
           }},
          {"key",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.key_path, ReadKeyLocation(k));
             key_line = k.line;
             return absl::OkStatus();
           }},
          {"min_version",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.min_version, ReadVersion(k));
             min_version_line = k.line;
             return absl::OkStatus();
           }},
          {"max_version",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.max_version, ReadVersion(k));
             max_version_line = k.line;
             return absl::OkStatus();
           }},
          {"connect_timeout_ms",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(int64_t v, ReadInt(k, 100, 600000));
             out.connect_timeout_ms = static_cast<uint32_t>(v);
             return absl::OkStatus();
           }},
          {"ktls",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.ktls,
                                   ReadEnum<KtlsPolicy>(k, {{"require", KtlsPolicy::kRequire},
                                                            {"prefer", KtlsPolicy::kPrefer}}));
             return absl::OkStatus();
           }},
          {"session_resumption",
           [&](const Entry& k) -> absl::Status {
             TLSD_ASSIGN_OR_RETURN(out.session_resumption, ReadBool(k));
             return absl::OkStatus();
           }},
      }));
  if (lines.name == 0) {
    return Error(out.line, "[[client_profile]] is missing required key 'name'");
  }
  if (!has_destinations) {
    return Error(out.line, absl::StrCat("client profile ", Quote(out.name),
                                        " is missing required key 'destinations' "
                                        "(HOST:PORT patterns it may connect to)"));
  }
  if (out.allow_uids.empty() && out.allow_gids.empty()) {
    return Error(out.line, absl::StrCat("client profile ", Quote(out.name),
                                        " has no allow_uids or allow_gids: no local user "
                                        "could use it"));
  }
  if ((cert_line == 0) != (key_line == 0)) {
    return Error(std::max(cert_line, key_line),
                 absl::StrCat("client profile ", Quote(out.name), " has ",
                              cert_line != 0 ? "cert without key" : "key without cert",
                              ": a client identity needs both"));
  }
  if (out.min_version > out.max_version) {
    return Error(
        std::max(min_version_line, max_version_line),
        absl::StrCat("min_version '", VersionName(out.min_version),
                     "' is greater than max_version '", VersionName(out.max_version), "'"));
  }
  return absl::OkStatus();
}

absl::Status Parser::CrossCheck(const Config& config,
                                const std::vector<ServiceLines>& service_lines,
                                const std::vector<BackendLines>& backend_lines) const {
  FirstError first;
  std::vector<std::string> backend_names;
  for (size_t i = 0; i < config.backends.size(); ++i) {
    const BackendConfig& b = config.backends[i];
    for (size_t j = 0; j < i; ++j) {
      if (config.backends[j].name == b.name) {
        first.Add(backend_lines[i].name,
                  Error(backend_lines[i].name,
                        absl::StrCat("duplicate backend name ", Quote(b.name),
                                     " (first defined at line ", backend_lines[j].name, ")")));
        break;
      }
    }
    backend_names.push_back(b.name);
  }

  for (size_t i = 0; i < config.services.size(); ++i) {
    const ServiceConfig& s = config.services[i];
    const ServiceLines& sl = service_lines[i];
    for (size_t j = 0; j < i; ++j) {
      if (config.services[j].name == s.name) {
        first.Add(sl.name, Error(sl.name, absl::StrCat("duplicate service name ", Quote(s.name),
                                                       " (first defined at line ",
                                                       service_lines[j].name, ")")));
        break;
      }
    }
    if (!s.systemd_socket.empty()) {
      for (size_t j = 0; j < i; ++j) {
        if (config.services[j].systemd_socket == s.systemd_socket) {
          first.Add(
              sl.systemd_socket,
              Error(sl.systemd_socket,
                    absl::StrCat("systemd_socket ", Quote(s.systemd_socket),
                                 " is already used by service ", Quote(config.services[j].name),
                                 " (line ", service_lines[j].systemd_socket, ")")));
          break;
        }
      }
    }
    // Each listen entry against every entry before it, in this service and
    // in earlier ones.
    for (size_t a = 0; a < sl.listen.size(); ++a) {
      bool reported = false;
      for (size_t j = 0; j <= i && !reported; ++j) {
        const ServiceLines& other = service_lines[j];
        const size_t limit = j == i ? a : other.listen.size();
        for (size_t b = 0; b < limit; ++b) {
          if (!Overlaps(sl.listen[a], other.listen[b])) {
            continue;
          }
          const std::string& mine = sl.listen[a].address.text;
          const std::string& theirs = other.listen[b].address.text;
          const bool same = sl.listen[a].family == other.listen[b].family &&
                            sl.listen[a].bytes == other.listen[b].bytes;
          const std::string owner = absl::StrCat("service ", Quote(config.services[j].name),
                                                 " (line ", other.listen_lines[b], ")");
          first.Add(sl.listen_lines[a],
                    Error(sl.listen_lines[a],
                          same ? absl::StrCat("listen address ", Quote(mine),
                                              " is already used by ", owner)
                               : absl::StrCat("listen address ", Quote(mine), " overlaps ",
                                              Quote(theirs), " of ", owner)));
          reported = true;
          break;
        }
      }
    }
    if (!s.backend.empty() && config.FindBackend(s.backend) == nullptr) {
      first.Add(sl.backend, Error(sl.backend, absl::StrCat("backend ", Quote(s.backend),
                                                           " is not defined by any [[backend]]",
                                                           DidYouMean(s.backend, backend_names))));
    }
    for (size_t r = 0; r < s.routes.size(); ++r) {
      const RouteConfig& route = s.routes[r];
      if (config.FindBackend(route.backend) == nullptr) {
        const int line = sl.route_backend_lines[r];
        first.Add(line, Error(line, absl::StrCat("route backend ", Quote(route.backend),
                                                 " is not defined by any [[backend]]",
                                                 DidYouMean(route.backend, backend_names))));
      }
    }
  }
  return first.status();
}

// BelongsIn explains the commonest top-level mistake: a table's key written
// above every table header, where TOML makes it a top-level key. Only a hint
// (so the lists need not follow every new key): "" when there is nothing to
// say.
std::string BelongsIn(absl::string_view key) {
  static constexpr absl::string_view kGlobalKeys[] = {
      "threads",   "control_socket", "state_dir",     "user",
      "log_level", "admin_group",    "metrics_listen"};
  // Every [[service]] key but "backend", which is also a top-level key.
  static constexpr absl::string_view kServiceKeys[] = {"name",
                                                       "listen",
                                                       "systemd_socket",
                                                       "min_version",
                                                       "max_version",
                                                       "tls12_ciphers",
                                                       "tls13_ciphersuites",
                                                       "alpn",
                                                       "client_auth",
                                                       "client_ca",
                                                       "session_tickets",
                                                       "ticket_key_file",
                                                       "ticket_rotate_seconds",
                                                       "session_cache",
                                                       "handshake_timeout_ms",
                                                       "max_handshakes",
                                                       "max_handshakes_per_source",
                                                       "handshakes_per_second_per_source",
                                                       "handshakes_per_second",
                                                       "ktls",
                                                       "offload",
                                                       "rx_expect_no_pad",
                                                       "tx_zerocopy_ro",
                                                       "unknown_sni",
                                                       "proxy_protocol",
                                                       "client_crl",
                                                       "certificate",
                                                       "route"};
  for (absl::string_view k : kGlobalKeys) {
    if (k == key) {
      return " (it belongs under a [global] header)";
    }
  }
  for (absl::string_view k : kServiceKeys) {
    if (k == key) {
      return " (it belongs under a [[service]] header)";
    }
  }
  return "";
}

// SyntaxErrorText turns toml++'s "Error while parsing X: Y" into
// "syntax error in X: Y" to match the house style (lowercase, no period).
std::string SyntaxErrorText(std::string_view description) {
  std::string text(description);
  while (!text.empty() && (text.back() == '.' || text.back() == '\n')) {
    text.pop_back();
  }
  constexpr absl::string_view kPrefix = "Error while parsing ";
  if (absl::StartsWith(text, kPrefix)) {
    return absl::StrCat("syntax error in ", text.substr(kPrefix.size()));
  }
  if (!text.empty()) {
    text[0] = absl::ascii_tolower(text[0]);
  }
  return absl::StrCat("syntax error: ", text);
}

absl::StatusOr<Config> Parser::Parse(absl::string_view text) {
  toml::table root;
  try {
    root = toml::parse(StdView(text), StdView(source_));
  } catch (const toml::parse_error& e) {
    return Error(std::max<int>(1, static_cast<int>(e.source().begin.line)),
                 SyntaxErrorText(e.description()));
  }

  Config config;
  config.source = source_;
  std::vector<ServiceLines> service_lines;
  std::vector<BackendLines> backend_lines;
  std::vector<ProfileLines> profile_lines;

  // First pass: every table on its own, in file order, so the first error
  // reported is the first one in the file. [[service]] and [[backend]]
  // elements are interleaved by their header lines.
  struct Unit {
    int line;
    enum class Kind { kGlobal, kService, kBackend, kProfile } kind;
    const Entry* entry;
    const toml::table* table;
  };
  std::vector<Entry> top = EntriesInOrder(root);
  std::vector<Unit> units;
  const std::vector<std::string> top_keys = {"global", "service", "backend", "client_profile"};
  for (const Entry& e : top) {
    if (e.key == "global") {
      units.push_back({e.line, Unit::Kind::kGlobal, &e, nullptr});
    } else if (e.key == "client_profile") {
      TLSD_ASSIGN_OR_RETURN(auto tables, ReadTableArray(e, "[[client_profile]]"));
      for (const toml::table* t : tables) {
        units.push_back({LineOf(*t), Unit::Kind::kProfile, &e, t});
      }
    } else if (e.key == "service" || e.key == "backend") {
      TLSD_ASSIGN_OR_RETURN(auto tables,
                            ReadTableArray(e, e.key == "service" ? "[[service]]" : "[[backend]]"));
      for (const toml::table* t : tables) {
        units.push_back(
            {LineOf(*t), e.key == "service" ? Unit::Kind::kService : Unit::Kind::kBackend, &e, t});
      }
    } else {
      return Error(e.line, absl::StrCat("unknown top-level key ", Quote(e.key), BelongsIn(e.key),
                                        DidYouMean(e.key, top_keys)));
    }
  }
  std::stable_sort(units.begin(), units.end(),
                   [](const Unit& a, const Unit& b) { return a.line < b.line; });
  for (const Unit& unit : units) {
    switch (unit.kind) {
      case Unit::Kind::kGlobal:
        TLSD_RETURN_IF_ERROR(ParseGlobal(*unit.entry, config.global));
        break;
      case Unit::Kind::kService:
        config.services.emplace_back();
        service_lines.emplace_back();
        TLSD_RETURN_IF_ERROR(
            ParseService(*unit.table, config.services.back(), service_lines.back()));
        break;
      case Unit::Kind::kBackend:
        config.backends.emplace_back();
        backend_lines.emplace_back();
        TLSD_RETURN_IF_ERROR(
            ParseBackend(*unit.table, config.backends.back(), backend_lines.back()));
        break;
      case Unit::Kind::kProfile:
        config.client_profiles.emplace_back();
        profile_lines.emplace_back();
        TLSD_RETURN_IF_ERROR(
            ParseClientProfile(*unit.table, config.client_profiles.back(), profile_lines.back()));
        break;
    }
  }
  if (config.services.empty() && config.client_profiles.empty()) {
    return Error(1,
                 "no [[service]] or [[client_profile]] is defined: tlsd would have nothing "
                 "to do");
  }
  for (size_t i = 0; i < config.client_profiles.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (config.client_profiles[j].name == config.client_profiles[i].name) {
        return Error(
            profile_lines[i].name,
            absl::StrCat("duplicate client profile name ", Quote(config.client_profiles[i].name),
                         " (first defined at line ", profile_lines[j].name, ")"));
      }
    }
  }

  // Second pass: references and uniqueness across tables.
  TLSD_RETURN_IF_ERROR(CrossCheck(config, service_lines, backend_lines));
  return config;
}

}  // namespace

const BackendConfig* Config::FindBackend(absl::string_view name) const {
  for (const BackendConfig& b : backends) {
    if (b.name == name) {
      return &b;
    }
  }
  return nullptr;
}

const ClientProfileConfig* Config::FindClientProfile(absl::string_view name) const {
  for (const ClientProfileConfig& p : client_profiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool DestinationPattern::Matches(absl::string_view want_host, uint16_t want_port) const {
  if (!any_port && want_port != port) return false;
  if (any_host) return true;
  std::string h = absl::AsciiStrToLower(want_host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (suffix) return absl::EndsWith(h, absl::StrCat(".", host));
  return h == host;
}

const ServiceConfig* Config::FindService(absl::string_view name) const {
  for (const ServiceConfig& s : services) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view source_name) {
  return Parser(source_name).Parse(toml_text);
}

absl::StatusOr<Config> LoadConfigFile(absl::string_view path) {
  const std::string path_str(path);
  UniqueFd fd(::open(path_str.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    return ErrnoToStatus(errno, absl::StrCat(path, ": cannot read"));
  }
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoToStatus(errno, absl::StrCat(path, ": cannot read"));
    }
    if (n == 0) {
      break;
    }
    if (text.size() + static_cast<size_t>(n) > kMaxConfigBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": config file is larger than ", kMaxConfigBytes, " bytes"));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  return ParseConfig(text, path);
}

}  // namespace tlsd
