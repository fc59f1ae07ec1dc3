#include "tlsd/tls/sock_diag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/unique_fd.h"

namespace tlsd {
namespace {

// One inet_diag_msg with its attributes is well under a page; the ULP info
// adds a few dozen bytes. 16 KiB leaves room for INET_DIAG_INFO (tcp_info).
constexpr size_t kReplyBufLen = 16 * 1024;

// nlattr and rtattr share a layout; the kernel may set NLA_F_NESTED on nests.
uint16_t AttrType(const nlattr* a) { return a->nla_type & NLA_TYPE_MASK; }

// Walks the attributes in [data, data+len) and calls fn(attr, payload,
// payload_len) for each well-formed one. Returns false on a malformed one.
template <typename Fn>
bool ForEachAttr(const uint8_t* data, size_t len, Fn fn) {
  while (len >= NLA_HDRLEN) {
    nlattr a;
    std::memcpy(&a, data, sizeof(a));
    if (a.nla_len < NLA_HDRLEN || a.nla_len > len) {
      return false;
    }
    fn(a, data + NLA_HDRLEN, static_cast<size_t>(a.nla_len - NLA_HDRLEN));
    size_t step = NLA_ALIGN(a.nla_len);
    if (step >= len) {
      return true;
    }
    data += step;
    len -= step;
  }
  return true;
}

uint16_t ReadU16(const uint8_t* p, size_t len) {
  uint16_t v = 0;
  if (len >= sizeof(v)) {
    std::memcpy(&v, p, sizeof(v));
  }
  return v;
}

bool ParseTlsInfo(const uint8_t* data, size_t len, TcpUlpDiag* out) {
  return ForEachAttr(data, len, [out](const nlattr& a, const uint8_t* p, size_t plen) {
    switch (AttrType(&a)) {
      case TLS_INFO_VERSION:
        out->version = ReadU16(p, plen);
        break;
      case TLS_INFO_CIPHER:
        out->cipher_type = ReadU16(p, plen);
        break;
      case TLS_INFO_TXCONF:
        out->tx_conf = static_cast<KtlsConf>(ReadU16(p, plen));
        break;
      case TLS_INFO_RXCONF:
        out->rx_conf = static_cast<KtlsConf>(ReadU16(p, plen));
        break;
      case TLS_INFO_ZC_RO_TX:
        out->tx_zerocopy_ro = true;
        break;
      case TLS_INFO_RX_NO_PAD:
        out->rx_no_pad = true;
        break;
      default:
        break;
    }
  });
}

bool ParseUlpInfo(const uint8_t* data, size_t len, TcpUlpDiag* out) {
  bool ok = true;
  bool parsed = ForEachAttr(data, len, [out, &ok](const nlattr& a, const uint8_t* p, size_t plen) {
    switch (AttrType(&a)) {
      case INET_ULP_INFO_NAME:
        // A NUL-terminated string; strnlen keeps a missing NUL in bounds.
        out->ulp_name.assign(reinterpret_cast<const char*>(p),
                             strnlen(reinterpret_cast<const char*>(p), plen));
        break;
      case INET_ULP_INFO_TLS:
        ok = ok && ParseTlsInfo(p, plen, out);
        break;
      default:
        break;
    }
  });
  return parsed && ok;
}

}  // namespace

absl::StatusOr<TcpUlpDiag> QueryTcpUlpDiag(int fd) {
  sockaddr_storage local{};
  sockaddr_storage peer{};
  socklen_t local_len = sizeof(local);
  socklen_t peer_len = sizeof(peer);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return ErrnoToStatus(errno, "sock_diag: getsockname");
  }
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    if (errno == ENOTCONN) {
      return absl::FailedPreconditionError("sock_diag: socket is not connected");
    }
    return ErrnoToStatus(errno, "sock_diag: getpeername");
  }
  if (local.ss_family != peer.ss_family ||
      (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
    return absl::FailedPreconditionError("sock_diag: not an inet socket");
  }

  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } request;
  std::memset(&request, 0, sizeof(request));
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  // No NLM_F_DUMP: an exact lookup by 4-tuple (inet_diag_find_one_icsk).
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.nlh.nlmsg_seq = 1;
  request.req.sdiag_family = local.ss_family;
  request.req.sdiag_protocol = IPPROTO_TCP;
  request.req.idiag_states = ~0u;
  // The ULP attributes are emitted together with INET_DIAG_INFO.
  request.req.idiag_ext = 1 << (INET_DIAG_INFO - 1);
  request.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  request.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  // "src" is our end and "dst" the peer's, as the kernel looks the socket up
  // like an incoming packet from dst to src.
  if (local.ss_family == AF_INET) {
    const auto* l = reinterpret_cast<const sockaddr_in*>(&local);
    const auto* r = reinterpret_cast<const sockaddr_in*>(&peer);
    request.req.id.idiag_sport = l->sin_port;
    request.req.id.idiag_dport = r->sin_port;
    std::memcpy(request.req.id.idiag_src, &l->sin_addr, sizeof(l->sin_addr));
    std::memcpy(request.req.id.idiag_dst, &r->sin_addr, sizeof(r->sin_addr));
  } else {
    const auto* l = reinterpret_cast<const sockaddr_in6*>(&local);
    const auto* r = reinterpret_cast<const sockaddr_in6*>(&peer);
    request.req.id.idiag_sport = l->sin6_port;
    request.req.id.idiag_dport = r->sin6_port;
    std::memcpy(request.req.id.idiag_src, &l->sin6_addr, sizeof(l->sin6_addr));
    std::memcpy(request.req.id.idiag_dst, &r->sin6_addr, sizeof(r->sin6_addr));
  }

  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) {
    return ErrnoToStatus(errno, "sock_diag: socket(AF_NETLINK)");
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(nl.get(), &request, sizeof(request), 0,
                    reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    return ErrnoToStatus(errno, "sock_diag: send");
  }

  alignas(nlmsghdr) uint8_t reply[kReplyBufLen];
  ssize_t n;
  do {
    n = ::recv(nl.get(), reply, sizeof(reply), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return ErrnoToStatus(errno, "sock_diag: recv");
  }

  size_t len = static_cast<size_t>(n);
  for (const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(reply); NLMSG_OK(h, len);
       h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type == NLMSG_ERROR) {
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
        return absl::InternalError("sock_diag: short error reply");
      }
      const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
      if (err->error == 0) {
        continue;  // an ACK; the data message is what we want
      }
      absl::Status status = ErrnoToStatus(-err->error, "sock_diag: lookup");
      if (-err->error == ENOENT) {
        // The lookup fails the same way when no TCP diag handler is
        // registered (CONFIG_INET_TCP_DIAG=m and tcp_diag not loadable).
        absl::Status out(status.code(),
                         "sock_diag: lookup: no such socket, or the kernel "
                         "has no TCP sock_diag (tcp_diag module)");
        status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
          out.SetPayload(url, payload);
        });
        return out;
      }
      return status;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) {
      continue;
    }
    const size_t attrs_off = NLMSG_ALIGN(sizeof(inet_diag_msg));
    if (h->nlmsg_len < NLMSG_LENGTH(attrs_off)) {
      return absl::InternalError("sock_diag: short reply");
    }
    TcpUlpDiag out;
    const auto* base = static_cast<const uint8_t*>(NLMSG_DATA(h));
    const size_t attrs_len = h->nlmsg_len - NLMSG_LENGTH(attrs_off);
    bool ok = true;
    bool parsed = ForEachAttr(base + attrs_off, attrs_len,
                              [&out, &ok](const nlattr& a, const uint8_t* p, size_t plen) {
                                if (AttrType(&a) == INET_DIAG_ULP_INFO) {
                                  out.has_ulp_info = true;
                                  ok = ok && ParseUlpInfo(p, plen, &out);
                                }
                              });
    if (!parsed || !ok) {
      return absl::InternalError("sock_diag: malformed attributes");
    }
    return out;
  }
  return absl::InternalError("sock_diag: no reply for the socket");
}

}  // namespace tlsd
