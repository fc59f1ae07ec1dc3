#ifndef TLSD_TESTS_INTEGRATION_SUPPORT_HARNESS_H_
#define TLSD_TESTS_INTEGRATION_SUPPORT_HARNESS_H_

// The integration harness: real tlsd processes, real TLS peers (openssl
// s_client, curl, gnutls-cli, or an OpenSSL client in the test), and
// backends that receive connections through libtlsfd.
//
// Every wait here is bounded. Binaries are found through $TLSD_TEST_BIN_DIR
// (the kTLS VM lane sets it to /opt/tlsd/bin) or, without it, at the paths
// CMake compiled in.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/support/test_certs.h"

namespace tlsd {
namespace integration {

// ---------------------------------------------------------------------------
// Environment

// InVm is true inside the kTLS VM lane (TLSD_IN_VM=1): there a kernel without
// the TLS ULP is a failure, never a reason to skip.
bool InVm();

// KernelKtls is true when this kernel attaches the "tls" ULP (probed once).
bool KernelKtls();

// TLSD_IT_REQUIRE_KTLS_OR_SKIP() ends a kTLS-only test on a kernel without
// the TLS ULP: a skip with the reason on a host, a failure in the VM lane.
#define TLSD_IT_REQUIRE_KTLS_OR_SKIP()                                       \
  do {                                                                       \
    if (!::tlsd::integration::KernelKtls()) {                                \
      if (::tlsd::integration::InVm()) {                                     \
        FAIL() << "TLSD_IN_VM=1 but the kernel has no TLS ULP: the VM lane " \
                  "must run this test, not skip it";                         \
      }                                                                      \
      GTEST_SKIP() << "skipped: kernel has no TLS ULP";                      \
    }                                                                        \
  } while (0)

// TLSD_IT_CHECK_KERNEL() fails the test in the VM lane when the kernel has no
// TLS ULP (tests that run everywhere assert the relay path on a host, the
// kTLS path in the VM; a VM without kTLS would make them test the wrong one).
#define TLSD_IT_CHECK_KERNEL()                                               \
  do {                                                                       \
    if (::tlsd::integration::InVm() && !::tlsd::integration::KernelKtls()) { \
      FAIL() << "TLSD_IN_VM=1 but the kernel has no TLS ULP";                \
    }                                                                        \
  } while (0)

// ExpectedPathName is what tlsd must report for each direction here:
// "ktls-sw" on a kernel with the TLS ULP (the VM lane), "relay" without.
const char* ExpectedPathName();

// BinaryPath returns the path of one of the project's binaries ("tlsd",
// "tlsd-demo-backend"): $TLSD_TEST_BIN_DIR/<name> when that variable is set,
// else the build-tree path CMake compiled in.
std::string BinaryPath(absl::string_view name);

// SharedCerts is one test PKI for the whole process (CA, ECDSA server cert
// for localhost, 127.0.0.1, ::1, a.test, b.test, c.test, *.wild.test, and a
// client cert); generated on first use. Aborts the test binary if OpenSSL
// cannot make it.
const testing::TestCerts& SharedCerts();

// ---------------------------------------------------------------------------
// Files

// TempDir is a fresh directory under $TMPDIR or /tmp, mode 0755 (so a test
// that drops to another uid can reach sockets inside), removed with its
// contents when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const;

 private:
  std::string path_;
};

absl::Status WriteFile(const std::string& path, absl::string_view data, mode_t mode = 0644);
absl::StatusOr<std::string> ReadFile(const std::string& path);

// RandomBytes / RandomHex return bytes from OpenSSL's DRBG.
std::string RandomBytes(size_t len);
std::string RandomHex(size_t num_bytes);

// Sha256Hex is the lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// ---------------------------------------------------------------------------
// Ports, waiting

// PickFreePort returns a port of 127.0.0.1 that bind() just accepted, chosen
// below the ephemeral range (where no client socket can be holding it).
// Another process may still take it before tlsd binds it: TestDaemon
// retries on EADDRINUSE.
int PickFreePort();

// ConnectLoopback makes a plain (blocking) TCP connection to 127.0.0.1:port;
// invalid if it fails.
UniqueFd ConnectLoopback(int port);

// WaitFor polls `cond` every 10 ms until it is true or `timeout` passes;
// returns the last result.
bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout);

// ---------------------------------------------------------------------------
// Peers: real client programs

