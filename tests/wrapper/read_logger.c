/* read_logger — a legacy plain-TCP daemon for tls-wrap's preload tests. It
 * knows nothing of TLS: it listens on 127.0.0.1:PORT, serves one connection
 * at a time, echoes each read back as "echo: <bytes>" and logs what every
 * read() returned, one line each, on stdout:
 *
 *   listening 127.0.0.1:PORT mode=MODE
 *   conn peer=ADDR:PORT          (from accept()'s address)
 *   read 6                       (a read that returned data)
 *   eof                          (read() returned 0)
 *   error EIO                    (read() failed; errno's name)
 *   fds N                        (open fds after the connection was closed)
 *
 * --accept block|select|poll|epoll   how it waits for connections (a blocking
 *                                    accept(), or a non-blocking listener
 *                                    behind an event loop)
 * --raw-read                         read with syscall(SYS_read), which no
 *                                    LD_PRELOAD shim sees: what a daemon
 *                                    would meet without tls-wrap
 * --probe-key PATH                   per connection, also log
 *                                    "open-key OK|<errno>" for PATH and
 *                                    "getsockopt-tls OK|<errno>" for
 *                                    getsockopt(conn, SOL_TLS, TLS_TX)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TLS_TX
#define TLS_TX 1
#endif

static const char* ErrName(int e) {
  switch (e) {
    case EIO:
      return "EIO";
    case ECONNRESET:
      return "ECONNRESET";
    case EPROTO:
      return "EPROTO";
    case EBADMSG:
      return "EBADMSG";
    case EPERM:
      return "EPERM";
    case EACCES:
      return "EACCES";
    case ENOPROTOOPT:
      return "ENOPROTOOPT";
    case EOPNOTSUPP:
      return "EOPNOTSUPP";
    case ENOENT:
      return "ENOENT";
    case EAGAIN:
      return "EAGAIN";
  }
  return "other";
}

static int CountFds(void) {
  int n = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) ++n;
  }
  return n;
}

static void WaitReadable(int lfd, const char* mode) {
  if (strcmp(mode, "select") == 0) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(lfd, &r);
    if (select(lfd + 1, &r, NULL, NULL, NULL) < 0) perror("select");
  } else if (strcmp(mode, "poll") == 0) {
    struct pollfd p = {lfd, POLLIN, 0};
    if (poll(&p, 1, -1) < 0) perror("poll");
  } else if (strcmp(mode, "epoll") == 0) {
    static int ep = -1;
    if (ep < 0) {
      ep = epoll_create1(EPOLL_CLOEXEC);
      struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
      epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    }
    struct epoll_event out;
    if (epoll_wait(ep, &out, 1, -1) < 0) perror("epoll_wait");
  }
}

int main(int argc, char** argv) {
  int port = 0, raw = 0;
  const char* mode = "block";
  const char* key = NULL;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--accept") == 0 && i + 1 < argc) {
      mode = argv[++i];
    } else if (strcmp(argv[i], "--raw-read") == 0) {
      raw = 1;
    } else if (strcmp(argv[i], "--probe-key") == 0 && i + 1 < argc) {
      key = argv[++i];
    } else {
      port = atoi(argv[i]);
    }
  }
  if (port <= 0 || port > 65535) {
    fprintf(stderr,
            "usage: read_logger [--accept block|select|poll|epoll] [--raw-read] "
            "[--probe-key PATH] PORT\n");
    return 64;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0 || listen(lfd, 16) != 0) {
    perror("bind/listen");
    return 71;
  }
  const int nonblocking = strcmp(mode, "block") != 0;
  if (nonblocking) fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
  struct sockaddr_in bound;
  socklen_t bl = sizeof bound;
  getsockname(lfd, (struct sockaddr*)&bound, &bl);
  printf("listening 127.0.0.1:%d mode=%s\n", ntohs(bound.sin_port), mode);
  for (;;) {
    if (nonblocking) WaitReadable(lfd, mode);
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int c = accept4(lfd, (struct sockaddr*)&peer, &pl, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      printf("accept-error %s\n", ErrName(errno));
      return 1;
    }
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    printf("conn peer=%s:%d\n", ip, ntohs(peer.sin_port));
    if (key != NULL) {
      int k = open(key, O_RDONLY | O_CLOEXEC);
      printf("open-key %s\n", k >= 0 ? "OK" : ErrName(errno));
      if (k >= 0) close(k);
      unsigned char info[64];
      socklen_t il = sizeof info;
      int r = getsockopt(c, SOL_TLS, TLS_TX, info, &il);
      printf("getsockopt-tls %s\n", r == 0 ? "OK" : ErrName(errno));
    }
    char buf[4096];
    for (;;) {
      ssize_t n = raw ? syscall(SYS_read, c, buf, sizeof buf) : read(c, buf, sizeof buf);
      if (n > 0) {
        printf("read %zd\n", n);
        char out[4200];
        int m = snprintf(out, sizeof out, "echo: %.*s", (int)n, buf);
        if (write(c, out, (size_t)m) < 0) printf("write-error %s\n", ErrName(errno));
        continue;
      }
      if (n == 0) {
        printf("eof\n");
      } else {
        printf("error %s\n", ErrName(errno));
      }
      break;
    }
    close(c);
    printf("fds %d\n", CountFds());
  }
}
