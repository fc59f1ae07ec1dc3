#!/usr/bin/env bash
# fetch-kernel.sh <bookworm|sid> <cache_dir>
#
# Fetches a Debian cloud kernel (vmlinuz + modules) for the kTLS VM lane
# WITHOUT installing it and WITHOUT touching the machine's apt setup: apt runs
# with a private sources list and private state/cache dirs under <cache_dir>,
# `apt-get download` fetches the .debs, and `dpkg-deb -x` unpacks them.
#
# Why: the host kernel has no kTLS (see docs/PLATFORM-FACTS), so real kTLS
# tests run under QEMU with a stock Debian kernel. Debian 12 (bookworm, 6.1)
# is what users run; sid (7.x) has TLS 1.3 rekey and the newest behaviour.
#
# Output: human-readable progress on stderr; on stdout, shell-style lines
# (KERNEL_RELEASE=..., KERNEL_TREE=..., VMLINUZ=..., MODULES_DIR=...,
# KERNEL_PKG_VERSION=..., KERNEL_SOURCE=downloaded|cached|cached-offline|
# cached-update-failed)
# for run-lane.sh to read.
#
# Environment:
#   TLSD_VM_DEBIAN_MIRROR  use this mirror URI instead of the one in the
#                          machine's apt config
#   TLSD_VM_OFFLINE=1      skip `apt-get update`; use the cached kernel
set -euo pipefail

prog=fetch-kernel
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: $0 <bookworm|sid> <cache_dir>"
suite=$1
cache_root=$2
case "$suite" in
  bookworm|sid) ;;
  *) die "unknown kernel suite '$suite' (want bookworm or sid)" ;;
esac

for tool in apt-get apt-cache dpkg-deb depmod flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/install-deps.sh --test)"
done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $keyring ]] || die "$keyring missing (package debian-archive-keyring)"

mkdir -p "$cache_root"
cache_root=$(cd "$cache_root" && pwd)
base=$cache_root/$suite
mkdir -p "$base/apt/lists/partial" "$base/apt/cache/archives/partial" \
         "$base/apt/state" "$base/kernels"

# Serialise fetches that share a cache (several build dirs may point at one
# TLSD_VM_CACHE). The lock only covers fetching/unpacking; readers use the
# finished, immutable tree afterwards.
exec 9>"$base/.lock"
flock -w 900 9 || die "timed out waiting for the cache lock $base/.lock"

# --- The Debian mirror: read from the machine's own apt config ------------
# Never hard-coded: CI and developer machines may point at different mirrors
# (or a proxy), and only that mirror is reachable.
find_mirror() {
  local f uri
  # deb822 files (Debian 12's default is debian.sources). A stanza qualifies
  # if it is enabled, has Types: deb and lists the plain `bookworm` suite;
  # the first URI wins. The sid lane uses the same mirror (same archive).
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    uri=$(awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ / bookworm / &&
            tolower(enabled) != "no" && uris != "") {
          n = split(uris, u, " "); print u[1]; done = 1; exit
        }
        types = suites = uris = enabled = ""; cur = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/   { v = $0; gsub(/[ \t]+/, " ", v)
                   if (cur == "types") types = types v
                   else if (cur == "suites") suites = suites v
                   else if (cur == "uris") uris = uris v
                   next }
      {
        k = tolower($0); sub(/:.*/, "", k)
        v = $0; sub(/^[^:]*:[ \t]*/, "", v); gsub(/[ \t]+/, " ", v); sub(/ $/, "", v)
        cur = k
        if (k == "types") types = v
        else if (k == "suites") suites = v
        else if (k == "uris") uris = v
        else if (k == "enabled") enabled = v
      }
      END { if (!done) flush() }' "$f")
    if [[ -n $uri ]]; then printf '%s\n' "$uri"; return 0; fi
  done
  # One-line style: deb [options] URI SUITE COMPONENTS...
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    uri=$(awk '
      /^[ \t]*#/ { next }
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == "bookworm") { print $i; exit }
      }' "$f")
    if [[ -n $uri ]]; then printf '%s\n' "$uri"; return 0; fi
  done
  return 1
}

if [[ -n ${TLSD_VM_DEBIAN_MIRROR:-} ]]; then
  mirror=$TLSD_VM_DEBIAN_MIRROR
  log "mirror from TLSD_VM_DEBIAN_MIRROR: $mirror"
else
  mirror=$(find_mirror) || die "no 'deb ... bookworm' source found in /etc/apt (set TLSD_VM_DEBIAN_MIRROR)"