struct PeerOptions {
  // Written to the program's stdin.
  std::string stdin_data = {};
  // When non-empty, stdin stays open after stdin_data is written until the
  // program's stdout contains this text (or the timeout), then it is closed.
  // openssl s_client and gnutls-cli end the connection at end of input, so
  // this lets an echo come back first.
  std::string close_stdin_after_stdout_has = {};
  // Interactive input, after stdin_data: each step's text is written once
  // the output (stdout or stderr) produced since the previous step contains
  // its `after`, so that each lands in a read of its own (openssl s_client
  // takes "K\n" as a command only at the start of a read).
  struct Step {
    std::string after;
    std::string text;
  };
  std::vector<Step> stdin_script = {};
  // Hard limit: the program is killed (SIGKILL) after this long.
  absl::Duration timeout = absl::Seconds(30);
};

struct PeerResult {
  int exit_code = -1;  // 128+N for a signal; -1 if it could not run
  bool timed_out = false;
  std::string out;
  std::string err;
  absl::Duration elapsed;
  std::string Describe() const;  // for failure messages
};

// RunPeer runs argv[0] (an absolute path) with `argv`, a minimal environment
// and `opts`, and returns what it did. All waits are bounded by opts.timeout.
PeerResult RunPeer(const std::vector<std::string>& argv, const PeerOptions& opts = {});

// Paths of the real peers. In the VM lane they are copied in at these paths.
inline constexpr char kOpenssl[] = "/usr/bin/openssl";
inline constexpr char kCurl[] = "/usr/bin/curl";
inline constexpr char kGnutlsCli[] = "/usr/bin/gnutls-cli";

// ---------------------------------------------------------------------------
// tlsd

// DaemonEnv is what a config template may refer to.
struct DaemonEnv {
  std::string dir;  // the daemon's temp dir (certs are written here)
  std::vector<int> ports;
  std::string control;      // control socket path, inside dir
  std::string ca;           // ca.pem
  std::string cert;         // server-ecdsa.pem
  std::string key;          // server-ecdsa.key
  std::string client_cert;  // client.pem
  std::string client_key;   // client.key
  int port(size_t i = 0) const { return ports.at(i); }
};

struct DaemonSpec {
  // Returns the TOML text for the given environment.
  std::function<std::string(const DaemonEnv&)> config = {};
  int num_ports = 1;
  // Runs before tlsd starts (e.g. to make files the config refers to).
  std::function<absl::Status(const DaemonEnv&)> prepare = {};
  // Bound on start-up: every port and the control socket are listening
  // (seen in /proc/net/tcp{,6} and /proc/net/unix, without connecting).
  absl::Duration ready_timeout = absl::Seconds(10);
};

// One connection's line in tlsd's log ("conn=N service=... outcome=...").
struct ConnLogLine {
  std::string line;
  std::string Field(absl::string_view key) const;  // "" when absent
};

// TestDaemon runs one tlsd process with its own temp dir (config, certs,
// control socket, log). It is stopped with SIGTERM on destruction (SIGKILL
// after 5 s, which is reported as a test failure).
class TestDaemon {
 public:
  static absl::StatusOr<std::unique_ptr<TestDaemon>> Start(const DaemonSpec& spec);
  ~TestDaemon();
  TestDaemon(const TestDaemon&) = delete;
  TestDaemon& operator=(const TestDaemon&) = delete;

  const DaemonEnv& env() const { return env_; }
  int port(size_t i = 0) const { return env_.port(i); }
  const std::string& control() const { return env_.control; }
  pid_t pid() const { return pid_; }
  std::string config_path() const { return config_path_; }

  // Log returns everything tlsd wrote to stderr so far.
  std::string Log() const;
  // WaitForLog waits until the log contains `text`.
  bool WaitForLog(absl::string_view text, absl::Duration timeout = absl::Seconds(10)) const;
  // WaitForConnLog waits for the outcome line of connection `conn_id`.
  absl::StatusOr<ConnLogLine> WaitForConnLog(uint64_t conn_id,
                                             absl::Duration timeout = absl::Seconds(10)) const;
  // ConnLogLines returns every outcome line logged so far.
  std::vector<ConnLogLine> ConnLogLines() const;

  // KeyHolderPid is the pid of tlsd's key holder process, from the log line
  // "key holder pid N" (-1 if not logged).
  pid_t KeyHolderPid() const;

  // NumFds counts the entries of /proc/<pid>/fd (-1 if tlsd is gone).
  int NumFds() const;
  // Alive is true while the process has not exited.
  bool Alive();

  // Stop sends SIGTERM and waits (bounded); returns the exit status as a
  // shell would (128+N for a signal), or -1 if it had to be killed.
  int Stop();

 private:
  TestDaemon() = default;
  absl::Status Launch();

