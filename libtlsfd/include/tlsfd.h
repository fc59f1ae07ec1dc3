/* tlsfd.h — receive TLS-secured sockets from tlsd.
 *
 * tlsd terminates TLS: it accepts TCP connections, runs the handshake and
 * then hands each connection to a backend process (your program) together
 * with a small metadata record. What you get is a socket on which you read
 * and write plaintext:
 *
 *   - a TCP socket with kernel TLS installed ("ktls-sw"/"ktls-hw"): the
 *     kernel encrypts what you write and decrypts what you read; sendfile()
 *     and splice() work on it. The private key and the TLS secrets stay in
 *     tlsd.
 *   - or, when the kernel cannot take the session and tlsd's policy allows
 *     it, one end of an AF_UNIX stream socketpair ("relay"): tlsd encrypts
 *     and decrypts in user space. Same plaintext, same API.
 *
 * Two ways to receive connections:
 *
 *   pull  tlsfd_server_subscribe(): you connect to tlsd's control socket and
 *         subscribe to one backend name from tlsd's configuration.
 *   push  tlsfd_server_listen() / _from_fd() / _from_systemd(): you listen on
 *         a SOCK_SEQPACKET socket of your own and tlsd connects to it.
 *
 * Either way, tlsfd_accept() returns one connection at a time:
 *
 *     tlsfd_server *srv;
 *     int rc = tlsfd_server_subscribe("/run/tlsd/control.sock", "web", &srv);
 *     if (rc < 0) { fprintf(stderr, "%s\n", tlsfd_last_error()); exit(1); }
 *     for (;;) {
 *       tlsfd_conn *c;
 *       if (tlsfd_accept(srv, &c, 0) < 0) continue;
 *       char buf[4096];
 *       ssize_t n = tlsfd_read(c, buf, sizeof(buf));
 *       if (n > 0) tlsfd_write(c, buf, (size_t)n);
 *       tlsfd_close(c);
 *     }
 *
 * Conventions:
 *   - Every function that can fail returns a negative errno value (-EINVAL,
 *     -ECONNRESET, ...) and never sets errno for you to read. 0 or a
 *     non-negative count means success.
 *   - Objects are opaque. A function that creates one stores it in its
 *     `out` argument only on success (*out is set to NULL on failure).
 *   - All fds the library creates or receives are close-on-exec.
 *   - The library never logs and never writes to stdout/stderr; setup and
 *     accept failures leave a human-readable reason in tlsfd_last_error().
 *   - The library never raises SIGPIPE (writes use MSG_NOSIGNAL).
 *   - Threads: one tlsfd_server must not be used by two threads at once.
 *     Distinct connections are independent. On one connection, one thread
 *     may call tlsfd_read() while another calls tlsfd_write()/
 *     tlsfd_shutdown(); everything else (and tlsfd_close()) needs exclusive
 *     use.
 *
 * The header is plain C99 and stable: the ABI is versioned by the shared
 * library's SONAME (libtlsfd.so.0). struct tlsfd_info and
 * struct tlsfd_server_stats start with a size field so that they can grow
 * without breaking old binaries.
 */
#ifndef TLSFD_H_
#define TLSFD_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TLSFD_EXPORT __attribute__((visibility("default")))
#else
#define TLSFD_EXPORT
#endif

/* The version of this header. tlsfd_version() returns the library's. */
#define TLSFD_VERSION_MAJOR 0
#define TLSFD_VERSION_MINOR 1
#define TLSFD_VERSION_PATCH 0

/* tlsfd_version returns the library's version as "MAJOR.MINOR.PATCH". The
 * string is static. */
TLSFD_EXPORT const char* tlsfd_version(void);

/* tlsfd_server is a source of connections: a pull subscription to tlsd or a
 * push listener that tlsd connects to. Create one with tlsfd_server_*(),
 * free it with tlsfd_server_free(). */
typedef struct tlsfd_server tlsfd_server;

/* tlsfd_conn is one TLS connection handed over by tlsd: the socket plus its
 * metadata. Obtained from tlsfd_accept(), released by tlsfd_close(). */
typedef struct tlsfd_conn tlsfd_conn;

/* ---------------------------------------------------------------------------
 * Servers
 * ------------------------------------------------------------------------- */

