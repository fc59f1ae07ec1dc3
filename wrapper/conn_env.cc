#include "wrapper/conn_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tlswrap {
namespace {

void Add(std::vector<std::string>& env, absl::string_view name, absl::string_view value) {
  if (value.empty() ||
      value.find_first_of(absl::string_view("\n\0", 2)) != absl::string_view::npos) {
    return;
  }
  env.push_back(absl::StrCat(name, "=", value));
}

// Adds PREFIX_ADDR and PREFIX_PORT for an AF_INET/AF_INET6 address.
void AddAddress(std::vector<std::string>& env, absl::string_view prefix,
                const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)) == nullptr) return;
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)) == nullptr) return;
    port = ntohs(sin6->sin6_port);
  } else {
    return;
  }
  Add(env, absl::StrCat(prefix, "_ADDR"), text);
  Add(env, absl::StrCat(prefix, "_PORT"), absl::StrCat(port));
}

absl::string_view Name(const std::string& var) {
  return absl::string_view(var).substr(0, var.find('='));
}

}  // namespace

std::vector<std::string> ConnEnv(const tlsfd_info& info) {
  std::vector<std::string> env;
  Add(env, "TLS_SERVICE", info.service);
  Add(env, "TLS_CONNECTION_ID", absl::StrCat(info.connection_id));
  Add(env, "TLS_SNI", info.sni);
  Add(env, "TLS_ALPN", info.alpn);
  Add(env, "TLS_VERSION", info.tls_version_name);
  Add(env, "TLS_CIPHER", info.cipher_name);
  Add(env, "TLS_RESUMED", info.resumed ? "1" : "0");
  Add(env, "TLS_KTLS_TX", info.tx_path_name);
  Add(env, "TLS_KTLS_RX", info.rx_path_name);
  if (info.has_client_cert) {
    Add(env, "TLS_PEER_CERT_SHA256", info.client_cert_sha256_hex);
    Add(env, "TLS_PEER_CERT_SUBJECT", info.client_cert_subject);
  }
  AddAddress(env, "REMOTE", info.peer_addr);
  AddAddress(env, "LOCAL", info.local_addr);
  return env;
}

std::vector<std::string> MergeEnv(const std::vector<std::string>& base,
                                  const std::vector<std::string>& conn) {
  // The address variables too, whether or not this connection has them.
  std::set<std::string, std::less<>> names = {"REMOTE_ADDR", "REMOTE_PORT", "LOCAL_ADDR",
                                              "LOCAL_PORT"};
  for (const std::string& v : conn) names.emplace(Name(v));
  std::vector<std::string> out;
  for (const std::string& v : base) {
    const absl::string_view name = Name(v);
    if (absl::StartsWith(name, "TLS_") || names.count(name) != 0) continue;
    out.push_back(v);
  }
  out.insert(out.end(), conn.begin(), conn.end());
  return out;
}

}  // namespace tlswrap
