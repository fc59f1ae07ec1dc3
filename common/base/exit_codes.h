#ifndef TLSD_COMMON_BASE_EXIT_CODES_H_
#define TLSD_COMMON_BASE_EXIT_CODES_H_

namespace tlsd {

// Exit codes of tlsd and tls-wrap, documented in docs/man/tlsd.8. Chosen to
// follow sysexits(3) where one fits, so supervisors can tell a bad config
// (do not restart) from a transient failure.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;       // runtime failure
inline constexpr int kExitUsage = 64;        // EX_USAGE: bad command line
inline constexpr int kExitConfig = 78;       // EX_CONFIG: config file invalid
inline constexpr int kExitNoInput = 66;      // EX_NOINPUT: cert/key unreadable
inline constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: a service we need is not there
inline constexpr int kExitOsErr = 71;        // EX_OSERR: socket/bind/epoll failed

}  // namespace tlsd

#endif  // TLSD_COMMON_BASE_EXIT_CODES_H_