/* tlsfd_server_subscribe connects to tlsd's control socket at
 * `control_socket` (an AF_UNIX SOCK_SEQPACKET path, e.g. /run/tlsd/control.sock),
 * subscribes to the connections of `backend` (a backend name from tlsd's
 * configuration: 1..64 of [A-Za-z0-9_.-]) and waits up to 10 seconds for
 * tlsd's answer. tlsd checks the caller's uid/gid (SO_PEERCRED) against the
 * backend's policy.
 *
 * On success stores a new server in *out (the caller owns it) and returns 0.
 * Errors:
 *   -EINVAL        a NULL argument, or `backend` is not a valid name
 *   -ENOENT, -ECONNREFUSED, -EACCES, ...
 *                  connecting to `control_socket` failed (tlsd not running,
 *                  no permission on the socket file)
 *   -ETIMEDOUT     tlsd did not answer within 10 seconds
 *   -EPROTO        tlsd's answer was not a valid HELLO_OK or ERROR frame
 *   -<code>        tlsd refused the subscription with an ERROR frame: its
 *                  code is returned as is, e.g. -EACCES (tlsd's policy
 *                  does not allow this user) or -ENOENT/-ECONNREFUSED (no
 *                  such backend); its message is in tlsfd_last_error()
 *   -ENOMEM        out of memory */
TLSFD_EXPORT int tlsfd_server_subscribe(const char* control_socket, const char* backend,
                                        tlsfd_server** out);

/* tlsfd_server_listen creates a push server: it binds a SOCK_SEQPACKET
 * socket at `socket_path` (replacing a stale socket file left there, but
 * never a socket another process still listens on, nor any other kind of
 * file), chmods it to `mode` and listens. Configure tlsd's
 * backend with this path. Since anyone who can connect to the socket can
 * hand you "connections" with metadata of their choosing, pick `mode` so
 * that only tlsd can connect (0600 if tlsd runs as your user, 0660 with a
 * group shared with tlsd's user), or restrict peers with
 * tlsfd_server_require_peer_uid(). tlsfd_server_free() removes the socket
 * file.
 *
 * On success stores a new server in *out (the caller owns it) and returns 0.
 * Errors: -EINVAL (NULL argument, path empty or longer than 107 bytes),
 * -EEXIST (a live process listens on that socket), -EADDRINUSE (another
 * kind of file exists at the path), -EACCES, -ENOENT (directory missing),
 * -ENOMEM, or another errno from socket/bind/chmod/listen. */
TLSFD_EXPORT int tlsfd_server_listen(const char* socket_path, mode_t mode, tlsfd_server** out);

/* tlsfd_server_from_fd creates a push server from an already listening
 * AF_UNIX SOCK_SEQPACKET socket, for example one passed by systemd socket
 * activation (ListenSequentialPacket=). The socket is switched to
 * non-blocking and close-on-exec. On success the server owns
 * `listening_fd` and closes it in tlsfd_server_free(); on failure the fd is
 * left open and still belongs to the caller.
 *
 * Errors: -EINVAL (`out` is NULL, or the socket is not listening), -EBADF,
 * -ENOTSOCK (not a socket), -EAFNOSUPPORT (not AF_UNIX), -EPROTOTYPE (not
 * SOCK_SEQPACKET), -ENOMEM. */
TLSFD_EXPORT int tlsfd_server_from_fd(int listening_fd, tlsfd_server** out);

/* tlsfd_server_from_systemd finds, among the fds passed by systemd socket
 * activation (sd_listen_fds_with_names(3)), the one whose
 * FileDescriptorName= is `fdname`, and makes a push server of it as
 * tlsfd_server_from_fd() does. With `fdname` NULL, exactly one fd must have
 * been passed and that one is used. The environment ($LISTEN_FDS, ...) is
 * left as it is, so the function can be called once per name; the fds it
 * does not take are left alone.
 *
 * Errors: -ENOENT (no fds passed, or none with that name), -ENOTUNIQ
 * (`fdname` is NULL but several fds were passed, or the name is not
 * unique), -EINVAL/-ENOTSOCK/-EPROTOTYPE (the fd is not a listening
 * AF_UNIX SOCK_SEQPACKET socket), or an errno from sd_listen_fds. */
TLSFD_EXPORT int tlsfd_server_from_systemd(const char* fdname, tlsfd_server** out);

