#!/usr/bin/env bash
# run-lane.sh — run test binaries inside a QEMU VM with a real kTLS kernel.
#
#   run-lane.sh --kernel <bookworm|sid> --cache <dir> --work <dir>
#               --bin <file>... [--host-tool <path>...] [--timeout SECS]
#   run-lane.sh ... [--bin <file>...] --run <script>
#
# Why a VM: the host kernel is built without CONFIG_TLS, so every test that
# needs real kTLS runs here, on Debian's stock cloud kernels (6.1 and sid 7.x).
#
# Steps: fetch-kernel.sh gets (or reuses) the kernel; we build a busybox
# initramfs with the test binaries, host tools (openssl, curl, ...), all their
# shared libraries and the kTLS/crypto modules; QEMU (TCG, no KVM) boots it;
# /init runs every *_test binary and powers off. The serial console is the
# only channel back: it is streamed to stdout and to <work>/<kernel>/console.log,
# and this script decides pass/fail from it.
#
# Options:
#   --kernel K       bookworm (Debian 12, 6.1) or sid (7.x)
#   --cache DIR      kernel download cache; the env var TLSD_VM_CACHE, if set,
#                    wins (so one cache can serve many build dirs)
#   --work DIR       scratch dir (initramfs tree, image, console log)
#   --bin FILE...    test binaries and helpers -> /opt/tlsd/bin/ in the VM;
#                    the ones named *_test are run, in command-line order
#   --host-tool P... host programs (absolute paths) copied to the same path
#   --host-dir D...  host directories copied to the same path (e.g. Python's
#                    standard library), their *.so files with their libraries
#   --host-dir-exclude NAME...
#                    directory names left out of every --host-dir (default:
#                    __pycache__)
#   --timeout SECS   QEMU wall-clock limit (default 240)
#   --run FILE       a shell script, copied to /opt/tlsd/bin/<its name> and run
#                    by /init with busybox sh (cwd /tmp, TLSD_IN_VM=1,
#                    TLSD_TEST_BIN_DIR=/opt/tlsd/bin,
#                    LD_LIBRARY_PATH=/opt/tlsd/lib) INSTEAD of the *_test
#                    binaries (--bin files are still copied, none is run).
#                    No --bin is required then, and the gtest checks do not
#                    apply: the lane passes when the script exits 0 (the
#                    TLSD-VM-LANE-END status is its exit code), with no
#                    panic/Oops, no failed modprobe, /proc/net/tls_stat
#                    present. The script's output is on the console (stdout
#                    and <work>/<kernel>/console.log) for the caller to parse.
#                    Used by bench/vm-bulk.sh.
#
# Environment:
#   TLSD_VM_CACHE          overrides --cache
#   TLSD_VM_GTEST_ARGS     extra args for every test binary (e.g.
#                          --gtest_filter=Ktls*); split on whitespace
#   TLSD_VM_OFFLINE=1      don't contact the mirror (passed to fetch-kernel.sh)
#   TLSD_VM_DEBIAN_MIRROR  mirror override (passed to fetch-kernel.sh)
set -euo pipefail

prog=run-lane
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Progress lines carry seconds since start, so slow phases are visible.
log() { printf '%s: [%3ds] %s\n' "$prog" "$SECONDS" "$*" >&2; }
die() { printf '%s: FAIL: %s\n' "$prog" "$*" >&2; exit 1; }

# Modules loaded by /init before the tests. Missing ones are tolerated (with a
# note) except tls: e.g. ghash-clmulni-intel is gone in 7.x, where GHASH moved
# into the built-in lib/crypto gf128hash.
vm_modules=(tls gcm aesni-intel ghash-clmulni-intel chacha20poly1305 inet_diag tcp_diag)
# Whole module dirs copied as well, so the kernel's crypto auto-loading
# (request_module("crypto-...") -> /sbin/modprobe) finds whatever algorithm
# or template (ctr, ghash, chacha, poly1305, ...) a cipher needs.
vm_module_dirs=(kernel/net/tls kernel/crypto kernel/arch/x86/crypto kernel/lib/crypto)

