#!/usr/bin/env bash
# install-deps.sh — installs everything tlsd needs to build, run and test on
# Debian 12. Idempotent; safe to re-run. Needs root (apt-get).
#
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the test peers and the kTLS VM lane
set -euo pipefail

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

build_pkgs=(
  build-essential cmake ninja-build pkg-config
  libssl-dev openssl libsystemd-dev libseccomp-dev libabsl-dev
  libgtest-dev libgmock-dev libtomlplusplus-dev libmnl-dev nlohmann-json3-dev
  clang-format clang-tidy
  curl ca-certificates
)
test_pkgs=(
  # real TLS peers and socket activation
  gnutls-bin systemd
  # the kTLS VM lane: QEMU (TCG), a busybox initramfs, kernel unpacking
  qemu-system-x86 busybox-static cpio xz-utils kmod debian-archive-keyring
  # sanitizer runtime for the ASan/UBSan build
  libclang-rt-14-dev clang
  # legacy daemons tls-wrap is tested in front of, and their TLS client
  python3 redis-server redis-tools
  # man -l renders the manual pages in the install test
  man-db groff-base
  # external TLS conformance scan (tests/conformance)
  testssl.sh
)

pkgs=("${build_pkgs[@]}")
(( want_test )) && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done

if (( ${#missing[@]} )); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