/* tlsfd_server_require_peer_uid restricts which peers the server takes
 * connections from to the local user `uid` (tlsd's user), as told by the
 * kernel (SO_PEERCRED). Push: later links from any other user are closed
 * on arrival (counted in links_refused). Pull: the control socket's peer
 * is checked now. A later call replaces the uid.
 *
 * Errors: -EINVAL (NULL server), -EPERM (pull: the
 * control socket's peer is another user; the server stays usable and it is
 * up to the caller to free it). */
TLSFD_EXPORT int tlsfd_server_require_peer_uid(tlsfd_server* srv, uid_t uid);

/* tlsfd_server_set_control_socket sets where connections accepted from now
 * on hand their control records (post-handshake TLS messages) to tlsd: the
 * path of tlsd's control_socket. A pull server uses the socket it
 * subscribed on; a push server starts with $TLSFD_CONTROL_SOCKET if that is
 * an absolute path, else "/run/tlsd/control.sock" (tlsd's default).
 *
 * Errors: -EINVAL (NULL server or path, or a path that is not absolute or is
 * longer than 107 bytes). */
TLSFD_EXPORT int tlsfd_server_set_control_socket(tlsfd_server* srv, const char* path);

/* tlsfd_server_fd returns an fd to watch with poll/epoll for POLLIN: it is
 * readable when tlsfd_accept() may make progress (a connection, a new or
 * closed push link, or an error to report). For pull servers it is the
 * control socket, for push servers an internal epoll fd. The fd stays
 * owned by the server: do not read from it or close it. Returns -EINVAL for
 * a NULL server. */
TLSFD_EXPORT int tlsfd_server_fd(const tlsfd_server* srv);

/* Flags for tlsfd_accept. */
/* TLSFD_NONBLOCK: do not wait; return -EAGAIN when no connection is ready. */
#define TLSFD_NONBLOCK 0x1
/* TLSFD_CONN_NONBLOCK: put the accepted connection's fd in non-blocking
 * mode (O_NONBLOCK). Without it, the fd is made blocking. */
#define TLSFD_CONN_NONBLOCK 0x2

/* tlsfd_accept returns the next connection tlsd handed over. It waits
 * until one arrives unless `flags` has TLSFD_NONBLOCK. On success stores
 * the connection in *out (the caller owns it and releases it with
 * tlsfd_close()) and returns 0.
 *
 * Frames from tlsd that cannot be used are dropped, together with any fd
 * they carried, and accept goes on with the next one; they are counted in
 * struct tlsfd_server_stats and described in tlsfd_last_error(). That
 * covers a CONNECTION frame with malformed metadata or without an fd, a
 * socket that is not what the metadata says (a "ktls" connection must be a
 * TCP socket with the kernel's "tls" ULP, a "relay" one an AF_UNIX stream
 * socket), and frames of any other type. Push links that close or fail are
 * dropped quietly; new ones are accepted (up to 64 at a time).
 *
 * Errors:
 *   -EINVAL        NULL argument or unknown flag bits
 *   -EAGAIN        TLSFD_NONBLOCK and nothing is ready
 *   -EINTR         a signal handler ran while waiting
 *   -ECONNRESET    pull: tlsd closed the subscription (it stopped or
 *                  restarted); this server will not deliver any more
 *                  connections: free it and subscribe again
 *   -<code>        pull: tlsd ended the subscription with an ERROR frame
 *                  carrying this errno code (message in tlsfd_last_error());
 *                  as for -ECONNRESET, the server is finished
 *   -EMFILE, -ENFILE, -ENOBUFS, -ENOMEM
 *                  out of resources; the connection or link that could not
 *                  be received is lost, the server stays usable */
TLSFD_EXPORT int tlsfd_accept(tlsfd_server* srv, tlsfd_conn** out, int flags);

/* struct tlsfd_server_stats: counters since the server was created. Set
 * struct_size to sizeof(struct tlsfd_server_stats) before the call. */
struct tlsfd_server_stats {
  size_t struct_size;
  uint64_t connections_accepted; /* returned by tlsfd_accept */
  uint64_t frames_dropped;       /* unusable frames (their fds closed) */
  uint64_t links_accepted;       /* push: links tlsd opened */
  uint64_t links_closed;         /* push: links that closed or failed */
  uint64_t links_refused;        /* push: over the limit, or wrong peer uid */
};

