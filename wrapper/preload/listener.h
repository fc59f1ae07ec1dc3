#ifndef TLSD_WRAPPER_PRELOAD_LISTENER_H_
#define TLSD_WRAPPER_PRELOAD_LISTENER_H_

// Listener stands in for a wrapped daemon's listening socket. The daemon
// keeps its fd number, but behind it there is now an eventfd (semaphore
// mode) whose counter is the number of connections waiting here, so that
// blocking accept(), poll/select/epoll readiness and O_NONBLOCK all behave as
// they did for the TCP socket without the shim knowing how the daemon waits:
//
//   a thread of ours     tlsfd_accept() from tlsd's pull subscription
//                        -> queue the connection, eventfd += 1
//   daemon's accept()    read(eventfd) (blocks, or EAGAIN, as the daemon
//                        set the fd) -> take one connection off the queue
//
// The thread keeps at most kMaxQueued connections here; beyond that they
// wait in tlsd's backend queue, where tlsd's limits and metrics see them.
// When the subscription ends (tlsd restarted), the thread subscribes again
// with a back-off; connections already accepted are not affected.

#include <sys/socket.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "libtlsfd/include/tlsfd.h"

namespace tlswrap::preload {

class Listener {
 public:
  static constexpr size_t kMaxQueued = 64;

  // Start subscribes to `backend` at `control` (synchronously, so that a
  // refusal reaches the daemon's listen() as an error), puts an eventfd in
  // the place of the daemon's socket `fd` (same number, same O_NONBLOCK and
  // close-on-exec; the TCP socket, never bound, is closed) and starts the
  // thread. On failure returns nullptr with errno set and a reason in
  // *error; `fd` is then untouched.
  static Listener* Start(int fd, const std::string& control, const std::string& backend,
                         const sockaddr_storage& bound, socklen_t bound_len, std::string* error);

  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Ends the thread, frees the subscription and closes the connections
  // still queued (their clients see close_notify). The daemon's fd number
  // is left to the caller (the close() that got us here).
  ~Listener();

  // Accept takes the next connection, waiting on the eventfd as the daemon's
  // flags on it say. Returns the connection or nullptr with errno set
  // (EAGAIN, EINTR, ...).
  tlsfd_conn* Accept();

  const sockaddr_storage& bound() const { return bound_; }
  socklen_t bound_len() const { return bound_len_; }

 private:
  Listener(tlsfd_server* server, std::string control, std::string backend, int event_fd,
           int stop_fd, const sockaddr_storage& bound, socklen_t bound_len);
  void Run();
  bool Resubscribe();

  tlsfd_server* server_;  // owned; replaced by Run() when tlsd restarts
  const std::string control_;
  const std::string backend_;
  const int event_fd_;  // the daemon's fd number; counts queued connections
  const int stop_fd_;   // eventfd: readable once the destructor runs
  const sockaddr_storage bound_;
  const socklen_t bound_len_;

  std::mutex mu_;
  std::condition_variable room_;  // the queue has room again, or stopping
  std::deque<tlsfd_conn*> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tlswrap::preload

#endif  // TLSD_WRAPPER_PRELOAD_LISTENER_H_