fi
mirror=${mirror%/}
case "$mirror" in
  http://*|https://*) ;;
  *) die "mirror URI '$mirror' is not http(s); set TLSD_VM_DEBIAN_MIRROR" ;;
esac

sources=$base/apt/sources.list
printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$suite" >"$sources.new"
mv "$sources.new" "$sources"

# Everything apt reads or writes is private to this cache: sources, lists,
# package cache, state, preferences (the machine may pin kernel packages),
# and the dpkg status (so the host's installed packages don't matter).
# /etc/apt/apt.conf.d is still read on purpose: it may hold the proxy or
# mirror settings that make the registry reachable at all.
apt_opts=(
  -o "Dir::Etc::SourceList=$sources"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State=$base/apt/state"
  -o "Dir::State::Lists=$base/apt/lists"
  -o "Dir::State::status=/dev/null"
  -o "Dir::Cache=$base/apt/cache"
  # Docker-style images set these to "" (no binary cache), which makes every
  # apt-cache call re-parse the whole index; our cache is private, so keep it.
  -o "Dir::Cache::pkgcache=pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=srcpkgcache.bin"
  -o "Acquire::Languages=none"
  -o "APT::Get::List-Cleanup=true"
)

# The most recent successfully unpacked kernel for this suite, if any.
current_file=$base/current
cached_tree() {
  local key
  [[ -r $current_file ]] || return 1
  key=$(<"$current_file")
  [[ -n $key && -f $base/kernels/$key/.complete ]] || return 1
  printf '%s\n' "$base/kernels/$key"
}

emit() { # $1 = tree, $2 = how we got it
  local tree=$1 how=$2 k v
  local KERNEL_RELEASE='' KERNEL_PKG_VERSION='' VMLINUZ_REL=''
  # kernel.env is our own KEY=VALUE file; parse it rather than source it.
  while IFS='=' read -r k v; do
    case "$k" in
      KERNEL_RELEASE) KERNEL_RELEASE=$v ;;
      KERNEL_PKG_VERSION) KERNEL_PKG_VERSION=$v ;;
      VMLINUZ_REL) VMLINUZ_REL=$v ;;
    esac
  done <"$tree/kernel.env"
  [[ -n $KERNEL_RELEASE && -n $VMLINUZ_REL ]] || die "$tree/kernel.env is incomplete"
  log "$suite kernel release $KERNEL_RELEASE (package version $KERNEL_PKG_VERSION, $how)"
  printf 'KERNEL_RELEASE=%s\n' "$KERNEL_RELEASE"
  printf 'KERNEL_PKG_VERSION=%s\n' "$KERNEL_PKG_VERSION"
  printf 'KERNEL_TREE=%s\n' "$tree"
  printf 'VMLINUZ=%s\n' "$tree/$VMLINUZ_REL"
  printf 'MODULES_DIR=%s\n' "$tree/lib/modules/$KERNEL_RELEASE"
  printf 'KERNEL_SOURCE=%s\n' "$how"
}

if [[ ${TLSD_VM_OFFLINE:-0} == 1 ]]; then
  tree=$(cached_tree) || die "TLSD_VM_OFFLINE=1 but no cached $suite kernel in $base"
  log "TLSD_VM_OFFLINE=1: not contacting the mirror"
  emit "$tree" cached-offline
  exit 0
fi

log "apt-get update ($suite from $mirror, private state in $base/apt)"
# --error-on=any: a failed index download is an error, not a warning, so we
# never resolve against a stale or partial index without saying so.
if ! apt-get "${apt_opts[@]}" -q --error-on=any update >"$base/apt/update.log" 2>&1; then
  sed 's/^/  | /' "$base/apt/update.log" >&2
  if tree=$(cached_tree); then
    log "WARNING: apt-get update failed; using the CACHED $suite kernel (may be outdated)"
    emit "$tree" cached-update-failed
    exit 0
  fi
  die "apt-get update failed and no cached $suite kernel exists"
fi

# --- Resolve the versioned image package --------------------------------
# linux-image-cloud-amd64 (meta) -> linux-image-<REL> where REL is the
# `uname -r` string, e.g. 6.1.0-50-cloud-amd64 or 7.2.13+deb14-cloud-amd64.
deps_of() {
  apt-cache "${apt_opts[@]}" depends --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "$1" 2>/dev/null |
    awk '$1 == "Depends:" || $1 == "|Depends:" || $1 == "PreDepends:" { print $2 }'
}
version_of() {
  apt-cache "${apt_opts[@]}" show --no-all-versions "$1" 2>/dev/null |
    sed -n 's/^Version: //p' | head -n1
}