kernel='' cache='' work='' timeout_s=240 run_file=''
bins=() tools=() host_dirs=() dir_excludes=(__pycache__)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kernel) kernel=${2:?--kernel needs a value}; shift 2 ;;
    --cache) cache=${2:?--cache needs a value}; shift 2 ;;
    --work) work=${2:?--work needs a value}; shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs a value}; shift 2 ;;
    --run) run_file=${2:?--run needs a value}; shift 2 ;;
    --bin|--host-tool|--host-dir|--host-dir-exclude)
      opt=$1; shift
      [[ $# -gt 0 && $1 != --* ]] || die "$opt needs at least one value"
      while [[ $# -gt 0 && $1 != --* ]]; do
        case "$opt" in
          --bin) bins+=("$1") ;;
          --host-tool) tools+=("$1") ;;
          --host-dir) host_dirs+=("$1") ;;
          --host-dir-exclude) dir_excludes+=("$1") ;;
        esac
        shift
      done ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
if [[ -n ${TLSD_VM_CACHE:-} ]]; then cache=$TLSD_VM_CACHE; fi
[[ $kernel == bookworm || $kernel == sid ]] || die "--kernel must be bookworm or sid"
[[ -n $cache ]] || die "--cache (or TLSD_VM_CACHE) is required"
[[ -n $work ]] || die "--work is required"
if [[ -z $run_file ]]; then
  [[ ${#bins[@]} -gt 0 ]] || die "at least one --bin is required"
else
  [[ -f $run_file && -r $run_file ]] || die "--run $run_file: not a readable file"
fi
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds"

for t in qemu-system-x86_64 cpio gzip xz depmod modprobe ldd timeout; do
  command -v "$t" >/dev/null || die "'$t' not found (scripts/install-deps.sh --test)"
done
busybox=${TLSD_VM_BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || die "$busybox not found (package busybox-static)"
# The initramfs has no libc of its own for busybox: it must be static.
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; install busybox-static"
fi

declare -A seen_name=()
test_names=()
for b in "${bins[@]}"; do
  [[ -f $b && -x $b ]] || die "--bin $b: not an executable file (built yet?)"
  n=$(basename "$b")
  [[ -z ${seen_name[$n]:-} ]] || die "--bin: two binaries named $n"
  seen_name[$n]=1
  if [[ $n == *_test ]]; then test_names+=("$n"); fi
done
run_name=''
if [[ -n $run_file ]]; then
  run_name=$(basename "$run_file")
  [[ -z ${seen_name[$run_name]:-} ]] || die "--run $run_file: a --bin has the same name $run_name"
  # Run mode: the script runs instead of the tests (none is required).
  test_names=()
else
  [[ ${#test_names[@]} -gt 0 ]] || die "none of the --bin files is named *_test; nothing would run"
fi
for t in "${tools[@]}"; do
  [[ $t == /* ]] || die "--host-tool $t: must be an absolute path"
  [[ -f $t && -x $t ]] || die "--host-tool $t: not an executable file"
done
for d in "${host_dirs[@]}"; do
  [[ $d == /* && -d $d ]] || die "--host-dir $d: not an absolute path to a directory"
done

# --- 1. Kernel -------------------------------------------------------------
kenv=$("$here/fetch-kernel.sh" "$kernel" "$cache") || die "fetch-kernel.sh $kernel failed"
KERNEL_RELEASE='' VMLINUZ='' MODULES_DIR='' KERNEL_TREE=''
while IFS='=' read -r k v; do
  case "$k" in
    KERNEL_RELEASE) KERNEL_RELEASE=$v ;;
    VMLINUZ) VMLINUZ=$v ;;
    MODULES_DIR) MODULES_DIR=$v ;;
    KERNEL_TREE) KERNEL_TREE=$v ;;
  esac
done <<<"$kenv"
[[ -n $KERNEL_RELEASE && -f $VMLINUZ && -d $MODULES_DIR ]] || die "fetch-kernel.sh gave no usable kernel"

# --- 2. Initramfs tree -----------------------------------------------------
mkdir -p "$work"
work=$(cd "$work" && pwd)
lane=$work/$kernel
root=$lane/root
rm -rf "$root"
mkdir -p "$root"/{dev,proc,sys,tmp,run,root,etc,opt/tlsd/bin,opt/tlsd/lib,var/tmp,usr/bin,usr/sbin,usr/lib}
chmod 1777 "$root/tmp" "$root/var/tmp"
# Mirror the host's merged-/usr layout (bin -> usr/bin, lib -> usr/lib, ...)
# so every library lands at the path ldd reported and the ELF interpreter
# path (/lib64/ld-linux-x86-64.so.2) resolves exactly as on the host.
for d in bin sbin lib lib32 lib64 libx32; do
  if [[ -L /$d ]]; then
    tgt=$(readlink "/$d")
    mkdir -p "$root/${tgt#/}"
    ln -s "$tgt" "$root/$d"
  fi
done

# Copy one host path into the tree at the same path. Symlinks are copied as
# symlinks and then followed (one level at a time) so the whole chain exists.
copy_path() {
  local p=$1 t
  while :; do
    if [[ ! -e $root$p && ! -L $root$p ]]; then
      cp -P --parents "$p" "$root/"
    fi
    [[ -L $p ]] || return 0
    t=$(readlink "$p")
    if [[ $t != /* ]]; then t=${p%/*}/$t; fi
    # Lexical clean-up of "../" (no symlink resolution: that is our job).
    p=$(realpath -m -s "$t")
  done
}

# ldd closure. ldd already lists transitive deps; we still walk every
# library we add (and dlopen'ed extras) so nothing depends on that detail.
declare -A ldd_done=() lib_seen=()
lib_dirs=()
closure() {
  local f=$1 out line lib real
  [[ -z ${ldd_done[$f]:-} ]] || return 0
  ldd_done[$f]=1
  if ! out=$(ldd -- "$f" 2>&1); then
    # Static executables are fine; anything else is an error.
    grep -qE 'not a dynamic executable|statically linked' <<<"$out" && return 0
    die "ldd $f failed: $out"
  fi
  if grep -q 'not found' <<<"$out"; then
    die "ldd $f: missing libraries on the host: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
  fi
  while IFS= read -r line; do
    lib=''
    if [[ $line =~ =\>\ (/[^ ]+)\ \( ]]; then lib=${BASH_REMATCH[1]}
    elif [[ $line =~ ^[[:space:]]*(/[^ ]+)\ \( ]]; then lib=${BASH_REMATCH[1]}
    fi
    # Each ldd already lists the whole closure: skip known libs without forking.
    [[ -n $lib && -z ${lib_seen[$lib]:-} ]] || continue
    lib_seen[$lib]=1
    real=$(realpath "$lib")
    case "$real" in
      /usr/*|/lib/*|/lib64/*|/lib32/*|/libx32/*)
        copy_path "$lib"
        lib_dirs+=("${real%/*}") ;;
      *)
        # The project's own shared libraries (libtlsfd.so.0) live in the
        # build tree, which may be under /tmp: hidden in the VM by the tmpfs
        # /init mounts there. They go to /opt/tlsd/lib, on the loader path.
        install -m 0755 "$real" "$root/opt/tlsd/lib/${lib##*/}"
        lib_dirs+=(/opt/tlsd/lib) ;;
    esac
    closure "$real"
  done <<<"$out"
}

# busybox and its applets (sh, mount, ip, modprobe, poweroff, ...).
install -m 0755 "$busybox" "$root/bin/busybox"
# --list-full paths are under bin, sbin, usr/bin, usr/sbin (all exist).
while IFS= read -r applet; do
  [[ -n $applet && $applet != bin/busybox ]] || continue
  ln -sf /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
# The kernel runs CONFIG_MODPROBE_PATH=/sbin/modprobe to auto-load crypto
# modules; without it setsockopt(TLS_TX) fails (and OpenSSL silently falls
# back to user-space TLS). Assert the link is there.
[[ -L $root/sbin/modprobe ]] || die "busybox has no modprobe applet"

for b in "${bins[@]}"; do
  install -m 0755 "$b" "$root/opt/tlsd/bin/$(basename "$b")"
  closure "$(realpath "$b")"
done
if [[ -n $run_file ]]; then
  install -m 0755 "$run_file" "$root/opt/tlsd/bin/$run_name"
fi
for t in "${tools[@]}"; do
  # The real tool replaces a busybox applet of the same name, if any.
  rm -f "$root$t"
  copy_path "$t"
  closure "$(realpath "$t")"
done

for d in "${host_dirs[@]}"; do
  prune=()
  for x in "${dir_excludes[@]}"; do prune+=(-name "$x" -o); done
  mkdir -p "$root$d"
  # cp --parents keeps each file's path; symlinks stay symlinks.
  (cd / && find "${d#/}" \( -type d \( "${prune[@]}" -false \) -prune \) -o \
     \( -type f -o -type l \) -print0 | xargs -0 -r cp -P --parents -t "$root/")
  while IFS= read -r -d '' so; do
    closure "$(realpath "$so")"
  done < <(find "$root$d" -name '*.so' -type f -printf "$d/%P\0")
done

# dlopen()ed files that ldd cannot see.
libc_path=''
for f in "${!ldd_done[@]}"; do
  case "$f" in */libc.so.6) libc_path=$f ;; esac
done
if [[ -n $libc_path ]]; then
  multiarch=$(dirname "$libc_path")
  # glibc: libgcc_s for pthread_cancel/pthread_exit unwinding; NSS modules
  # for getpwnam("tlsd") and resolving "localhost" from /etc/hosts.
  for f in "$multiarch"/libgcc_s.so.1 "$multiarch"/libnss_files.so.2 "$multiarch"/libnss_dns.so.2; do
    if [[ -e $f ]]; then copy_path "$f"; closure "$(realpath "$f")"; fi
  done
fi
libcrypto=''
for f in "${!ldd_done[@]}"; do
  case "$f" in */libcrypto.so.3) libcrypto=$f ;; esac
done
if [[ -n $libcrypto ]]; then
  # OpenSSL 3 loads providers (legacy) and engines at run time and reads
  # OPENSSLDIR/openssl.cnf. Ask the host's openssl for the dirs when we can.
  ossl_dir=/usr/lib/ssl
  ossl_mod=$(dirname "$libcrypto")/ossl-modules
  ossl_eng=$(dirname "$libcrypto")/engines-3
  if command -v openssl >/dev/null; then
    v=$(openssl version -d 2>/dev/null | sed -n 's/^OPENSSLDIR: "\(.*\)"$/\1/p')
    if [[ -n $v ]]; then ossl_dir=$v; fi
    v=$(openssl version -m 2>/dev/null | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
    if [[ -n $v ]]; then ossl_mod=$v; fi
    v=$(openssl version -e 2>/dev/null | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
    if [[ -n $v ]]; then ossl_eng=$v; fi
  fi
  for d in "$ossl_mod" "$ossl_eng"; do
    [[ -d $d ]] || continue
    for f in "$d"/*.so; do
      [[ -e $f ]] || continue
      copy_path "$f"; closure "$(realpath "$f")"
    done
  done
  if [[ -e $ossl_dir/openssl.cnf ]]; then copy_path "$ossl_dir/openssl.cnf"; fi
fi
# The system CA bundle, so host tools behave as on the host (tests should
# still pass their own CA explicitly).
if [[ -e /etc/ssl/certs/ca-certificates.crt ]]; then
  copy_path /etc/ssl/certs/ca-certificates.crt
fi

# Let the loader find libraries outside its default dirs (as ld.so.cache does
# on the host). ldconfig -r chroots, so this needs root; default dirs suffice
# otherwise.
printf '%s\n' "${lib_dirs[@]}" | sort -u >"$root/etc/ld.so.conf"
if [[ $(id -u) -eq 0 ]] && command -v ldconfig >/dev/null; then
  ldconfig -X -r "$root" 2>/dev/null || log "note: ldconfig -r failed; relying on the default library dirs"
fi

# Users: root, an unprivileged tlsd (990) for privilege-drop tests, nobody.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
tlsd:x:990:990:tlsd test user:/nonexistent:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tlsd:x:990:
nogroup:x:65534:
EOF
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files
services: files
protocols: files
EOF
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
EOF
printf 'tlsd-vm\n' >"$root/etc/hostname"

# Kernel modules: the named ones plus whole crypto dirs, each with its
# dependencies (modules.dep of the unpacked tree, made by fetch-kernel.sh).
# .ko.xz is decompressed because busybox modprobe loads plain .ko only; the
# initramfs gets its own modules.dep/alias from depmod.
modprobe_q=(modprobe -C /dev/null -d "$KERNEL_TREE" -S "$KERNEL_RELEASE" --show-depends)
mod_root=$root/lib/modules/$KERNEL_RELEASE
mkdir -p "$mod_root"
declare -A mod_seen=()
add_module_paths() { # reads `modprobe --show-depends` output on stdin
  local kw path rel dst
  while read -r kw path _; do
    [[ $kw == insmod ]] || continue
    rel=${path#*/lib/modules/"$KERNEL_RELEASE"/}
    [[ -z ${mod_seen[$rel]:-} ]] || continue
    mod_seen[$rel]=1
    dst=$mod_root/$rel
    mkdir -p "${dst%/*}"
    case "$rel" in
      *.ko.xz) xz -dc "$MODULES_DIR/$rel" >"${dst%.xz}" ;;
      *.ko.zst) command -v zstd >/dev/null || die "need zstd to unpack $rel"
                zstd -qdc "$MODULES_DIR/$rel" >"${dst%.zst}" ;;
      *.ko.gz) gzip -dc "$MODULES_DIR/$rel" >"${dst%.gz}" ;;
      *.ko) cp "$MODULES_DIR/$rel" "$dst" ;;
      *) die "unexpected module file $rel" ;;
    esac
  done
}
load_modules=()
for m in "${vm_modules[@]}"; do
  if out=$("${modprobe_q[@]}" "$m" 2>&1); then
    add_module_paths <<<"$out"
    if grep -q '^insmod ' <<<"$out"; then load_modules+=("$m"); else log "note: $m is built into $KERNEL_RELEASE"; fi
  else
    [[ $m != tls ]] || die "kernel $KERNEL_RELEASE has no tls module: $out"
    log "note: no module $m in $KERNEL_RELEASE (skipped)"
  fi
