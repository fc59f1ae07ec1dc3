#include "tests/ktls/ktls_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/errno_status.h"
#include "common/base/status_macros.h"
#include "common/ktls/record_io.h"
#include "tlsd/tls/ossl_error.h"
#include "tlsd/tls/sock_diag.h"

namespace tlsd {
namespace testing {
namespace {

// The data-path tests use plain write(2) and sendfile(2) on purpose (that is
// what applications do on a kTLS socket). When a peer fails they must fail
// with EPIPE and report it, not kill the binary with SIGPIPE; every binary
// that links these helpers gets this (as the daemon itself does).
[[maybe_unused]] const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

const char* Tls12SuiteName(KtlsCipher cipher) {
  switch (cipher) {
    case KtlsCipher::kAes128Gcm:
      return "ECDHE-ECDSA-AES128-GCM-SHA256";
    case KtlsCipher::kAes256Gcm:
      return "ECDHE-ECDSA-AES256-GCM-SHA384";
    case KtlsCipher::kChaCha20Poly1305:
      return "ECDHE-ECDSA-CHACHA20-POLY1305";
  }
  return "";
}

const char* Tls13SuiteName(KtlsCipher cipher) {
  switch (cipher) {
    case KtlsCipher::kAes128Gcm:
      return "TLS_AES_128_GCM_SHA256";
    case KtlsCipher::kAes256Gcm:
      return "TLS_AES_256_GCM_SHA384";
    case KtlsCipher::kChaCha20Poly1305:
      return "TLS_CHACHA20_POLY1305_SHA256";
  }
  return "";
}

// Runs one side's handshake to completion and then CompleteKtls.
void RunSide(SSL* ssl, int fd, bool is_server, const KtlsOptions& opts, bool complete_ktls,
             absl::Status* out_status, absl::StatusOr<KtlsOutcome>* out_outcome) {
  ERR_clear_error();
  int ret = SSL_do_handshake(ssl);
  if (ret != 1) {
    *out_status = HandshakeError(ssl, ret, is_server ? "server" : "client");
    // Unblock the peer, which may be waiting for our next flight.
    ::shutdown(fd, SHUT_RDWR);
    return;
  }
  *out_status = absl::OkStatus();
  if (complete_ktls) {
    *out_outcome = CompleteKtls(ssl, fd, is_server, opts);
  }
}

}  // namespace

bool InVmLane() {
  const char* v = ::getenv("TLSD_IN_VM");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

bool SockDiagAvailable() {
  absl::StatusOr<TcpPair> pair = MakeTcpPair();
  return pair.ok() && QueryTcpUlpDiag(pair->client.get()).ok();
}

void PrintTo(const TlsParams& params, std::ostream* os) {
  *os << TlsVersionName(params.version) << "/" << KtlsCipherName(params.cipher);
}

std::string TlsParamsName(const ::testing::TestParamInfo<TlsParams>& info) {
  std::string name = absl::StrCat(info.param.version == TlsVersion::kTls12 ? "TLSv12" : "TLSv13",
                                  "_", KtlsCipherName(info.param.cipher));
  return absl::StrReplaceAll(name, {{"-", "_"}});
}

std::vector<TlsParams> AllTlsParams() {
  std::vector<TlsParams> all;
  for (TlsVersion v : {TlsVersion::kTls12, TlsVersion::kTls13}) {
    for (KtlsCipher c :
         {KtlsCipher::kAes128Gcm, KtlsCipher::kAes256Gcm, KtlsCipher::kChaCha20Poly1305}) {
      all.push_back({v, c});
    }
  }
  return all;
}

absl::StatusOr<TcpPair> MakeTcpPair() {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) {
    return ErrnoToStatus(errno, "socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return ErrnoToStatus(errno, "bind 127.0.0.1");
  }
  if (::listen(listener.get(), 1) != 0) {
    return ErrnoToStatus(errno, "listen");
  }
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoToStatus(errno, "getsockname");
  }
  TcpPair pair;
  pair.client = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!pair.client.valid()) {
    return ErrnoToStatus(errno, "socket");
  }
  if (::connect(pair.client.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return ErrnoToStatus(errno, "connect");
  }
  pair.server = UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!pair.server.valid()) {
    return ErrnoToStatus(errno, "accept4");
  }
  // A test whose peer stopped (e.g. its reader hit EBADMSG) must fail, not
  // hang until the VM lane's timeout: blocked I/O gives up after this long,
  // which is ample even under QEMU's TCG.
  const timeval timeout{.tv_sec = 60, .tv_usec = 0};
  for (int fd : {pair.client.get(), pair.server.get()}) {
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0) {
      return ErrnoToStatus(errno, "setsockopt SO_RCVTIMEO/SO_SNDTIMEO");
    }
  }
  return pair;
}