/* tlsfd_server_get_stats copies the counters into *out, writing at most
 * out->struct_size bytes. Errors: -EINVAL (NULL argument, or struct_size
 * smaller than the first version of the struct). */
TLSFD_EXPORT int tlsfd_server_get_stats(const tlsfd_server* srv, struct tlsfd_server_stats* out);

/* tlsfd_server_free closes the server's sockets (for a pull server this
 * ends the subscription; a push server made by tlsfd_server_listen()
 * removes its socket file) and frees it. Connections already accepted are
 * independent and stay open. NULL is ignored. */
TLSFD_EXPORT void tlsfd_server_free(tlsfd_server* srv);

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

/* tlsfd_conn_fd returns the connection's socket, for poll/epoll, sendfile,
 * splice, setsockopt, shutdown(SHUT_RD) and the like. It stays owned by the
 * connection: do not close it. Writing to it directly is fine (it carries
 * plaintext). Reading from it directly is not advised on a kTLS socket: a
 * plain read() fails with EIO when a non-data record (an alert) arrives;
 * use tlsfd_read(). Returns -EINVAL for NULL. */
TLSFD_EXPORT int tlsfd_conn_fd(const tlsfd_conn* conn);

/* Outgoing connections. tlsd connects, runs the TLS handshake with the
 * client profile's trust store and identity (the app never holds the key),
 * verifies the server's chain and name (always), installs kTLS and returns
 * the socket; tlsd relays when the kernel cannot take the session. Which
 * local users may use which profile, to which destinations, is tlsd's
 * configuration ([[client_profile]] in tlsd.conf(5)).
 *
 * struct_size must be set to sizeof(struct tlsfd_connect_params). */
struct tlsfd_connect_params {
  size_t struct_size;
  const char* profile;     /* client profile name */
  const char* host;        /* DNS name or IP address (no brackets) */
  uint16_t port;           /* 1..65535 */
  const char* sni;         /* NULL: `host` when it is a name */
  const char* const* alpn; /* NULL, or a NULL-terminated list (at most 8) */
};

/* tlsfd_connect asks tlsd (at `control_socket`, e.g.
 * "/run/tlsd/control.sock") for a connection and waits for it (tlsd bounds
 * the wait by the profile's connect_timeout_ms). `flags` may hold
 * TLSFD_CONN_NONBLOCK. The connection is used like an accepted one:
 * tlsfd_read/write/close, tlsfd_conn_info (service and backend carry the
 * profile's name; peer is the server).
 *
 * Errors, with tlsd's reason in tlsfd_last_error():
 *   -EACCES         this user may not use the profile, or the destination is
 *                   not one of its patterns
 *   -ENOENT         no such profile; or the control socket does not exist
 *   -EKEYREJECTED   the server's certificate failed verification (unknown
 *                   CA, name mismatch, expired, ...: the text says which)
 *   -EPROTO         the handshake failed otherwise (e.g. an alert)
 *   -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, ...: the TCP connection, or
 *                   name resolution (-EHOSTUNREACH)
 *   -EPROTONOSUPPORT  the profile requires kTLS and the kernel cannot take
 *                   the session
 *   -EAGAIN         tlsd has too many outgoing connections in progress
 *   -EINVAL         bad parameters */
TLSFD_EXPORT int tlsfd_connect(const char* control_socket,
                               const struct tlsfd_connect_params* params, int flags,
                               tlsfd_conn** out);