done
dir_mods=()
for d in "${vm_module_dirs[@]}"; do
  [[ -d $MODULES_DIR/$d ]] || continue
  while IFS= read -r f; do
    f=$(basename "$f"); dir_mods+=("${f%%.ko*}")
  done < <(find "$MODULES_DIR/$d" -name '*.ko*' -type f)
done
if [[ ${#dir_mods[@]} -gt 0 ]]; then
  # Not a pipeline: add_module_paths must run in this shell (mod_seen).
  out=$("${modprobe_q[@]}" -a "${dir_mods[@]}") || die "modprobe --show-depends on the crypto dirs failed"
  add_module_paths <<<"$out"
fi
for f in modules.builtin modules.builtin.modinfo modules.order; do
  if [[ -f $MODULES_DIR/$f ]]; then cp "$MODULES_DIR/$f" "$mod_root/"; fi
done
depmod -b "$root" "$KERNEL_RELEASE" || die "depmod for the initramfs failed"
log "initramfs: ${#mod_seen[@]} kernel modules; loading ${load_modules[*]}"

# What /init runs, in order, and with which extra arguments.
mkdir -p "$root/etc/tlsd-vm"
printf '%s\n' "${load_modules[@]}" >"$root/etc/tlsd-vm/modules"
printf '%s\n' "${test_names[@]}" >"$root/etc/tlsd-vm/tests"
printf '%s\n' "${TLSD_VM_GTEST_ARGS:-}" >"$root/etc/tlsd-vm/gtest-args"
if [[ -n $run_name ]]; then printf '%s\n' "$run_name" >"$root/etc/tlsd-vm/run"; fi

cat >"$root/init" <<'EOF'
#!/bin/sh
# PID 1 of the kTLS test VM (generated by tests/ktls-vm/run-lane.sh).
# Everything goes to the serial console; the host parses the TLSD-VM-* lines.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp LANG=C
mount -t proc proc /proc
read -r up _ </proc/uptime
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
exec </dev/console >/dev/console 2>&1
hostname -F /etc/hostname
ip link set lo up

while read -r m; do
  [ -n "$m" ] || continue
  modprobe "$m" || echo "TLSD-VM-MODPROBE-FAILED: $m"
done </etc/tlsd-vm/modules

# Start on a fresh line: the firmware's last message has no newline.
echo
echo "TLSD-VM-KERNEL: $(uname -r)"
echo "TLSD-VM-UPTIME: init started at ${up}s, modules loaded at $(cut -d' ' -f1 /proc/uptime)s"
if [ -e /proc/net/tls_stat ]; then
  echo "TLSD-VM-TLS-STAT: present"
else
  echo "TLSD-VM-TLS-STAT: missing"
fi

status=0
if [ -s /etc/tlsd-vm/run ]; then
  # run-lane.sh --run: one script instead of the tests; its exit code is the
  # lane's status.
  read -r r </etc/tlsd-vm/run
  echo "TLSD-VM-RUN-BEGIN: $r"
  (cd /tmp && TLSD_TEST_BIN_DIR=/opt/tlsd/bin TLSD_IN_VM=1 LD_LIBRARY_PATH=/opt/tlsd/lib \
     /bin/sh "/opt/tlsd/bin/$r")
  status=$?
  echo "TLSD-VM-RUN-END: $r rc=$status"
else
  extra=$(cat /etc/tlsd-vm/gtest-args)
  while read -r t; do
    [ -n "$t" ] || continue
    echo "TLSD-VM-TEST-BEGIN: $t"
    # $extra is split on purpose (TLSD_VM_GTEST_ARGS).
    # shellcheck disable=SC2086
    (cd /tmp && TLSD_TEST_BIN_DIR=/opt/tlsd/bin TLSD_IN_VM=1 LD_LIBRARY_PATH=/opt/tlsd/lib \
       "/opt/tlsd/bin/$t" --gtest_color=no $extra)
    rc=$?
    echo "TLSD-VM-TEST-END: $t rc=$rc"
    [ "$rc" -eq 0 ] || status=1
  done </etc/tlsd-vm/tests
fi

echo "TLSD-VM-UPTIME: tests done at $(cut -d' ' -f1 /proc/uptime)s"
# Which modules ended up loaded (shows the kernel's crypto auto-loading).
echo "TLSD-VM-LSMOD: $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
echo "TLSD-VM-LANE-END status=$status"
sync
poweroff -f
# Not reached; if poweroff failed, exiting PID 1 panics and panic=-1 reboots,
# which -no-reboot turns into a QEMU exit.
EOF
chmod 0755 "$root/init"

# --- 3. Pack ---------------------------------------------------------------
initrd=$lane/initrd.img
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
   cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$initrd.tmp"
mv "$initrd.tmp" "$initrd"
log "initramfs $(du -h "$initrd" | cut -f1) ($(du -sh "$root" | cut -f1) unpacked)"

# --- 4. Boot ---------------------------------------------------------------
console=$lane/console.log
# TCG only: /dev/kvm is present on the machines but unusable (see
# PLATFORM-FACTS).
qemu=(qemu-system-x86_64 -accel "tcg,thread=multi" -cpu max -m 1024 -smp 2
      -nographic -no-reboot -net none
      -kernel "$VMLINUZ" -initrd "$initrd"
      -append "console=ttyS0 quiet panic=-1")
# The same boot, for re-running by hand (Ctrl-A X quits QEMU).
{ echo '#!/bin/sh'; printf '%q ' exec "${qemu[@]}"; echo; } >"$lane/boot.sh"
chmod +x "$lane/boot.sh"
boot() {
  log "booting $KERNEL_RELEASE under QEMU/TCG (timeout ${timeout_s}s); console -> $console"
  start=$(date +%s)
  set +e
  # The sed strips CRs and the firmware's terminal escapes, line by line.
  timeout --kill-after=10 "$timeout_s" "${qemu[@]}" </dev/null 2>&1 |
    sed -u -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' | tee "$console"
  pipe_rc=("${PIPESTATUS[@]}")
  set -e
  elapsed=$(( $(date +%s) - start ))
  qemu_rc=${pipe_rc[0]}
}
boot
# A guest that dies before /init starts the first test (seen: a sid kernel
# panicking in early boot under TCG, once in our first runs) says nothing about
# our code; boot it once more, keeping the first console. A death after the
# first test (or the --run script) started is never retried: that is a result.
if ! grep -qE '^TLSD-VM-(TEST|RUN)-BEGIN: ' "$console" &&
   { [[ $qemu_rc -ne 0 ]] || grep -q 'Kernel panic - not syncing' "$console"; }; then
  mv "$console" "$lane/console.boot1.log"
  log "NOTE: the guest died before any test ran (qemu status $qemu_rc;" \
      "$(grep -m1 -E 'Kernel panic|Oops|BUG:' "$lane/console.boot1.log" || echo 'no panic line')" \
      "); console kept in $lane/console.boot1.log; booting once more"
  boot
fi

# --- 5. Verdict ------------------------------------------------------------
reasons=()
if [[ $qemu_rc -eq 124 || $qemu_rc -eq 137 ]]; then
  reasons+=("timeout: QEMU did not finish within ${timeout_s}s (killed)")
elif [[ $qemu_rc -ne 0 ]]; then
  reasons+=("qemu-system-x86_64 exited with status $qemu_rc")
fi
if grep -qE 'Kernel panic - not syncing|^\[ *[0-9]+\.[0-9]+\] (Oops|BUG:|general protection fault)|^(Oops|BUG): ' "$console"; then
  reasons+=("kernel panic/Oops: $(grep -m1 -E 'Kernel panic|Oops|BUG:|general protection fault' "$console")")
fi
end_line=$(grep -m1 -E '^TLSD-VM-LANE-END status=' "$console" || true)
if [[ -z $end_line ]]; then
  reasons+=("no 'TLSD-VM-LANE-END' sentinel on the console (VM died or hung)")
elif [[ $end_line != 'TLSD-VM-LANE-END status=0' ]]; then
  reasons+=("in-VM status: ${end_line#TLSD-VM-LANE-END }")
fi
if grep -q '^TLSD-VM-MODPROBE-FAILED:' "$console"; then
  reasons+=("modprobe failed in the VM: $(grep '^TLSD-VM-MODPROBE-FAILED:' "$console" | cut -d' ' -f2 | tr '\n' ' ')")
fi
if grep -q '^TLSD-VM-TLS-STAT: missing' "$console"; then
  reasons+=("/proc/net/tls_stat missing in the VM (tls module not loaded)")
fi

vm_release=$(sed -n 's/^.*TLSD-VM-KERNEL: //p' "$console" | head -n1)

# finish BODY OUTCOME: prints the lane's summary - BODY (one line per test
# binary, or the --run script's), any kernel warning, the reasons to fail -
# and the last line "vm-lane(<release>): OUTCOME", with " -- FAILED" and exit
# 1 if there are reasons, exit 0 otherwise. The summary also goes to
# <work>/<kernel>/summary.txt: ctest shows a passing test's output only with
# -V, and scripts/test.sh prints these files.
finish() {
  local body=$1 outcome=$2
  exec > >(tee "$lane/summary.txt")
  echo "----- vm-lane summary ($kernel, ${elapsed}s wall, console: $console) -----"
  echo "TLSD-VM-KERNEL: ${vm_release:-<none>}"
  printf '%s\n' "$body"
  # Kernel warnings don't fail the lane, but must not go unnoticed.
  if grep -q 'WARNING: CPU: ' "$console"; then
    echo "$prog: note: kernel WARNING(s) on the console: $(grep -m1 'WARNING: CPU: ' "$console")"
  fi
  if [[ ${#reasons[@]} -gt 0 ]]; then
    for r in "${reasons[@]}"; do echo "$prog: FAIL: $r"; done
    echo "vm-lane(${vm_release:-$KERNEL_RELEASE}): $outcome -- FAILED"
    exit 1
  fi
  echo "vm-lane($vm_release): $outcome"
  exit 0
}

if [[ -n $run_name ]]; then
  # --run: the script's exit code (in the sentinel) is the verdict; no gtest
  # output is expected.
  run_end=$(grep -m1 -E '^TLSD-VM-RUN-END: ' "$console" || true)
  if [[ -n $run_end ]]; then
    body="  run $run_name: exit ${run_end##*rc=}"
  else
    body="  run $run_name: did not run to completion"
  fi
  if [[ ${#reasons[@]} -gt 0 ]]; then
    finish "$body" "run $run_name"
  fi
  finish "$body" "run $run_name exited 0"
fi

if grep -qF '[  FAILED  ]' "$console"; then
  reasons+=("gtest failures: $(grep -F '[  FAILED  ]' "$console" | grep -vE 'listed below|FAILED TESTS' | sed 's/^\[  FAILED  \] //; s/ (.*//' | sort -u | tr '\n' ' ')")
fi

# Per-binary summary from the gtest footers between our BEGIN/END markers.
summary=$(awk '
  /^TLSD-VM-TEST-BEGIN: / { name = $2; p = -1; s = 0; f = 0; next }
  name != "" && /^\[  PASSED  \] [0-9]+ tests?\./ { p = $4 }
  name != "" && /^\[  SKIPPED \] [0-9]+ tests?, listed below:/ { s = $4 }
  name != "" && /^\[  FAILED  \] [0-9]+ tests?, listed below:/ { f = $4 }
  /^TLSD-VM-TEST-END: / {
    rc = $3; sub(/^rc=/, "", rc)
    printf "%s %d %d %d %s\n", name, p, s, f, rc
    name = ""
  }' "$console")
total_p=0 total_s=0 total_f=0
declare -A reported=()
summary_lines=()
while read -r name p s f rc; do
  [[ -n $name ]] || continue
  reported[$name]=1
  if [[ $p -lt 0 ]]; then
    summary_lines+=("  $name: no gtest summary (crashed?), exit $rc")
    reasons+=("$name printed no gtest summary (exit $rc)")
    p=0
  else
    line="  $name: [  PASSED  ] $p test"
    if [[ $p -ne 1 ]]; then line+=s; fi
    line+=". ($s skipped"
    if [[ $f -gt 0 ]]; then line+=", $f failed"; fi
    if [[ $rc != 0 ]]; then line+=", exit $rc"; fi
    line+=")"
    summary_lines+=("$line")
  fi
  total_p=$((total_p + p)); total_s=$((total_s + s)); total_f=$((total_f + f))
done <<<"$summary"
for n in "${test_names[@]}"; do
  if [[ -z ${reported[$n]:-} ]]; then
    summary_lines+=("  $n: did not run to completion")
    if [[ -n $end_line ]]; then reasons+=("$n did not run"); fi
  fi
done
if [[ $total_p -eq 0 ]]; then
  reasons+=("zero tests passed")
fi

if [[ ${#reasons[@]} -gt 0 ]]; then
  finish "$(printf '%s\n' "${summary_lines[@]}")" \
    "$total_p passed, $total_f failed, $total_s skipped"
fi
finish "$(printf '%s\n' "${summary_lines[@]}")" "$total_p passed, 0 failed, $total_s skipped"
