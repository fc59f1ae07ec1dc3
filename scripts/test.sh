#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it (.ci/run calls exactly this).
#
#   1. installs what the tests need (scripts/install-deps.sh --test)
#   2. checks formatting
#   3. builds with ASan+UBSan and runs the host tests under them
#   4. builds the libFuzzer targets with clang-14 (build/fuzz) and runs each
#      for TLSD_FUZZ_SECONDS on its seed corpus; any crash fails (docs/fuzzing.md)
#   5. builds RelWithDebInfo with -Werror and runs every test, including the
#      kTLS VM lane (QEMU with Debian's 6.1 and sid cloud kernels)
#
# Environment: TLSD_VM_CACHE (kernel package cache, default
# /var/cache/tlsd-vm), TLSD_SKIP_ASAN=1 to skip step 3 and TLSD_SKIP_FUZZ=1
# to skip step 4 while iterating, TLSD_FUZZ_SECONDS (default 60) per fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh --test
export TLSD_VM_CACHE="${TLSD_VM_CACHE:-/var/cache/tlsd-vm}"
mkdir -p "$TLSD_VM_CACHE"

echo "== format check"
bash scripts/check-format.sh

if [[ "${TLSD_SKIP_ASAN:-0}" != 1 ]]; then
  echo "== ASan+UBSan build and host tests"
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTLSD_WERROR=ON \
    -DTLSD_SANITIZE=ON -DTLSD_VM_LANE=OFF >/dev/null
  ninja -C build/asan
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j 2 --timeout 600
fi

if [[ "${TLSD_SKIP_FUZZ:-0}" != 1 ]]; then
  echo "== fuzzers (libFuzzer, ${TLSD_FUZZ_SECONDS:-60} s each)"
  CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTLSD_VM_LANE=OFF -DTLSD_FUZZ_SECONDS="${TLSD_FUZZ_SECONDS:-60}" >/dev/null
  ninja -C build/fuzz tlsd_fuzzers
  fuzz_rc=0
  ctest --test-dir build/fuzz -L fuzz --output-on-failure || fuzz_rc=$?
  # Executions and coverage per target (ctest shows no output of a pass).
  cat build/fuzz/tests/fuzz/fuzz_*/summary.txt 2>/dev/null || true
  ((fuzz_rc == 0)) || exit "$fuzz_rc"
fi

echo "== RelWithDebInfo build, all tests including the kTLS VM lane"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSD_WERROR=ON >/dev/null
ninja -C build/ci
rc=0
rm -f build/ci/tests/ktls-vm/work/*/*/summary.txt build/ci/tests/conformance/testssl/summary.txt
ctest --test-dir build/ci --output-on-failure -j 2 --timeout 900 || rc=$?
# The VM lane's inner summaries (kernel, GoogleTest counts per binary), which
# ctest does not show for a passing test.
echo "== kTLS VM lane summaries"
for f in build/ci/tests/ktls-vm/work/*/*/summary.txt; do
  [[ -f $f ]] && cat "$f"
done
# testssl.sh's verdict on tlsd's defaults (docs/conformance.md).
echo "== testssl.sh summary"
cat build/ci/tests/conformance/testssl/summary.txt 2>/dev/null || echo "(no summary: testssl did not run)"
exit "$rc"
