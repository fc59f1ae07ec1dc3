#include "common/base/privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"

namespace tlsd {

absl::StatusOr<std::string> DropPrivileges(const std::string& user, absl::string_view setting) {
  if (user.empty()) return absl::StrCat(setting, " not set: keeping the starting user");
  if (geteuid() != 0) {
    return absl::StrCat("not started as root (uid ", geteuid(), "): ", setting, " '", user,
                        "' not needed");
  }
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const int rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0) return ErrnoToStatus(rc, absl::StrCat(setting, " '", user, "'"));
  if (found == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(setting, " '", user, "': no such user"));
  }
  const uid_t uid = pw.pw_uid;
  const gid_t gid = pw.pw_gid;
  if (uid == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, " '", user, "' is root: nothing would be dropped"));
  }
  // Groups first: once the uid is gone, they cannot be changed.
  if (setgroups(0, nullptr) != 0) return ErrnoToStatus(errno, "setgroups");
  if (setresgid(gid, gid, gid) != 0) return ErrnoToStatus(errno, "setresgid");
  if (setresuid(uid, uid, uid) != 0) return ErrnoToStatus(errno, "setresuid");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoToStatus(errno, "no_new_privs");
  uid_t r, e, s;
  if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid) {
    return absl::InternalError("uids did not all change");
  }
  if (setuid(0) == 0) return absl::InternalError("setuid(0) still works after the drop");
  return absl::StrCat("dropped root: now user '", user, "' (uid ", uid, ", gid ", gid,
                      "), no supplementary groups, no capabilities, no_new_privs");
}

}  // namespace tlsd
