#!/usr/bin/env bash
# `cmake --install` of the whole build, checked the way a packager would:
#   1. install every component into a staging prefix and print what landed;
#   2. each file issue 10 lists must be there, by explicit path: binaries,
#      libtlsfd (shared, with its SONAME links, and static), headers,
#      tlsfd.pc, the CMake package, the preload shim, the systemd units and
#      snippets, the policy files and docs, the man pages;
#   3. `man --warnings -l` renders every man page with no groff warning;
#   4. every installed binary answers --help and --version (exit 0, text on
#      stdout), and --version names the project's version.
# The paths relative to the prefix come from the build's GNUInstallDirs
# settings (CMakeCache.txt), so a build configured for /usr checks
# lib/<multiarch> and one for /usr/local checks lib.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -f $build/CMakeCache.txt ]] || fail "$build is not a configured build directory"
work=$(mktemp -d /tmp/tlsd-install.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# cache VAR DEFAULT: a value from the build's CMakeCache.txt, or DEFAULT when
# it is unset or empty (GNUInstallDirs leaves e.g. MANDIR empty in the cache
# and derives it).
cache() {
  local v
  v=$(sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n1)
  echo "${v:-$2}"
}
version=$(cache CMAKE_PROJECT_VERSION "")
[[ -n $version ]] || fail "no CMAKE_PROJECT_VERSION in $build/CMakeCache.txt"
build_type=$(cache CMAKE_BUILD_TYPE "")
bindir=$(cache CMAKE_INSTALL_BINDIR bin)
sbindir=$(cache CMAKE_INSTALL_SBINDIR sbin)
libdir=$(cache CMAKE_INSTALL_LIBDIR lib)
includedir=$(cache CMAKE_INSTALL_INCLUDEDIR include)
datarootdir=$(cache CMAKE_INSTALL_DATAROOTDIR share)
mandir=$(cache CMAKE_INSTALL_MANDIR "$datarootdir/man")
docdir=$(cache CMAKE_INSTALL_DOCDIR "$datarootdir/doc/tlsd")
for d in "$bindir" "$sbindir" "$libdir" "$includedir" "$mandir" "$docdir"; do
  [[ $d != /* ]] || fail "absolute install dir '$d': this test expects paths under the prefix"
done

# 1. Install everything (no --component: what a plain `cmake --install` does).
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  fail "cmake --install failed: $(cat "$work/install.log")"
echo "installed under $prefix (version $version, ${build_type:-no} build type):"
(cd "$prefix" && find . \( -type f -o -type l \) -printf '%P\n' | LC_ALL=C sort)

# 2. Every file we ship, by path.
expected=(
  # daemon, admin tool, wrapper, demo backend
  "$sbindir/tlsd"
  "$sbindir/tlsctl"
  "$bindir/tls-wrap"
  "$bindir/tlsd-demo-backend"
  # libtlsfd: shared (name link, SONAME link, real file), static, preload shim
  "$libdir/libtlsfd.so"
  "$libdir/libtlsfd.so.0"
  "$libdir/libtlsfd.so.0.1.0"
  "$libdir/libtlsfd.a"
  "$libdir/tlsd/libtls-wrap-preload.so"
  # headers, pkg-config, CMake package
  "$includedir/tlsfd.h"
  "$includedir/tlsfd.hpp"
  "$libdir/pkgconfig/tlsfd.pc"
  "$libdir/cmake/tlsfd/tlsfdConfig.cmake"
  "$libdir/cmake/tlsfd/tlsfdConfigVersion.cmake"
  "$libdir/cmake/tlsfd/tlsfdTargets.cmake"
  # systemd units and the snippets they rely on
  lib/systemd/system/tlsd.service
  lib/systemd/system/tlsd.socket
  lib/systemd/system/tlsd-control.socket
  lib/systemd/system/tlsd-demo-backend.service
  lib/systemd/system/tlsd-demo-backend.socket
  lib/systemd/system/tls-wrap@.service
  lib/systemd/system/tls-wrap-exec@.service
  lib/modules-load.d/tlsd.conf
  lib/tmpfiles.d/tlsd.conf
  # policy: example config, seccomp profiles; docs the units point at
  "$docdir/examples/tlsd.toml"
  "$docdir/examples/systemd/tlsd.toml"
  "$docdir/policy/keyholder.policy"
  "$docdir/policy/engine.policy"
  "$docdir/policy/worker-seccomp.md"
  "$docdir/systemd.md"
  "$docdir/tls-wrap.md"
  "$docdir/reload.md"
  "$docdir/privilege-separation.md"
  "$docdir/config.md"
  "$docdir/metrics.md"
  "$docdir/process-model.md"
  # man pages
  "$mandir/man1/tls-wrap.1"
  "$mandir/man3/libtlsfd.3"
  "$mandir/man5/tlsd.conf.5"
  "$mandir/man8/tlsd.8"
  "$mandir/man8/tlsctl.8"
)
# The per-configuration half of the exported targets, named after the build
# type (tlsfdTargets-relwithdebinfo.cmake, ...; -noconfig without one).
bt=$(tr '[:upper:]' '[:lower:]' <<<"${build_type:-noconfig}")
expected+=("$libdir/cmake/tlsfd/tlsfdTargets-$bt.cmake")
# Every unit template in systemd/ is installed (one added later must be too).
declare -A listed=()
for f in "${expected[@]}"; do listed[$f]=1; done
for unit in "$src"/systemd/*.in; do
  name=${unit##*/}
  f=lib/systemd/system/${name%.in}
  if [[ -z ${listed[$f]:-} ]]; then expected+=("$f"); fi
done

missing=()
for f in "${expected[@]}"; do
  [[ -e $prefix/$f || -L $prefix/$f ]] || missing+=("$f")
done
problems=()
for f in "${missing[@]}"; do problems+=("not installed: $f"); done
# Links must resolve, and executables be executable.
for f in "$libdir/libtlsfd.so" "$libdir/libtlsfd.so.0"; do
  if [[ -L $prefix/$f && ! -e $prefix/$f ]]; then problems+=("dangling link: $f"); fi
done
for f in "$sbindir/tlsd" "$sbindir/tlsctl" "$bindir/tls-wrap" "$bindir/tlsd-demo-backend"; do
  if [[ -e $prefix/$f && ! -x $prefix/$f ]]; then problems+=("not executable: $f"); fi
done
echo "checked ${#expected[@]} expected files: ${#missing[@]} missing"

# 3. The man pages render without a warning (groff's warnings go to stderr;
# man exits nonzero if the page cannot be formatted).
for page in man1/tls-wrap.1 man3/libtlsfd.3 man5/tlsd.conf.5 man8/tlsd.8 man8/tlsctl.8; do
  f=$prefix/$mandir/$page
  [[ -f $f ]] || continue # already reported as missing
  rc=0
  LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" >"$work/page.txt" 2>"$work/page.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    problems+=("man -l $page exited $rc: $(cat "$work/page.err")")
  elif [[ -s $work/page.err ]]; then
    problems+=("man --warnings -l $page warned: $(cat "$work/page.err")")
  elif [[ $(wc -l <"$work/page.txt") -lt 20 ]]; then
    problems+=("man -l $page rendered only $(wc -l <"$work/page.txt") lines")
  else
    echo "man -l $page: $(wc -l <"$work/page.txt") lines, no warnings"
  fi
done

# 4. --help and --version of every installed binary. The binaries find the
# staged libtlsfd through LD_LIBRARY_PATH (install strips the build rpath).
export LD_LIBRARY_PATH=$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
version_re="(^|[^0-9.])${version//./\\.}($|[^0-9.])"
for f in "$sbindir/tlsd" "$sbindir/tlsctl" "$bindir/tls-wrap" "$bindir/tlsd-demo-backend"; do
  exe=$prefix/$f
  name=${f##*/}
  [[ -x $exe ]] || continue # already reported
  for opt in --help --version; do
    rc=0
    "$exe" "$opt" >"$work/out" 2>"$work/err" </dev/null || rc=$?
    if [[ $rc -ne 0 ]]; then
      problems+=("$name $opt exited $rc: $(head -c 500 "$work/err")")
    elif [[ ! -s $work/out ]]; then
      problems+=("$name $opt printed nothing on stdout")
    elif [[ $opt == --version ]] && ! grep -Eq "$version_re" "$work/out"; then
      problems+=("$name --version does not name version $version: $(head -c 200 "$work/out")")
    else
      echo "$name $opt: ok ($(head -n1 "$work/out"))"
    fi
  done
done

if ((${#problems[@]} > 0)); then
  printf 'FAIL: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "PASS: cmake --install staged every file, man -l rendered every page, every binary answers --help and --version $version"
