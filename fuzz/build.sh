#!/usr/bin/env bash
# Builds the fuzz target as `cargo fuzz build` does (libFuzzer + SanitizerCoverage, with
# AddressSanitizer unless FUZZ_SANITIZER=none), with plain cargo: RUSTC_BOOTSTRAP=1 lets the
# stable toolchain take the -Z flags. Output: fuzz/target/x86_64-unknown-linux-gnu/release/ioctl
set -euo pipefail
cd "$(dirname "$0")"
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
if [ "${FUZZ_SANITIZER:-address}" = address ]; then
  flags+=" -Zsanitizer=address"
fi
RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" cargo build --release --target x86_64-unknown-linux-gnu --bin ioctl "$@"
