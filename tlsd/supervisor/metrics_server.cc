#include "tlsd/supervisor/metrics_server.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "common/ipc/seqpacket.h"
#include "tlsd/supervisor/listeners.h"

namespace tlsd {
namespace {

constexpr size_t kMaxRequest = 8192;

std::string HttpResponse(absl::string_view status, absl::string_view type, absl::string_view body) {
  return absl::StrCat("HTTP/1.0 ", status, "\r\nContent-Type: ", type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

}  // namespace

absl::StatusOr<UniqueFd> MetricsServer::Bind(const GlobalConfig& global) {
  if (!global.metrics_socket_path.empty()) {
    // Counters, no secrets: readable by any local user, like the loopback
    // port would be.
    return ListenUnix(global.metrics_socket_path, 0666, SOCK_STREAM);
  }
  return ListenTcp(*global.metrics_address);
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Create(
    UniqueFd listener, std::function<std::string()> render) {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoToStatus(errno, "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0) {
    return ErrnoToStatus(errno, "epoll add metrics socket");
  }
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(listener), std::move(epoll), std::move(render)));
}

void MetricsServer::OnReady() {
  epoll_event events[16];
  const int n = epoll_wait(epoll_.get(), events, 16, 0);
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == 0) {
      Accept();
    } else if (events[i].events & EPOLLOUT) {
      Flush(events[i].data.u64);
    } else {
      OnClient(events[i].data.u64);
    }
  }
}

void MetricsServer::Accept() {
  for (;;) {
    UniqueFd sock(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!sock.valid()) return;
    const absl::Time now = absl::Now();
    if (clients_.size() >= kMaxClients) {
      auto oldest = clients_.begin();
      for (auto it = clients_.begin(); it != clients_.end(); ++it) {
        if (it->second.since < oldest->second.since) oldest = it;
      }
      if (now - oldest->second.since < kClientTimeout) {
        const std::string busy = HttpResponse("503 Service Unavailable", "text/plain", "busy\n");
        (void)!send(sock.get(), busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        continue;
      }
      Close(oldest->first);
    }
    const uint64_t id = next_id_++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, sock.get(), &ev) != 0) continue;
    clients_.emplace(id, Client{std::move(sock), "", "", 0, now});
  }
}

void MetricsServer::OnClient(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  char buf[2048];
  const ssize_t n = recv(c.sock.get(), buf, sizeof(buf), 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) return Close(id);
  c.request.append(buf, static_cast<size_t>(n));
  if (c.request.find("\r\n\r\n") == std::string::npos &&
      c.request.find("\n\n") == std::string::npos) {
    if (c.request.size() < kMaxRequest) return;
    c.response = HttpResponse("431 Request Header Fields Too Large", "text/plain", "too large\n");
  } else {
    c.response = Respond(c.request);
  }
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u64 = id;
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.sock.get(), &ev);
  Flush(id);
}

std::string MetricsServer::Respond(absl::string_view request) const {
  const size_t eol = request.find_first_of("\r\n");
  const absl::string_view line = request.substr(0, eol);
  if (!absl::StartsWith(line, "GET ")) {
    return HttpResponse("405 Method Not Allowed", "text/plain", "only GET\n");
  }
  absl::string_view target = line.substr(4);
  target = target.substr(0, target.find(' '));
  if (target != "/metrics" && !absl::StartsWith(target, "/metrics?")) {
    return HttpResponse("404 Not Found", "text/plain", "try /metrics\n");
  }
  return HttpResponse("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_());
}

void MetricsServer::Flush(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  while (c.sent < c.response.size()) {
    const ssize_t n = send(c.sock.get(), c.response.data() + c.sent, c.response.size() - c.sent,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) return Close(id);
    c.sent += static_cast<size_t>(n);
  }
  if (!c.response.empty()) Close(id);
}

void MetricsServer::Close(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.sock.get(), nullptr);
  clients_.erase(it);
}

}  // namespace tlsd
