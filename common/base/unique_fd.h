#ifndef TLSD_COMMON_BASE_UNIQUE_FD_H_
#define TLSD_COMMON_BASE_UNIQUE_FD_H_

#include <errno.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

namespace tlsd {

// UniqueFd owns one file descriptor and closes it on destruction. Move-only.
// Functions that take ownership accept UniqueFd by value; borrowers take
// `const UniqueFd&` or a plain int.
class [[nodiscard]] UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Release gives up ownership without closing.
  [[nodiscard]] int Release() { return std::exchange(fd_, -1); }
  // Reset closes the current fd. EBADF means a double close somewhere, which
  // is a use-after-close bug that could close someone else's fd: abort.
  void Reset(int fd = -1) {
    if (fd_ >= 0 && ::close(fd_) != 0 && errno == EBADF) std::abort();
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace tlsd

#endif  // TLSD_COMMON_BASE_UNIQUE_FD_H_
