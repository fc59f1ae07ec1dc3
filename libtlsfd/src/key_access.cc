// tlsfd_restrict_key_access: the worker seccomp profile.
//
// One rule on top of "allow": getsockopt(*, SOL_TLS, *) -> EPERM. The filter
// covers the native architecture only, and any system call made through
// another ABI (int 0x80 i386 calls, x32) is refused with ENOSYS, so the rule
// cannot be stepped around through socketcall(2).

#include <errno.h>
#include <seccomp.h>
#include <sys/socket.h>

#include "libtlsfd/include/tlsfd.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

extern "C" int tlsfd_restrict_key_access(void) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return -ENOMEM;
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
  if (rc == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
  // All threads at once, or none (an app may already run threads).
  if (rc == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc == 0) {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(getsockopt), 1,
                          SCMP_A1(SCMP_CMP_EQ, SOL_TLS));
  }
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  return rc < 0 ? rc : 0;
}
