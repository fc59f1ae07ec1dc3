// loadgen: the benchmark's TLS client. One thread, one epoll loop, many
// non-blocking connections, each of which connects, handshakes, sends one
// HTTP/1.1 request, reads the response to its end and closes - the same work
// for every terminator under test. It reports what it completed and the
// latency from connect() to the first response byte, as one JSON object.
//
//   loadgen --port N [--tls 1.2|1.3] [--resume] [--concurrency C]
//           [--seconds S] [--rate R] [--path P]
//   loadgen --port N --hold N [--tls 1.2|1.3] [--seconds S]
//
// Closed loop (default): C connections always in flight, for S seconds.
// Open loop (--rate R): a new connection every 1/R s (at most C in flight),
// for latency at a fixed, moderate rate. --resume: every connection offers
// the session of an earlier one (TLS 1.2: a ticket or session id; TLS 1.3:
// a ticket), so the terminator makes resumed handshakes. --path asks for P
// instead of / (e.g. a large file: "bytes" and "mib_per_s" in the report
// count every plaintext byte read, finished responses or not).
//
// --hold N: open N connections and leave each mid-handshake - the
// ClientHello sent, the server's reply never answered - so the terminator
// holds N handshakes in flight; print {"held": N, ...} once every one has had
// the server's first flight, keep them for S seconds, then exit. For
// measuring the terminator's memory per in-flight handshake.

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "loadgen: %s\n", what);
  exit(2);
}

struct Options {
  int port = 0;
  int version = TLS1_3_VERSION;
  bool resume = false;
  int concurrency = 32;
  double seconds = 5;
  double rate = 0;  // 0: closed loop
  std::string path = "/";
  int hold = 0;  // > 0: the --hold mode
};

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  double started = 0;
  bool connected = false;
  bool handshaken = false;
  size_t sent = 0;
  bool got_first_byte = false;
};