  std::unique_ptr<TempDir> dir_;
  DaemonEnv env_;
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// BackgroundProcess runs a program (stdout and stderr to a file) until it is
// destroyed: SIGTERM, then SIGKILL after 5 s.
class BackgroundProcess {
 public:
  static absl::StatusOr<std::unique_ptr<BackgroundProcess>> Start(
      const std::vector<std::string>& argv, const std::string& output_path);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  std::string Output() const;
  bool WaitForOutput(absl::string_view text, absl::Duration timeout = absl::Seconds(10)) const;
  pid_t pid() const { return pid_; }

 private:
  BackgroundProcess() = default;
  pid_t pid_ = -1;
  std::string output_path_;
};

// ---------------------------------------------------------------------------
// In-process backends (libtlsfd)

// ConnRecord is a copy of one connection's tlsfd_info, plus what the handler
// read from the client.
struct ConnRecord {
  uint64_t connection_id = 0;
  std::string service, backend, sni, alpn;
  uint16_t tls_version = 0;
  uint16_t cipher_suite = 0;
  std::string tls_version_name, cipher_name;
  int tx_path = 0, rx_path = 0;
  std::string tx_path_name, rx_path_name, path_reason;
  std::string peer, local;
  int peer_family = 0, local_family = 0;
  int has_client_cert = 0;
  std::string client_cert_subject;
  std::string client_cert_sha256_hex;
  std::string client_cert_sha256_raw;  // 32 bytes
  int resumed = -1;
  uint32_t handshake_us = 0;
  std::string received;       // bytes the handler read
  std::string handler_error;  // non-empty if the handler met an error
};

class BackendConn;  // wraps tlsfd::Conn for handlers

// A handler serves one connection; it runs in its own thread. The record is
// filled with the metadata before the call; handlers append to `received`.
using Handler = std::function<void(BackendConn& conn, ConnRecord& rec)>;

// BackendConn is the handler's view of one handed-off connection.
class BackendConn {
 public:
  virtual ~BackendConn() = default;
  virtual int fd() const = 0;
  // Read and Write are tlsfd_read / tlsfd_write (negative errno on error).
  virtual ssize_t Read(void* buf, size_t len) = 0;
  virtual ssize_t Write(const void* buf, size_t len) = 0;
  virtual int Shutdown() = 0;
  virtual int LastAlert() const = 0;
  // WriteAll writes everything or returns the first error.
  int WriteAll(absl::string_view data);
};

// Handlers.
// EchoHandler echoes every byte until the client's end of stream.
Handler EchoHandler();
// HttpEchoHandler reads one HTTP/1.1 request with a Content-Length body and
// answers 200 with the body as is, then closes.
Handler HttpEchoHandler();
// ReadAllHandler reads until end of stream, records it, then closes.
Handler ReadAllHandler();
// CloseHandler closes at once.
Handler CloseHandler();

// InProcessBackend receives connections from tlsd in a thread of this test
// process, through libtlsfd: pull (Subscribe) or push (Listen).
class InProcessBackend {
 public:
  // Subscribe subscribes to `backend` at tlsd's control socket (waiting for
  // tlsd's answer) and starts accepting. Fails with tlsd's refusal.
  static absl::StatusOr<std::unique_ptr<InProcessBackend>> Subscribe(const std::string& control,
                                                                     const std::string& backend,
                                                                     Handler handler);
  // Listen creates a push socket at `path` (mode 0600) that tlsd connects to.
  static absl::StatusOr<std::unique_ptr<InProcessBackend>> Listen(const std::string& path,
                                                                  Handler handler);
  ~InProcessBackend();
  InProcessBackend(const InProcessBackend&) = delete;
  InProcessBackend& operator=(const InProcessBackend&) = delete;

  // WaitForConnections waits until `n` handlers have finished; returns the
  // records so far (fewer than n on timeout).
  std::vector<ConnRecord> WaitForConnections(size_t n, absl::Duration timeout = absl::Seconds(20));
  size_t NumAccepted() const;
  std::vector<ConnRecord> Records() const;

