#!/usr/bin/env bash
# The program tls_wrap_exec_mode wraps: it prints its TLS_*/REMOTE_*/LOCAL_*
# environment and what its stdin is, echoes each line it reads, and logs
# every read's result to $1 (a line, end-of-file, or the read error).
log=$1
env | grep -E '^(TLS_|REMOTE_|LOCAL_)' | sort
# Is stdin a Unix socket (tls-wrap's socketpair) rather than the TLS socket?
ino=$(readlink "/proc/$$/fd/0" | tr -dc 0-9)
if grep -qE " $ino( |$)" /proc/net/unix; then echo "STDIN_UNIX=1"; else echo "STDIN_UNIX=0"; fi
err=$(mktemp)
while true; do
  if IFS= read -r line 2>"$err"; then
    echo "read: line" >>"$log"
    echo "echo: $line"
  else
    if [[ -s $err ]]; then echo "read: error: $(cat "$err")" >>"$log"; else echo "read: end-of-file" >>"$log"; fi
    break
  fi
done
rm -f "$err"
