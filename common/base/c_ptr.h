#ifndef TLSD_COMMON_BASE_C_PTR_H_
#define TLSD_COMMON_BASE_C_PTR_H_

#include <memory>

namespace tlsd {

// CDeleter adapts a C free function to std::unique_ptr. The aliases for each
// library's types live next to the code that uses that library (OpenSSL ones
// in tlsd/tls/ossl_ptr.h), so common/ never includes OpenSSL headers.
template <auto kFreeFn>
struct CDeleter {
  template <typename T>
  void operator()(T* p) const {
    kFreeFn(p);
  }
};

}  // namespace tlsd

#endif  // TLSD_COMMON_BASE_C_PTR_H_