/* tlsfd_read reads up to `len` bytes of plaintext into `buf`, like read(2):
 * it blocks unless the fd is non-blocking (TLSFD_CONN_NONBLOCK), and a
 * short count is normal.
 *
 * Returns the number of bytes read; 0 at the end of the stream, that is
 * when the peer sent close_notify (tlsfd_conn_last_alert() then returns 0)
 * or, less cleanly, closed TCP without it; or a negative errno:
 *   -EAGAIN        non-blocking and nothing to read yet
 *   -EINTR         interrupted by a signal handler
 *   -ECONNRESET    the peer sent a fatal alert (see tlsfd_conn_last_alert()),
 *                  or TCP was reset
 *   -EBADMSG       a record failed to decrypt: the connection is broken
 *   -EPROTO        a record that is not allowed here, or a handshake
 *                  message tlsd refused or could not be asked about
 *                  (tlsfd_last_error() says which)
 *   -EINVAL        NULL conn, or NULL buf with len > 0
 * A TLS handshake message that arrives after the handshake (a TLS 1.3
 * KeyUpdate, a TLS 1.2 renegotiation request) is answered by tlsd, which owns
 * the TLS state: the library hands it over with the socket and the
 * connection's sealed state, over the control socket (see
 * tlsfd_server_set_control_socket), and waits for the answer (at most 10 s,
 * even on a non-blocking connection). After a KeyUpdate tlsd installs the
 * new keys and the read goes on; on a kernel that cannot rekey (before
 * 6.14) tlsd ends the connection with close_notify and the read returns 0.
 * Writes on the same connection wait while tlsd answers.
 * Once it has returned 0, -ECONNRESET, -EBADMSG or -EPROTO it returns the
 * same again. Warning-level alerts that do not end a TLS 1.2 connection
 * (and user_canceled) are skipped, and remembered by
 * tlsfd_conn_last_alert(). The contents of `buf` past the returned count
 * are unspecified. Counts above SSIZE_MAX are clamped. */
TLSFD_EXPORT ssize_t tlsfd_read(tlsfd_conn* conn, void* buf, size_t len);

/* tlsfd_write writes up to `len` bytes of plaintext, like write(2) (short
 * writes are possible; no SIGPIPE). Returns the count written or a
 * negative errno: -EAGAIN, -EINTR, -EPIPE (after tlsfd_shutdown(), after
 * a fatal alert, or the peer is gone), -ECONNRESET, -EINVAL (NULL conn, or
 * NULL buf with len > 0). */
TLSFD_EXPORT ssize_t tlsfd_write(tlsfd_conn* conn, const void* buf, size_t len);

/* tlsfd_shutdown ends the sending direction cleanly: it sends a
 * close_notify alert (kTLS: a TLS alert record; relay: tlsd sends it when
 * it sees the socketpair's write side closed) and shuts down the write side
 * of the socket. Reading stays possible. Idempotent: later calls return 0.
 * On a connection that failed (fatal alert, protocol error) nothing is sent
 * and 0 is returned. Errors: -EINVAL (NULL), -EAGAIN (non-blocking socket
 * with a full send buffer: close_notify was not sent, call again), -EPIPE or
 * -ECONNRESET (the peer is gone). */
TLSFD_EXPORT int tlsfd_shutdown(tlsfd_conn* conn);

/* tlsfd_close calls tlsfd_shutdown() unless that was done already, then
 * closes the socket and frees the connection; pointers obtained from
 * tlsfd_conn_info() become invalid. The connection is freed whatever
 * happens. Returns 0, or the negative errno with which close_notify could
 * not be sent (informational: e.g. -EPIPE when the peer had already gone).
 * NULL is ignored (returns 0). On a kTLS connection closed with input still
 * unread (or after a failure), TCP would answer with a reset that discards
 * what is still queued to go out, the alert included: tlsfd_close then waits
 * up to 250 ms for the peer to acknowledge it first. */
TLSFD_EXPORT int tlsfd_close(tlsfd_conn* conn);

/* tlsfd_conn_last_alert returns the description (0..255) of the last TLS
 * alert the peer sent: 0 is close_notify; a fatal alert is what made
 * tlsfd_read() return -ECONNRESET. Returns -ENOMSG if none has been
 * received (always so for relay connections, where tlsd handles alerts),
 * -EINVAL for NULL. */
TLSFD_EXPORT int tlsfd_conn_last_alert(const tlsfd_conn* conn);

/* tlsfd_alert_name returns the RFC name of a TLS alert description
 * ("close_notify", "handshake_failure", "unrecognized_name", ...) or
 * "unknown". The string is static. */
TLSFD_EXPORT const char* tlsfd_alert_name(int description);

/* Where one direction's TLS records are processed. */
enum tlsfd_path {
  TLSFD_PATH_KTLS_SW = 1, /* kernel TLS, kernel crypto: "ktls-sw" */
  TLSFD_PATH_KTLS_HW = 2, /* kernel TLS, NIC offload: "ktls-hw" */
  TLSFD_PATH_RELAY = 3    /* tlsd relays over a socketpair: "relay" */
};