image_pkg=$(deps_of linux-image-cloud-amd64 | grep -E '^linux-image-.+-cloud-amd64$' | head -n1 || true)
[[ -n $image_pkg ]] || die "cannot resolve linux-image-cloud-amd64 in $suite (see $base/apt/update.log)"
release=${image_pkg#linux-image-}
pkg_version=$(version_of "$image_pkg")
[[ -n $pkg_version ]] || die "no version for $image_pkg"

# The sid split: the image package is an empty shell that depends on
# linux-binary-REL (vmlinuz), linux-modules-REL (modules, .ko.xz) and
# linux-base-REL (config, System.map, modules.builtin/order). Bookworm ships
# everything in the image package itself.
image_deps=$(deps_of "$image_pkg")
pkgs=()
if grep -qx "linux-binary-$release" <<<"$image_deps"; then
  for p in linux-binary linux-modules linux-base; do
    if grep -qx "$p-$release" <<<"$image_deps"; then pkgs+=("$p-$release"); fi
  done
  grep -qx "linux-modules-$release" <<<"$image_deps" \
    || die "$image_pkg depends on linux-binary-$release but not linux-modules-$release"
else
  pkgs=("$image_pkg")
fi

# One tree per (release, package version): sid can rebuild the same release.
key=${release}_${pkg_version//:/%3a}
tree=$base/kernels/$key
if [[ -f $tree/.complete ]]; then
  printf '%s\n' "$key" >"$current_file"
  emit "$tree" cached
  exit 0
fi

log "resolved $image_pkg $pkg_version; downloading ${pkgs[*]}"
debs=$base/debs.tmp
rm -rf "$debs" "$tree.tmp"
mkdir -p "$debs" "$tree.tmp"
pkg_specs=()
for p in "${pkgs[@]}"; do
  v=$(version_of "$p")
  [[ -n $v ]] || die "no version for $p"
  pkg_specs+=("$p=$v")
done
# apt's download sandbox user (_apt) may not be able to write into an
# arbitrary cache dir; apt would fall back to root with a warning anyway, so
# say so explicitly. The .debs are still verified against the signed index.
(cd "$debs" && apt-get "${apt_opts[@]}" -q -o APT::Sandbox::User=root download "${pkg_specs[@]}") >&2 \
  || die "apt-get download ${pkg_specs[*]} failed"

for deb in "$debs"/*.deb; do
  dpkg-deb -x "$deb" "$tree.tmp"
done
rm -rf "$debs"

# Normalise the layout: bookworm has boot/vmlinuz-REL and lib/modules/REL,
# sid has usr/lib/modules/REL/{vmlinuz,...}. Make lib/modules/REL valid in
# both so depmod/modprobe -d work the same way.
if [[ -f $tree.tmp/boot/vmlinuz-$release ]]; then
  vmlinuz_rel=boot/vmlinuz-$release
elif [[ -f $tree.tmp/usr/lib/modules/$release/vmlinuz ]]; then
  vmlinuz_rel=usr/lib/modules/$release/vmlinuz
else
  die "no vmlinuz for $release in ${pkgs[*]}"
fi
if [[ ! -d $tree.tmp/lib/modules/$release ]]; then
  [[ -d $tree.tmp/usr/lib/modules/$release ]] || die "no modules dir for $release"
  [[ -e $tree.tmp/lib ]] || ln -s usr/lib "$tree.tmp/lib"
fi

# Neither package ships modules.dep (it is made at install time). Build it
# for the whole tree once, here, so run-lane.sh can resolve module
# dependencies with `modprobe -d ... --show-depends` (kmod reads .ko.xz).
log "depmod for $release"
depmod -b "$tree.tmp" "$release" || die "depmod failed for $release"

cat >"$tree.tmp/kernel.env" <<EOF
KERNEL_RELEASE=$release
KERNEL_PKG_VERSION=$pkg_version
VMLINUZ_REL=$vmlinuz_rel
EOF
touch "$tree.tmp/.complete"
rm -rf "$tree"
mv "$tree.tmp" "$tree"
printf '%s\n' "$key" >"$current_file"

# Keep the current tree and the one before it (a lane in another build dir
# may still be copying from it); sid moves, so older ones are dead weight.
mapfile -t old < <(find "$base/kernels" -mindepth 1 -maxdepth 1 -type d ! -name '*.tmp' \
                     -printf '%T@ %p\n' | sort -rn | tail -n +3 | cut -d' ' -f2-)
for d in "${old[@]}"; do
  log "pruning old kernel tree $d"
  rm -rf "$d"
done

emit "$tree" downloaded