 private:
  struct State;
  explicit InProcessBackend(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// ---------------------------------------------------------------------------
// An OpenSSL client inside the test

struct ClientOptions {
  int version = 0;                // TLS1_2_VERSION, TLS1_3_VERSION, 0 = either
  std::string tls12_cipher = {};  // OpenSSL name, for TLS 1.2
  std::string tls13_suite = {};   // e.g. "TLS_AES_128_GCM_SHA256"
  std::string sni = "localhost";  // "" = send none
  std::vector<std::string> alpn = {};
  const testing::TestIdentity* identity = nullptr;  // client certificate
  SSL_SESSION* session = nullptr;                   // to resume (borrowed)
  bool ipv6 = false;                                // connect to [::1] instead of 127.0.0.1
  std::string prefix = {};
  std::string source_address =
      {};  // bind to this local IPv4 address first (e.g. 127.0.0.2)  // sent right after
           // connecting, before the handshake (a PROXY header)
  absl::Duration io_timeout = absl::Seconds(15);
};

// How a read to the end of the stream ended.
struct ReadEnd {
  enum Kind { kCloseNotify, kAlert, kEof, kError, kTimeout };
  Kind kind = kError;
  int alert = -1;      // the alert's description for kAlert
  std::string detail;  // OpenSSL's error text
  std::string data;    // application data read before the end
  std::string Describe() const;
};

class TlsClient {
 public:
  // Connect makes a TCP connection to 127.0.0.1:port ([::1] with ipv6) and
  // completes the
  // handshake (blocking, bounded by io_timeout).
  static absl::StatusOr<std::unique_ptr<TlsClient>> Connect(int port, const ClientOptions& opts);
  // ConnectAndSend completes the handshake with the client's last flight
  // (its Finished) held back, then sends that flight and `data` as
  // application data in ONE send(): the request arrives glued to Finished.
  static absl::StatusOr<std::unique_ptr<TlsClient>> ConnectAndSend(int port,
                                                                   const ClientOptions& opts,
                                                                   absl::string_view data);
  ~TlsClient();

  SSL* ssl() const { return ssl_; }
  int fd() const { return fd_; }
  std::string LocalAddress() const;  // "127.0.0.1:port" or "[::1]:port"

  absl::Status Write(absl::string_view data);
  // ReadExactly reads `len` bytes of application data.
  absl::StatusOr<std::string> ReadExactly(size_t len);
  // ReadToEnd reads until close_notify, an alert, EOF, an error or timeout.
  ReadEnd ReadToEnd();
  // Get1Session returns the session for resumption (caller frees it); for
  // TLS 1.3 the tickets must have been read first (read some data).
  SSL_SESSION* Get1Session() const { return SSL_get1_session(ssl_); }
  // Close sends close_notify and closes the socket.
  void Close();

  // Interruptions counts, across all clients, the blocking calls that
  // failed with EINTR and were retried (see Interrupted).
  static int Interruptions();

 private:
  TlsClient() = default;
  absl::Status Init(int port, const ClientOptions& opts);
  absl::Status Failure(absl::string_view what, int ret);
  // Interrupted tells whether an SSL call that returned `ret` (<= 0) on this
  // blocking socket only had its recv/send interrupted (EINTR; counted), to
  // be retried as any robust client does. A socket with SO_RCVTIMEO gets
  // EINTR even without a signal handler, after a stop and continue (see
  // signal(7)); the VM lane's 6.1 kernel shows it now and then.
  bool Interrupted(int ret);

  std::unique_ptr<std::atomic<int>> alert_;  // last alert received, -1 none
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

// ---------------------------------------------------------------------------
// Data path assertions

// TlsStatSnapshot reads /proc/net/tls_stat when the kernel has kTLS.
class TlsStatSnapshot {
 public:
  TlsStatSnapshot();
  // Delta of one counter since the snapshot (0 without kTLS).
  int64_t Delta(absl::string_view name) const;
  // Has reports whether the kernel exports the counter (TlsRxRekeyOk only
  // exists on kernels that can rekey TLS 1.3, 6.14+).
  bool Has(absl::string_view name) const;

 private:
  bool valid_ = false;
  std::vector<std::pair<std::string, int64_t>> values_;
};

// ExpectDataPath checks what tlsd reported for one connection: in the
// backend's metadata (tx/rx path) and in its log line (path= and outcome=).
// Host: relay/relay, outcome=relay. Kernel with kTLS: ktls-sw/ktls-sw,
// outcome=handed-off (tlsd relayed nothing).
void ExpectDataPath(const ConnRecord& rec, const TestDaemon& daemon);

// ExpectKtlsCounters checks, on a kernel with kTLS, that TlsTxSw and TlsRxSw
// rose by exactly `handed_off` since `before`; on a host it checks nothing.
void ExpectKtlsCounters(const TlsStatSnapshot& before, int handed_off);

// Pull backend and service TOML snippets used by many tests.
std::string PullBackendToml(absl::string_view name, absl::string_view extra = "");

// SimpleConfig is one service "web" on env.port(0) with the ECDSA cert and
// a pull backend "app" (allowed: uid 0), plus `service_extra` lines in the
// [[service]] table and `backend_extra` in the [[backend]] table.
std::string SimpleConfig(const DaemonEnv& env, absl::string_view service_extra = "",
                         absl::string_view backend_extra = "");

}  // namespace integration
}  // namespace tlsd

#endif  // TLSD_TESTS_INTEGRATION_SUPPORT_HARNESS_H_
