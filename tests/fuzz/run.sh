#!/bin/bash
# tests/fuzz/run.sh SECONDS [libFuzzer options...] - build the preflight
# fuzz target (tests/fuzz/fuzz-preflight.c: the helper's document checks,
# daemon/preflight-checks.c) with clang's libFuzzer and the address and
# undefined-behaviour sanitizers, and run it for SECONDS from the seed
# corpus tests/fuzz/preflight-seeds/.  Outside automake's build: make
# check needs no clang.  Needs clang (Debian: clang) and the -dev packages
# the project builds with; no configured tree.
#
# Limits: -malloc_limit_mb=512 and -rss_limit_mb stand for the helper's
# RLIMIT_AS (memory = 512M), -timeout for its wall-clock kill (FUZZ_TIMEOUT
# seconds per input, default 10: a short run should not be spent on one
# slow input).  Fork mode with -ignore_ooms and -ignore_timeouts: the
# helper turns those into preflight-too-complex and preflight-timeout
# verdicts; a crash, a leak or a UBSan report stops the run.
#
# Exit 0 when nothing was found; 1 when the target crashed (the reproducer
# is kept and its path printed); 2 when it cannot build.  FUZZ_WORK=DIR
# keeps the build, the grown corpus and artifacts in DIR (default: a fresh
# directory under /tmp, removed unless something was found).
set -uo pipefail
secs=${1:-60}
[ $# -gt 0 ] && shift
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "usage: $0 SECONDS [libFuzzer options...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
CC=${CLANG:-clang}
command -v "$CC" >/dev/null || { echo "run.sh: $CC not found (Debian package clang)" >&2; exit 2; }
keep=${FUZZ_WORK:+yes}
work=${FUZZ_WORK:-$(mktemp -d /tmp/copees-fuzz-preflight.XXXXXX)}
mkdir -p "$work/corpus" "$work/artifacts" || exit 2

# config.h: the checks need only the GNU extensions configure would define
printf '#define _GNU_SOURCE 1\n' > "$work/config.h"
pkgs="poppler-glib cairo jansson glib-2.0"
# shellcheck disable=SC2046
"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$work" -iquote "$src/daemon" $(pkg-config --cflags $pkgs) \
    "$here/fuzz-preflight.c" "$src/daemon/preflight-checks.c" "$src/daemon/preflight-scan.c" \
    "$src/daemon/pfcodes.c" \
    $(pkg-config --libs $pkgs) -o "$work/fuzz-preflight" || { echo "run.sh: build failed" >&2; exit 2; }

cp "$here"/preflight-seeds/* "$work/corpus/"
echo "run.sh: $(ls "$work/corpus" | wc -l) seeds, ${secs} s, in $work"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
LSAN_OPTIONS=suppressions=$src/tests/lsan.supp:print_suppressions=0 \
UBSAN_OPTIONS=print_stacktrace=1 \
    "$work/fuzz-preflight" -fork=1 -ignore_ooms=1 -ignore_timeouts=1 -ignore_crashes=0 \
    -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-10}" \
    -max_total_time="$secs" -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" \
    > "$work/fuzz.log" 2>&1
rc=$?
grep -E '^#[0-9]+:' "$work/fuzz.log" | tail -1
found=$(ls "$work/artifacts" | grep -E '^(crash|leak)-' || true)
# In fork mode libFuzzer exits with the last job's status even when it
# ignores that job's outcome: 70 (timeout) or 71 (out of memory) when the
# time ran out during an input that is slow or too large, which the
# helper turns into a verdict.  Those, with no crash or leak kept, are
# a clean run.
case $rc in 70|71) [ -z "$found" ] && rc=0 ;; esac
if [ "$rc" = 0 ] && [ -z "$found" ]; then
    echo "run.sh: no crash in ${secs} s; the corpus grew to $(ls "$work/corpus" | wc -l) inputs"
    [ -n "$keep" ] || rm -rf "$work"
    exit 0
fi
grep -E 'ERROR|SUMMARY|runtime error' "$work/fuzz.log" | head -20
for f in $found; do
    echo "run.sh: reproducer $work/artifacts/$f (run: $work/fuzz-preflight $work/artifacts/$f)"
    [ "$(stat -c %s "$work/artifacts/$f")" -le 65536 ] && echo "base64: $(base64 -w0 "$work/artifacts/$f")"
done
exit 1