absl::StatusOr<SslCtxPtr> MakeCtx(const TestCerts& certs, bool is_server, const TlsParams& params,
                                  bool ktls, bool capture) {
  SslCtxPtr ctx(SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method()));
  if (ctx == nullptr) {
    return OsslError(absl::StatusCode::kInternal, "SSL_CTX_new");
  }
  const int v = params.version == TlsVersion::kTls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx.get(), v) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), v) != 1) {
    return OsslError(absl::StatusCode::kInternal, "set protocol version");
  }
  if (params.version == TlsVersion::kTls12) {
    if (SSL_CTX_set_cipher_list(ctx.get(), Tls12SuiteName(params.cipher)) != 1) {
      return OsslError(absl::StatusCode::kInternal, "set TLS 1.2 cipher");
    }
  } else if (SSL_CTX_set_ciphersuites(ctx.get(), Tls13SuiteName(params.cipher)) != 1) {
    return OsslError(absl::StatusCode::kInternal, "set TLS 1.3 suite");
  }
  if (ktls) {
    SSL_CTX_set_options(ctx.get(), SSL_OP_ENABLE_KTLS);
  }
  if (capture) {
    TLSD_RETURN_IF_ERROR(InstallSecretCapture(ctx.get()));
  }
  if (is_server) {
    TLSD_RETURN_IF_ERROR(UseIdentity(ctx.get(), certs.server_ecdsa()));
  } else {
    TLSD_RETURN_IF_ERROR(TrustCa(ctx.get(), certs.ca()));
  }
  return ctx;
}

absl::Status HandshakeError(SSL* ssl, int ret, absl::string_view who) {
  const int err = SSL_get_error(ssl, ret);
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    return ErrnoToStatus(errno != 0 ? errno : ECONNRESET, absl::StrCat(who, " handshake"));
  }
  return OsslError(absl::StatusCode::kUnavailable,
                   absl::StrCat(who, " handshake (SSL_get_error ", err, ")"));
}

absl::StatusOr<Connection> Connect(SSL_CTX* client_ctx, SSL_CTX* server_ctx,
                                   const KtlsOptions& opts, bool complete_ktls) {
  Connection conn;
  TLSD_ASSIGN_OR_RETURN(conn.fds, MakeTcpPair());
  conn.client.reset(SSL_new(client_ctx));
  conn.server.reset(SSL_new(server_ctx));
  if (conn.client == nullptr || conn.server == nullptr) {
    return OsslError(absl::StatusCode::kInternal, "SSL_new");
  }
  // SSL_set_fd borrows: the fds in conn.fds outlive the SSLs.
  if (SSL_set_fd(conn.client.get(), conn.fds.client.get()) != 1 ||
      SSL_set_fd(conn.server.get(), conn.fds.server.get()) != 1 ||
      SSL_set1_host(conn.client.get(), "localhost") != 1 ||
      SSL_set_tlsext_host_name(conn.client.get(), "localhost") != 1) {
    return OsslError(absl::StatusCode::kInternal, "SSL setup");
  }
  SSL_set_connect_state(conn.client.get());
  SSL_set_accept_state(conn.server.get());

  absl::Status server_status;
  std::thread server_thread(RunSide, conn.server.get(), conn.fds.server.get(),
                            /*is_server=*/true, std::cref(opts), complete_ktls, &server_status,
                            &conn.server_outcome);
  absl::Status client_status;
  RunSide(conn.client.get(), conn.fds.client.get(), /*is_server=*/false, opts, complete_ktls,
          &client_status, &conn.client_outcome);
  server_thread.join();
  TLSD_RETURN_IF_ERROR(client_status);
  TLSD_RETURN_IF_ERROR(server_status);
  return conn;
}

absl::StatusOr<ReadAllResult> ReadAll(int fd, size_t len) {
  ReadAllResult result;
  result.data.reserve(len);
  std::string handshake;  // handshake bytes, possibly split across records
  std::vector<uint8_t> buf(4 * kMaxTlsPlaintextLen);
  while (result.data.size() < len) {
    TLSD_ASSIGN_OR_RETURN(RecordRead r, RecvTlsRecord(fd, absl::MakeSpan(buf)));
    if (r.len == 0) {  // end of stream
      return absl::UnavailableError(
          absl::StrCat("ReadAll: EOF after ", result.data.size(), " of ", len, " bytes"));
    }
    const char* bytes = reinterpret_cast<const char*>(buf.data());
    if (r.record_type == kRecordApplicationData) {
      result.data.append(bytes, r.len);
      continue;
    }
    if (r.record_type != kRecordHandshake) {
      return absl::InternalError(absl::StrCat("ReadAll: unexpected record type ", r.record_type));
    }
    ++result.num_handshake_records;
    handshake.append(bytes, r.len);
    // Handshake messages: type(1) length(3) body.
    while (handshake.size() >= 4) {
      const auto* h = reinterpret_cast<const uint8_t*>(handshake.data());
      const size_t body_len = (size_t{h[1]} << 16) | (size_t{h[2]} << 8) | h[3];
      if (handshake.size() < 4 + body_len) {
        break;
      }
      if (h[0] == 4) {  // new_session_ticket
        ++result.num_new_session_tickets;
      }
      handshake.erase(0, 4 + body_len);
    }
  }
  if (result.data.size() != len) {
    return absl::InternalError(
        absl::StrCat("ReadAll: read ", result.data.size(), " bytes, want ", len));
  }
  return result;
}

absl::Status WriteAll(int fd, absl::string_view data) {
  // Sizes that cross the 16 KiB record limit and leave odd tails.
  static constexpr size_t kChunks[] = {1, 100, 16384, 16385, 65536, 7, 40000};
  size_t i = 0;
  while (!data.empty()) {
    const size_t want = std::min(data.size(), kChunks[i++ % std::size(kChunks)]);
    ssize_t n = ::write(fd, data.data(), want);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoToStatus(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string RandomBytes(size_t len) {
  std::string out(len, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(len)) != 1) {
    std::abort();  // the DRBG failing means the test machine is broken
  }
  return out;
}

}  // namespace testing
}  // namespace tlsd