class Generator {
 public:
  explicit Generator(const Options& o) : opt_(o) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, o.version);
    SSL_CTX_set_max_proto_version(ctx_, o.version);
    // The certificate is the benchmark's own self-signed one; verifying it
    // would add the same cost to every system, so it is skipped.
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(o.port));
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    request_ = "GET " + o.path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  }

  // Hold: N connections, each left after the server's first flight.
  void Hold() {
    const double start = Now();
    std::vector<Conn*> conns;
    std::vector<epoll_event> events(256);
    int answered = 0;
    // Opened in batches, so the listener's backlog is never what limits N.
    while (answered < opt_.hold) {
      while (in_flight_ < opt_.hold && in_flight_ - answered < 256) conns.push_back(OpenHeld());
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 1000);
      if (n == 0 && Now() - start > 120) Die("--hold: the server stopped answering");
      for (int i = 0; i < n; ++i) {
        Conn* c = static_cast<Conn*>(events[i].data.ptr);
        if (events[i].events & (EPOLLERR | EPOLLHUP)) Die("--hold: a connection was closed");
        if (!c->connected) {
          // Connected: send the ClientHello (OpenSSL then wants to read).
          c->connected = true;
          ERR_clear_error();
          int r = SSL_do_handshake(c->ssl);
          if (r == 1 || SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
            Die("--hold: unexpected handshake state after the ClientHello");
          }
          continue;
        }
        if (!c->handshaken && (events[i].events & EPOLLIN)) {
          // The server's flight arrived; it is not read, and from now on
          // the server waits for our Finished. Stop watching this one.
          c->handshaken = true;
          epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
          ++answered;
        }
      }
    }
    printf("{\"held\": %d, \"seconds_to_open\": %.3f}\n", answered, Now() - start);
    fflush(stdout);
    const double until = Now() + opt_.seconds;
    while (Now() < until) usleep(100 * 1000);
    for (Conn* c : conns) {
      SSL_free(c->ssl);
      close(c->fd);
      delete c;
    }
  }

  void Run() {
    const double start = Now();
    const double end = start + opt_.seconds;
    double next_open = start;
    std::vector<epoll_event> events(256);
    while (true) {
      const double now = Now();
      if (now >= end) break;
      // Open connections: keep C in flight (closed loop), or on schedule.
      if (opt_.rate <= 0) {
        while (in_flight_ < opt_.concurrency) Open();
      } else {
        while (next_open <= now && in_flight_ < opt_.concurrency) {
          Open();
          next_open += 1.0 / opt_.rate;
        }
        if (next_open <= now) {
          ++skipped_;  // at the concurrency cap: the schedule slips
          next_open = now + 1.0 / opt_.rate;
        }
      }
      int timeout_ms = 10;
      if (opt_.rate > 0) {
        timeout_ms = std::max(0, std::min(10, static_cast<int>((next_open - Now()) * 1000)));
      }
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout_ms);
      for (int i = 0; i < n; ++i) Step(static_cast<Conn*>(events[i].data.ptr));
    }
    const double elapsed = Now() - start;
    Report(elapsed);
  }

 private:
  // Connect starts one connection: a non-blocking socket in the epoll set,
  // its connect() under way, an SSL ready for the client side of the
  // handshake (offering `session` if not null). Returns the connection, with
  // connect_failed set if connect() failed at once.
  Conn* Connect(SSL_SESSION* session, bool* connect_failed) {
    Conn* c = new Conn();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) Die("socket (raise the open-files limit?)");
    const int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->started = Now();
    c->ssl = SSL_new(ctx_);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (session != nullptr) SSL_set_session(c->ssl, session);
    SSL_set_connect_state(c->ssl);
    ++in_flight_;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, c->fd, &ev) != 0) Die("epoll_ctl");
    int r = connect(c->fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
    *connect_failed = r != 0 && errno != EINPROGRESS;
    return c;
  }

  Conn* OpenHeld() {
    bool failed = false;
    Conn* c = Connect(nullptr, &failed);
    if (failed) Die("--hold: connect failed");
    return c;
  }

  void Open() {
    bool failed = false;
    Conn* c = Connect(opt_.resume ? session_ : nullptr, &failed);
    if (failed) Finish(c, false);
  }

  void Step(Conn* c) {
    if (!c->handshaken) {
      ERR_clear_error();
      int r = SSL_do_handshake(c->ssl);
      if (r != 1) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        Finish(c, false);
        return;
      }
      c->handshaken = true;
      if (SSL_session_reused(c->ssl)) ++resumed_;
    }
    while (c->sent < request_.size()) {
      int w =
          SSL_write(c->ssl, request_.data() + c->sent, static_cast<int>(request_.size() - c->sent));
      if (w <= 0) {
        int e = SSL_get_error(c->ssl, w);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        Finish(c, false);
        return;
      }
      c->sent += static_cast<size_t>(w);
    }
    char buf[16384];
    for (;;) {
      int r = SSL_read(c->ssl, buf, sizeof buf);
      if (r > 0) {
        bytes_ += r;
        if (!c->got_first_byte) {
          c->got_first_byte = true;
          latencies_.push_back(Now() - c->started);
        }
        continue;
      }
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
      // close_notify, or a TCP close after the response: done.
      Finish(c, c->got_first_byte);
      return;
    }
  }

  void Finish(Conn* c, bool ok) {
    if (ok) {
      ++completed_;
      // Our close_notify, as any client that is done; without it OpenSSL
      // takes the connection for a broken one and its session for unusable.
      (void)SSL_shutdown(c->ssl);
      if (opt_.resume && SSL_get0_session(c->ssl) != nullptr) {
        // The newest session carries the newest ticket.
        SSL_SESSION* s = SSL_get1_session(c->ssl);
        if (SSL_SESSION_is_resumable(s)) {
          if (session_ != nullptr) SSL_SESSION_free(session_);
          session_ = s;
        } else {
          SSL_SESSION_free(s);
        }
      }
    } else {
      ++failed_;
    }
    SSL_free(c->ssl);
    close(c->fd);
    --in_flight_;
    delete c;
  }

  void Report(double elapsed) {
    std::sort(latencies_.begin(), latencies_.end());
    auto pct = [&](double p) {
      if (latencies_.empty()) return 0.0;
      size_t i = std::min(latencies_.size() - 1, static_cast<size_t>(p * latencies_.size()));
      return latencies_[i] * 1e3;
    };
    printf(
        "{\"completed\": %ld, \"failed\": %ld, \"resumed\": %ld, \"seconds\": %.3f, "
        "\"rate\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"schedule_slips\": %ld, "
        "\"bytes\": %lld, \"mib_per_s\": %.2f}\n",
        completed_, failed_, resumed_, elapsed, completed_ / elapsed, pct(0.50), pct(0.99),
        skipped_, bytes_, bytes_ / elapsed / (1 << 20));
  }

  Options opt_;
  SSL_CTX* ctx_ = nullptr;
  SSL_SESSION* session_ = nullptr;
  int ep_ = -1;
  sockaddr_in addr_{};
  int in_flight_ = 0;
  std::string request_;
  long completed_ = 0, failed_ = 0, resumed_ = 0, skipped_ = 0;
  long long bytes_ = 0;
  std::vector<double> latencies_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Die(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--port") {
      o.port = atoi(value());
    } else if (a == "--tls") {
      std::string v = value();
      if (v == "1.2") {
        o.version = TLS1_2_VERSION;
      } else if (v == "1.3") {
        o.version = TLS1_3_VERSION;
      } else {
        Die("--tls takes 1.2 or 1.3");
      }
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--concurrency") {
      o.concurrency = atoi(value());
    } else if (a == "--seconds") {
      o.seconds = atof(value());
    } else if (a == "--rate") {
      o.rate = atof(value());
    } else if (a == "--path") {
      o.path = value();
      if (o.path.empty() || o.path[0] != '/' ||
          o.path.find_first_of(" \r\n") != std::string::npos) {
        Die("--path takes an absolute path without spaces");
      }
    } else if (a == "--hold") {
      o.hold = atoi(value());
      if (o.hold < 1) Die("--hold takes a positive count");
    } else {
      Die(("unknown argument " + a +
           "; usage: loadgen --port N [--tls 1.2|1.3] [--resume] [--concurrency C] "
           "[--seconds S] [--rate R] [--path P] [--hold N]")
              .c_str());
    }
  }
  if (o.port <= 0 || o.port > 65535) Die("--port is required (1..65535)");
  if (o.concurrency < 1 || o.seconds <= 0) Die("--concurrency and --seconds must be positive");
  if (o.hold > 0) {
    Generator(o).Hold();
  } else {
    Generator(o).Run();
  }
  return 0;
}
