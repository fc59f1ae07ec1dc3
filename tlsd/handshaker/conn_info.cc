#include "tlsd/handshaker/conn_info.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {

WireAddress LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return WireAddress{};
  return WireAddressFromSockaddr(ss);
}

WireAddress PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return WireAddress{};
  return WireAddressFromSockaddr(ss);
}

void FillNegotiated(SSL* ssl, ConnectionInfo& info) {
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn != nullptr) info.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  info.tls_version = static_cast<uint16_t>(SSL_version(ssl));
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  info.cipher_suite = SSL_CIPHER_get_protocol_id(cipher);
  info.cipher_name = SSL_CIPHER_get_name(cipher);
  info.resumed = SSL_session_reused(ssl) == 1;
}

void FillPeerCertificate(SSL* ssl, ConnectionInfo& info) {
  X509* cert = SSL_get0_peer_certificate(ssl);  // borrowed from the session
  if (cert == nullptr) return;
  info.has_client_cert = true;
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio && X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    info.client_cert_subject.assign(data, std::min<long>(len, 1024));
  }
  unsigned int md_len = 0;
  X509_digest(cert, EVP_sha256(), info.client_cert_sha256.data(), &md_len);
}

DataPath PathFor(KtlsMode mode) {
  switch (mode) {
    case KtlsMode::kSoftware:
      return DataPath::kKernelSoftware;
    case KtlsMode::kDevice:
      return DataPath::kKernelDevice;
    case KtlsMode::kNone:
      break;
  }
  return DataPath::kRelay;
}

// OpenSslFailure describes why a handshake step failed, for the log line.
std::string OpenSslFailure(int ssl_error) {
  unsigned long e = ERR_peek_last_error();
  std::string detail;
  if (e != 0) {
    const char* reason = ERR_reason_error_string(e);
    detail = reason != nullptr ? reason : absl::StrCat("openssl error ", e);
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    detail = errno != 0 ? strerror(errno) : "peer closed the connection";
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    detail = "peer sent close_notify";
  } else {
    detail = absl::StrCat("ssl error ", ssl_error);
  }
  ERR_clear_error();
  return detail;
}

}  // namespace tlsd
