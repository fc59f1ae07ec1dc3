/* tlsd-demo-backend — a minimal backend for tlsd, in plain C against tlsfd.h.
 *
 *   tlsd-demo-backend --control PATH --backend NAME [--echo | --file F]   (pull)
 *   tlsd-demo-backend --listen PATH [--mode OCTAL] [--echo | --file F]    (push)
 *   tlsd-demo-backend --systemd NAME [--echo | --file F]                  (push, socket-activated)
 *   tlsd-demo-backend --help | --version
 *
 * For each connection tlsd hands over (one thread each, at most 256 at a
 * time), it reads an HTTP/1.x request header and answers 200 OK with the
 * connection's metadata as text/plain, one "key: value" per line, then
 * closes. With --echo it instead prints the metadata to stderr as one line
 * and echoes every byte back until the client's end of stream. With --file
 * it answers every request with the file F instead, written with sendfile(2)
 * on the connection's socket: with kTLS the kernel encrypts it on its way
 * out, and no byte passes through user space (bench/ measures this).
 *
 * Exit status: 0 for --help and --version (on stdout), 64 for a usage error,
 * 1 for a runtime error (with a message on stderr). It runs until killed
 * otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>

#include "tlsfd.h"

#define PROG "tlsd-demo-backend"
#define EXIT_USAGE 64
#define EXIT_RUNTIME 1
#define MAX_CONNS 256
#define MAX_HEADER 16384

static int g_echo = 0;
static int g_file_fd = -1; /* --file: opened once, read with offsets */
static off_t g_file_size = 0;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_active = 0;

static void print_usage(FILE* out) {
  fprintf(out, "usage: " PROG
               " --control PATH --backend NAME [--echo | --file F]\n"
               "       " PROG
               " --listen PATH [--mode OCTAL] [--echo | --file F]\n"
               "       " PROG
               " --systemd NAME [--echo | --file F]\n"
               "       " PROG " --help | --version\n");
}

static void usage(const char* why) {
  if (why != NULL) {
    fprintf(stderr, PROG ": %s\n", why);
  }
  print_usage(stderr);
  exit(EXIT_USAGE);
}

/* A growable string for the response body. Out of memory ends the process:
 * this is a demo, not a place for partial answers. */
struct buf {
  char* data;
  size_t len;
  size_t cap;
};

static void buf_printf(struct buf* b, const char* fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data == NULL ? NULL : b->data + b->len,
                      b->data == NULL ? 0 : b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      return;
    }
    if (b->data != NULL && (size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap == 0 ? 1024 : b->cap * 2) + (size_t)n;
    char* p = realloc(b->data, cap);
    if (p == NULL) {
      fprintf(stderr, PROG ": out of memory\n");
      exit(EXIT_RUNTIME);
    }
    b->data = p;
    b->cap = cap;
  }
}

/* describe appends the metadata as "key: value" items joined by `sep`. */
static void describe(struct buf* b, const struct tlsfd_info* in, const char* sep) {
  buf_printf(b, "connection_id: %llu%s", (unsigned long long)in->connection_id, sep);
  buf_printf(b, "service: %s%s", in->service, sep);
  buf_printf(b, "backend: %s%s", in->backend, sep);
  buf_printf(b, "sni: %s%s", in->sni, sep);
  buf_printf(b, "alpn: %s%s", in->alpn, sep);
  buf_printf(b, "tls_version: %s%s", in->tls_version_name, sep);
  buf_printf(b, "cipher: %s%s", in->cipher_name, sep);
  buf_printf(b, "tx_path: %s%s", in->tx_path_name, sep);
  buf_printf(b, "rx_path: %s%s", in->rx_path_name, sep);
  buf_printf(b, "path_reason: %s%s", in->path_reason, sep);
  buf_printf(b, "peer: %s%s", in->peer, sep);
  buf_printf(b, "local: %s%s", in->local, sep);
  if (in->has_client_cert) {
    buf_printf(b, "client_cert_subject: %s%s", in->client_cert_subject, sep);
    buf_printf(b, "client_cert_sha256: %s%s", in->client_cert_sha256_hex, sep);
  }
  buf_printf(b, "resumed: %s%s", in->resumed ? "yes" : "no", sep);
  buf_printf(b, "handshake_us: %lu", (unsigned long)in->handshake_us);
}

