// raw_openssl: the ceiling for any terminator built on this OpenSSL - the
// same handshakes as the benchmark's (ECDSA P-256 certificate, X25519, TLS
// 1.3 or TLS 1.2 ECDHE-ECDSA, tickets as OpenSSL issues them by default,
// full or resumed) between a client and a server SSL in one process over a
// memory BIO pair: no sockets, no syscalls, no event loop. Only the server
// side's calls are timed (thread CPU time), so the figure is server
// handshakes per CPU-second, comparable with a terminator's handshakes per
// CPU-second of its own processes.
//
//   raw_openssl --cert PEM --key PEM [--tls 1.2|1.3] [--resume] [--seconds S]
//               [--tickets N]
//   raw_openssl --cert PEM --key PEM --hold N [--tls 1.2|1.3]
//
// Prints one JSON object. --hold N: N server handshakes left in flight, each
// having answered the ClientHello and waiting for the client's Finished;
// prints the heap bytes (malloc's in-use count, mallinfo2) the server side
// holds per handshake - OpenSSL's own floor for a terminator's memory per
// in-flight handshake.

#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <string>
#include <vector>

namespace {

double ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double Wall() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "raw_openssl: %s\n", what.c_str());
  ERR_print_errors_fp(stderr);
  exit(2);
}

// One handshake; returns the server's CPU seconds for it, or -1.
double Handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx, SSL_SESSION** session, bool resume,
                 bool* reused) {
  SSL* server = SSL_new(server_ctx);
  SSL* client = SSL_new(client_ctx);
  BIO *sb, *cb;
  BIO_new_bio_pair(&sb, 1 << 16, &cb, 1 << 16);
  SSL_set_bio(server, sb, sb);
  SSL_set_bio(client, cb, cb);
  SSL_set_accept_state(server);
  SSL_set_connect_state(client);
  SSL_set_tlsext_host_name(client, "localhost");
  if (resume && *session != nullptr) SSL_set_session(client, *session);
  double server_cpu = 0;
  bool server_done = false, client_done = false;
  for (int round = 0; round < 20 && !(server_done && client_done); ++round) {
    if (!client_done) {
      int r = SSL_do_handshake(client);
      if (r == 1) {
        client_done = true;
      } else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ) {
        return -1;
      }
    }
    if (!server_done) {
      const double t0 = ThreadCpu();
      int r = SSL_do_handshake(server);
      server_cpu += ThreadCpu() - t0;
      if (r == 1) {
        server_done = true;
      } else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ) {
        return -1;
      }
    }
  }
  if (!server_done || !client_done) return -1;
  // The client reads the server's tickets (TLS 1.3 sends them after the
  // handshake) so that its session can resume.
  char buf[1];
  (void)SSL_read(client, buf, sizeof buf);  // WANT_READ once the tickets are in
  *reused = SSL_session_reused(server) == 1;
  if (resume) {
    SSL_SESSION* s = SSL_get1_session(client);
    if (*session != nullptr) SSL_SESSION_free(*session);
    *session = s;
  }
  // As after a close_notify each way: OpenSSL forgets the session of a
  // connection that was not shut down.
  SSL_set_shutdown(server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(server);
  SSL_free(client);
  return server_cpu;
}

size_t HeapInUse() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;  // small chunks in use + mmap'd ones
}

// --hold: the server side's heap per in-flight handshake. Only the growth
// during the server's own calls is counted (one thread: nothing else runs),
// so the client objects and the BIO pairs in this process do not add to it.
void Hold(SSL_CTX* server_ctx, SSL_CTX* client_ctx, int n) {
  // As tlsd: record buffers go back to the heap while a connection waits.
  SSL_CTX_set_mode(server_ctx, SSL_MODE_RELEASE_BUFFERS);
  std::vector<SSL*> ssls;
  size_t server_bytes = 0;
  for (int i = 0; i < n; ++i) {
    SSL* client = SSL_new(client_ctx);
    BIO *sb, *cb;
    BIO_new_bio_pair(&sb, 1 << 16, &cb, 1 << 16);
    SSL_set_bio(client, cb, cb);
    SSL_set_connect_state(client);
    SSL_set_tlsext_host_name(client, "localhost");
    if (SSL_do_handshake(client) == 1) Die("--hold: client finished early");
    const size_t before = HeapInUse();
    SSL* server = SSL_new(server_ctx);
    SSL_set_bio(server, sb, sb);
    SSL_set_accept_state(server);
    int r = SSL_do_handshake(server);  // reads the ClientHello, writes its flight
    if (r == 1 || SSL_get_error(server, r) != SSL_ERROR_WANT_READ) Die("--hold: server state");
    server_bytes += HeapInUse() - before;
    ssls.push_back(client);
    ssls.push_back(server);
  }
  printf("{\"held\": %d, \"server_heap_bytes\": %zu, \"per_handshake_bytes\": %zu}\n", n,
         server_bytes, server_bytes / static_cast<size_t>(n));
  for (SSL* s : ssls) SSL_free(s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string cert, key;
  int version = TLS1_3_VERSION;
  bool resume = false;
  double seconds = 5;
  int tickets = -1;  // OpenSSL's default
  int hold = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--cert") {
      cert = value();
    } else if (a == "--key") {
      key = value();
    } else if (a == "--tls") {
      version = value() == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
    } else if (a == "--resume") {
      resume = true;
    } else if (a == "--seconds") {
      seconds = atof(value().c_str());
    } else if (a == "--tickets") {
      tickets = atoi(value().c_str());
    } else if (a == "--hold") {
      hold = atoi(value().c_str());
      if (hold < 1) Die("--hold takes a positive count");
    } else {
      Die("unknown argument " + a);
    }
  }
  if (cert.empty() || key.empty()) Die("--cert and --key are required");

  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(server_ctx, cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(server_ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    Die("cannot load " + cert + " / " + key);
  }
  SSL_CTX_set_min_proto_version(server_ctx, TLS1_2_VERSION);
  SSL_CTX_set_session_id_context(server_ctx, reinterpret_cast<const unsigned char*>("raw"), 3);
  if (tickets >= 0) SSL_CTX_set_num_tickets(server_ctx, static_cast<size_t>(tickets));
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(client_ctx, version);
  SSL_CTX_set_max_proto_version(client_ctx, version);
  SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(client_ctx, SSL_SESS_CACHE_OFF);

  if (hold > 0) {
    Hold(server_ctx, client_ctx, hold);
    return 0;
  }

  SSL_SESSION* session = nullptr;
  long done = 0, reused = 0;
  double server_cpu = 0;
  const double end = Wall() + seconds;
  while (Wall() < end) {
    bool r = false;
    double cpu = Handshake(server_ctx, client_ctx, &session, resume, &r);
    if (cpu < 0) Die("handshake failed");
    server_cpu += cpu;
    ++done;
    if (r) ++reused;
  }
  printf(
      "{\"handshakes\": %ld, \"resumed\": %ld, \"server_cpu_seconds\": %.4f, "
      "\"per_cpu_second\": %.1f}\n",
      done, reused, server_cpu, done / server_cpu);
  SSL_SESSION_free(session);
  SSL_CTX_free(client_ctx);
  SSL_CTX_free(server_ctx);
  return 0;
}