/* struct tlsfd_info: a connection's metadata as tlsd sent it. The strings
 * are NUL-terminated, never NULL ("" when absent), owned by the connection
 * and valid until tlsfd_close(). Set struct_size to
 * sizeof(struct tlsfd_info) before calling tlsfd_conn_info(); fields may be
 * added at the end in later versions. */
struct tlsfd_info {
  size_t struct_size;
  uint64_t connection_id;       /* tlsd's id, as in its logs */
  const char* service;          /* tlsd service that accepted it */
  const char* backend;          /* backend it was routed to */
  const char* sni;              /* server name the client asked for */
  const char* alpn;             /* negotiated ALPN protocol */
  uint16_t tls_version;         /* 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3) */
  uint16_t cipher_suite;        /* IANA cipher suite id */
  const char* tls_version_name; /* "TLSv1.2" or "TLSv1.3" */
  const char* cipher_name;      /* e.g. "TLS_AES_128_GCM_SHA256" */
  int tx_path;                  /* enum tlsfd_path of what we send */
  int rx_path;                  /* enum tlsfd_path of what we receive */
  const char* tx_path_name;     /* "ktls-sw", "ktls-hw" or "relay" */
  const char* rx_path_name;
  const char* path_reason;            /* why relay, or which options did not apply */
  const char* peer;                   /* client address "1.2.3.4:5", "[::1]:5" or "unknown" */
  const char* local;                  /* address the client connected to, same form */
  struct sockaddr_storage peer_addr;  /* AF_INET/AF_INET6, or AF_UNSPEC if unknown */
  struct sockaddr_storage local_addr; /* same */
  int has_client_cert;                /* 1 if the client authenticated with a certificate */
  const char* client_cert_subject;    /* RFC 2253 subject, "" without one */
  uint8_t client_cert_sha256[32];     /* SHA-256 of the DER certificate, zeros without */
  const char* client_cert_sha256_hex; /* 64 lowercase hex digits, "" without */
  int resumed;                        /* 1 if the TLS session was resumed */
  uint32_t handshake_us;              /* handshake duration in microseconds */
};

/* tlsfd_conn_info fills *out with the connection's metadata, writing at
 * most out->struct_size bytes. Returns 0, or -EINVAL (NULL argument, or
 * struct_size smaller than this first version of the struct). */
TLSFD_EXPORT int tlsfd_conn_info(const tlsfd_conn* conn, struct tlsfd_info* out);

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------
 * Sandboxing
 * ------------------------------------------------------------------------- */

/* tlsfd_restrict_key_access makes getsockopt(fd, SOL_TLS, ...) fail with
 * EPERM in this process from now on, in every thread, and in every child it
 * starts: on a kTLS socket that call returns the traffic key, IV and
 * sequence number (TLS_TX, TLS_RX), and a worker that holds them could
 * decrypt or forge the connection's records outside the kernel. Nothing
 * libtlsfd does needs it. It is a seccomp filter (policy/worker-seccomp.md)
 * that allows everything else, and it sets no_new_privs, which seccomp
 * requires of an unprivileged process: set-user-ID programs run after it
 * do not gain privileges. It cannot be undone. Call it once the process is
 * set up, before it reads from any connection.
 * Returns 0, or -ENOSYS (the kernel has no seccomp filters), -EINVAL, or
 * another negative errno from installing the filter; then nothing changed. */
TLSFD_EXPORT int tlsfd_restrict_key_access(void);

/* tlsfd_strerror describes a negative errno value returned by this library
 * (e.g. tlsfd_strerror(-ECONNRESET)). Thread-safe; the string is static. */
TLSFD_EXPORT const char* tlsfd_strerror(int neg_errno);

/* tlsfd_last_error returns a description of the last problem a
 * tlsfd_server_*() or tlsfd_accept() call met in this thread: why it
 * failed (e.g. "HELLO refused by tlsd: unknown backend 'web'"), or why
 * tlsfd_accept() last dropped a frame or a link, even if it then went on
 * and succeeded. "" if there is none. The string is thread-local and valid
 * until the next tlsfd_server_*() or tlsfd_accept() call in this thread;
 * the connection functions leave it alone. */
TLSFD_EXPORT const char* tlsfd_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TLSFD_H_ */