static int write_all(tlsfd_conn* c, const char* p, size_t len) {
  while (len > 0) {
    ssize_t n = tlsfd_write(c, p, len);
    if (n == -EINTR) {
      continue;
    }
    if (n < 0) {
      return (int)n;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* write_head writes an HTTP/1.1 response header for a body of body_len
 * bytes; the connection closes after the body. */
static int write_head(tlsfd_conn* c, const char* status, const char* content_type,
                      long long body_len) {
  char head[256];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %s\r\nContent-Type: %s\r\nConnection: close\r\n"
                   "Content-Length: %lld\r\n\r\n",
                   status, content_type, body_len);
  return write_all(c, head, (size_t)n);
}

static void reply(tlsfd_conn* c, const char* status, const char* body, size_t body_len) {
  if (write_head(c, status, "text/plain", (long long)body_len) == 0) {
    (void)write_all(c, body, body_len); /* a failed write means the client is gone */
  }
}

/* Answers with the --file: its header through libtlsfd, its bytes with
 * sendfile(2) straight from the page cache to the socket. */
static void reply_file(tlsfd_conn* c) {
  if (write_head(c, "200 OK", "application/octet-stream", (long long)g_file_size) != 0) {
    return;
  }
  off_t off = 0;
  while (off < g_file_size) {
    ssize_t sent = sendfile(tlsfd_conn_fd(c), g_file_fd, &off, (size_t)(g_file_size - off));
    if (sent < 0 && errno == EINTR) {
      continue;
    }
    if (sent <= 0) {
      return; /* the client is gone (or the file shrank): nothing more to do */
    }
  }
}

static void serve_http(tlsfd_conn* c) {
  char* req = malloc(MAX_HEADER);
  if (req == NULL) {
    return;
  }
  size_t len = 0;
  int complete = 0;
  while (len < MAX_HEADER && !complete) {
    ssize_t n = tlsfd_read(c, req + len, MAX_HEADER - len);
    if (n == -EINTR) {
      continue;
    }
    if (n <= 0) {
      break; /* end of stream or error: nothing to answer */
    }
    size_t from = len >= 3 ? len - 3 : 0;
    len += (size_t)n;
    for (size_t i = from; i + 4 <= len; ++i) {
      if (memcmp(req + i, "\r\n\r\n", 4) == 0) {
        complete = 1;
        break;
      }
    }
  }
  if (!complete) {
    if (len >= MAX_HEADER) {
      static const char msg[] = "request header larger than 16 KiB\n";
      reply(c, "431 Request Header Fields Too Large", msg, sizeof(msg) - 1);
    }
    free(req);
    return;
  }
  /* The request line must end in " HTTP/1.x". */
  char* eol = memchr(req, '\r', len);
  int ok = eol != NULL && eol - req >= 9 && memcmp(eol - 9, " HTTP/1.", 8) == 0;
  free(req);
  if (!ok) {
    static const char msg[] = "not an HTTP/1.x request\n";
    reply(c, "400 Bad Request", msg, sizeof(msg) - 1);
    return;
  }
  if (g_file_fd >= 0) {
    reply_file(c);
    return;
  }
  struct tlsfd_info info;
  memset(&info, 0, sizeof(info));
  info.struct_size = sizeof(info);
  if (tlsfd_conn_info(c, &info) != 0) {
    static const char msg[] = "no connection metadata\n";
    reply(c, "500 Internal Server Error", msg, sizeof(msg) - 1);
    return;
  }
  struct buf body = {0};
  describe(&body, &info, "\n");
  buf_printf(&body, "\n");
  reply(c, "200 OK", body.data, body.len);
  free(body.data);
}

static void serve_echo(tlsfd_conn* c) {
  struct tlsfd_info info;
  memset(&info, 0, sizeof(info));
  info.struct_size = sizeof(info);
  if (tlsfd_conn_info(c, &info) == 0) {
    struct buf line = {0};
    describe(&line, &info, "; ");
    fprintf(stderr, PROG ": connection: %s\n", line.data);
    free(line.data);
  }
  char data[16384];
  for (;;) {
    ssize_t n = tlsfd_read(c, data, sizeof(data));
    if (n == -EINTR) {
      continue;
    }
    if (n < 0) {
      int alert = tlsfd_conn_last_alert(c);
      fprintf(stderr, PROG ": read: %s%s%s\n", tlsfd_strerror((int)n), alert >= 0 ? ", alert " : "",
              alert >= 0 ? tlsfd_alert_name(alert) : "");
      return;
    }
    if (n == 0) {
      return;
    }
    if (write_all(c, data, (size_t)n) != 0) {
      return;
    }
  }
}

static void* conn_thread(void* arg) {
  tlsfd_conn* c = arg;
  if (g_echo) {
    serve_echo(c);
  } else {
    serve_http(c);
  }
  tlsfd_close(c);
  pthread_mutex_lock(&g_mu);
  --g_active;
  pthread_cond_signal(&g_cv);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char** argv) {
  const char *control = NULL, *backend = NULL, *listen_path = NULL, *systemd_name = NULL;
  const char* file = NULL;
  long mode = 0660;
  int have_mode = 0;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char** slot = NULL;
    if (strcmp(a, "--control") == 0) {
      slot = &control;
    } else if (strcmp(a, "--backend") == 0) {
      slot = &backend;
    } else if (strcmp(a, "--listen") == 0) {
      slot = &listen_path;
    } else if (strcmp(a, "--systemd") == 0) {
      slot = &systemd_name;
    } else if (strcmp(a, "--file") == 0) {
      slot = &file;
    } else if (strcmp(a, "--mode") == 0) {
      if (i + 1 >= argc) {
        usage("--mode needs a value");
      }
      char* end = NULL;
      mode = strtol(argv[++i], &end, 8);
      if (*argv[i] == '\0' || *end != '\0' || mode < 0 || mode > 07777) {
        usage("--mode must be an octal file mode such as 0660");
      }
      have_mode = 1;
      continue;
    } else if (strcmp(a, "--echo") == 0) {
      g_echo = 1;
      continue;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      print_usage(stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
      /* The demo ships with the library: its version is libtlsfd's. */
      printf(PROG " %s\n", tlsfd_version());
      return 0;
    } else {
      fprintf(stderr, PROG ": unknown argument '%s'\n", a);
      usage(NULL);
    }
    if (i + 1 >= argc || argv[i + 1][0] == '\0') {
      fprintf(stderr, PROG ": %s needs a value\n", a);
      usage(NULL);
    }
    if (*slot != NULL) {
      fprintf(stderr, PROG ": %s given twice\n", a);
      usage(NULL);
    }
    *slot = argv[++i];
  }
  if (file != NULL) {
    if (g_echo) {
      usage("--echo and --file exclude each other");
    }
    struct stat st;
    g_file_fd = open(file, O_RDONLY | O_CLOEXEC);
    if (g_file_fd < 0 || fstat(g_file_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      fprintf(stderr, PROG ": --file %s: %s\n", file,
              g_file_fd < 0 ? strerror(errno) : "not a regular file");
      return EXIT_RUNTIME;
    }
    g_file_size = st.st_size;
  }
  int modes = (control != NULL) + (listen_path != NULL) + (systemd_name != NULL);
  if (modes != 1) {
    usage("give exactly one of --control, --listen, --systemd");
  }
  if ((control != NULL) != (backend != NULL)) {
    usage("--control and --backend go together");
  }
  if (have_mode && listen_path == NULL) {
    usage("--mode goes with --listen");
  }

  /* The library never raises SIGPIPE; stderr writes cannot either. Ignore it
   * anyway, as a server should. */
  signal(SIGPIPE, SIG_IGN);

  tlsfd_server* srv = NULL;
  int rc;
  if (control != NULL) {
    rc = tlsfd_server_subscribe(control, backend, &srv);
  } else if (listen_path != NULL) {
    rc = tlsfd_server_listen(listen_path, (mode_t)mode, &srv);
  } else {
    rc = tlsfd_server_from_systemd(systemd_name, &srv);
  }
  if (rc < 0) {
    fprintf(stderr, PROG ": %s: %s\n",
            control != NULL       ? "subscribe"
            : listen_path != NULL ? "listen"
                                  : "systemd socket",
            tlsfd_last_error()[0] != '\0' ? tlsfd_last_error() : tlsfd_strerror(rc));
    return EXIT_RUNTIME;
  }
  if (control != NULL) {
    fprintf(stderr, PROG ": ready: subscribed to backend '%s' at %s\n", backend, control);
  } else if (listen_path != NULL) {
    fprintf(stderr, PROG ": ready: listening at %s\n", listen_path);
  } else {
    fprintf(stderr, PROG ": ready: listening on systemd socket '%s'\n", systemd_name);
  }

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (;;) {
    pthread_mutex_lock(&g_mu);
    while (g_active >= MAX_CONNS) {
      pthread_cond_wait(&g_cv, &g_mu);
    }
    pthread_mutex_unlock(&g_mu);

    tlsfd_conn* c = NULL;
    rc = tlsfd_accept(srv, &c, 0);
    if (rc == -EINTR) {
      continue;
    }
    if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
      fprintf(stderr, PROG ": accept: %s (retrying)\n", tlsfd_strerror(rc));
      sleep_ms(100);
      continue;
    }
    if (rc < 0) {
      fprintf(stderr, PROG ": accept: %s\n",
              tlsfd_last_error()[0] != '\0' ? tlsfd_last_error() : tlsfd_strerror(rc));
      tlsfd_server_free(srv);
      return EXIT_RUNTIME;
    }
    pthread_mutex_lock(&g_mu);
    ++g_active;
    pthread_mutex_unlock(&g_mu);
    pthread_t t;
    int err = pthread_create(&t, &attr, conn_thread, c);
    if (err != 0) {
      fprintf(stderr, PROG ": pthread_create: %s\n", strerror(err));
      tlsfd_close(c);
      pthread_mutex_lock(&g_mu);
      --g_active;
      pthread_mutex_unlock(&g_mu);
    }
  }
}
