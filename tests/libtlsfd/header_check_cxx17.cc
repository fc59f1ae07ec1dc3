// Compiled with -std=c++17 -pedantic-errors -Werror: tlsfd.hpp needs no more.
#include "tlsfd.hpp"

int TlsfdHeaderCheckCxx17();
int TlsfdHeaderCheckCxx17() {
  tlsfd::Server server;
  tlsfd::Conn conn;
  return (server ? 1 : 0) + (conn ? 1 : 0);
}
