#include "wrapper/preload/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace tlswrap::preload {
namespace {

// The shim interposes read/close; the listener's own fds go straight to the
// kernel.
int RawClose(int fd) { return static_cast<int>(syscall(SYS_close, fd)); }

bool Bump(int efd) {
  uint64_t one = 1;
  return syscall(SYS_write, efd, &one, sizeof one) == sizeof one;
}

}  // namespace

Listener* Listener::Start(int fd, const std::string& control, const std::string& backend,
                          const sockaddr_storage& bound, socklen_t bound_len, std::string* error) {
  tlsfd_server* server = nullptr;
  int rc = tlsfd_server_subscribe(control.c_str(), backend.c_str(), &server);
  if (rc < 0) {
    *error = std::string("cannot subscribe to backend '") + backend + "' at " + control + ": " +
             (*tlsfd_last_error() != '\0' ? tlsfd_last_error() : tlsfd_strerror(rc));
    errno = -rc;
    return nullptr;
  }
  const int fl = fcntl(fd, F_GETFL);
  const int fdfl = fcntl(fd, F_GETFD);
  int efd =
      eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC | ((fl >= 0 && (fl & O_NONBLOCK)) ? EFD_NONBLOCK : 0));
  int stop = eventfd(0, EFD_CLOEXEC);
  // dup3 puts the eventfd at the daemon's number, closing its socket.
  const bool placed = efd >= 0 && stop >= 0 && fl >= 0 && fdfl >= 0 &&
                      syscall(SYS_dup3, efd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) == fd;
  if (!placed) {
    int e = errno;
    if (efd >= 0) RawClose(efd);
    if (stop >= 0) RawClose(stop);
    tlsfd_server_free(server);
    *error = std::string("cannot set up the listening fd: ") + strerror(e);
    errno = e;
    return nullptr;
  }
  RawClose(efd);
  auto* l = new Listener(server, control, backend, fd, stop, bound, bound_len);
  l->thread_ = std::thread([l] { l->Run(); });
  return l;
}

Listener::Listener(tlsfd_server* server, std::string control, std::string backend, int event_fd,
                   int stop_fd, const sockaddr_storage& bound, socklen_t bound_len)
    : server_(server),
      control_(std::move(control)),
      backend_(std::move(backend)),
      event_fd_(event_fd),
      stop_fd_(stop_fd),
      bound_(bound),
      bound_len_(bound_len) {}

Listener::~Listener() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  room_.notify_all();
  Bump(stop_fd_);
  if (thread_.joinable()) thread_.join();
  for (tlsfd_conn* c : queue_) tlsfd_close(c);
  tlsfd_server_free(server_);
  RawClose(stop_fd_);
  // event_fd_ is the daemon's fd number now (or was dup'ed onto it and
  // closed): not ours to close.
}

tlsfd_conn* Listener::Accept() {
  uint64_t one;
  // EFD_SEMAPHORE: each read takes one from the counter, blocking at zero
  // unless the daemon made the fd non-blocking; EINTR as for accept().
  if (syscall(SYS_read, event_fd_, &one, sizeof one) != sizeof one) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.empty()) {  // cannot happen: the counter follows the queue
    errno = EAGAIN;
    return nullptr;
  }
  tlsfd_conn* c = queue_.front();
  queue_.pop_front();
  room_.notify_one();
  return c;
}

bool Listener::Resubscribe() {
  // Back off 1 s between attempts; the destructor's stop_fd_ cuts it short.
  for (;;) {
    pollfd p{stop_fd_, POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) return false;
    tlsfd_server* s = nullptr;
    int rc = tlsfd_server_subscribe(control_.c_str(), backend_.c_str(), &s);
    if (rc == 0) {
      tlsfd_server_free(server_);
      server_ = s;
      fprintf(stderr, "tls-wrap preload: subscribed again to backend '%s'\n", backend_.c_str());
      return true;
    }
  }
}

void Listener::Run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      room_.wait(lock, [this] { return stopping_ || queue_.size() < kMaxQueued; });
      if (stopping_) return;
    }
    pollfd p[2] = {{tlsfd_server_fd(server_), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) continue;  // EINTR
    if (p[1].revents != 0) return;
    tlsfd_conn* c = nullptr;
    int rc = tlsfd_accept(server_, &c, TLSFD_NONBLOCK);
    if (rc == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(c);
      Bump(event_fd_);
      continue;
    }
    if (rc == -EAGAIN || rc == -EINTR) continue;
    if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
      // That one connection is lost (tlsd's client sees the close); do not
      // spin while the daemon is out of fds.
      fprintf(stderr, "tls-wrap preload: accept: %s; pausing 100 ms\n", tlsfd_strerror(rc));
      poll(&p[1], 1, 100);
      continue;
    }
    // The subscription is over (tlsd stopped or restarted).
    fprintf(stderr, "tls-wrap preload: subscription to backend '%s' ended: %s; subscribing again\n",
            backend_.c_str(),
            *tlsfd_last_error() != '\0' ? tlsfd_last_error() : tlsfd_strerror(rc));
    if (!Resubscribe()) return;
  }
}

}  // namespace tlswrap::preload
