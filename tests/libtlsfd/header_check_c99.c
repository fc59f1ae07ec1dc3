/* Compiled with -std=c99 -pedantic-errors -Werror: tlsfd.h is plain C99. */
#include <string.h>

#include "tlsfd.h"

int tlsfd_header_check_c99(void);
int tlsfd_header_check_c99(void) {
  struct tlsfd_info info;
  struct tlsfd_server_stats stats;
  enum tlsfd_path path = TLSFD_PATH_RELAY;
  memset(&info, 0, sizeof(info));
  memset(&stats, 0, sizeof(stats));
  info.struct_size = sizeof(info);
  stats.struct_size = sizeof(stats);
  return (int)info.struct_size + (int)stats.struct_size + (int)path + TLSFD_NONBLOCK +
         TLSFD_CONN_NONBLOCK + TLSFD_VERSION_MAJOR;
}
