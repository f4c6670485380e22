#!/bin/bash
# tests/fuzz/run-http.sh SECONDS [libFuzzer args...]
#
# Build the libFuzzer target tests/fuzz/fuzz-http.c with clang
# (-fsanitize=fuzzer,address,undefined) against the daemon's own sources
# (the list of daemon/libcopees.a in the configured Makefile), then run it
# for SECONDS (default 60) from the seed corpus tests/fuzz/http-corpus/.
# Runs from a configured tree (config.h); outside automake's build, so
# `make check` does not need clang.  Exits non-zero when the target
# crashes (the reproducer is kept and its path printed).
#
# FUZZ_WORK=DIR keeps the build, the grown corpus and any crash there
# (default: a fresh directory under /tmp, removed unless something crashed).
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
CC=${CLANG:-clang}

command -v "$CC" >/dev/null || { echo "run-http.sh: $CC not found" >&2; exit 2; }
[ -f "$top_builddir/config.h" ] && [ -f "$top_builddir/Makefile" ] ||
    { echo "run-http.sh: configure the tree first ($top_builddir)" >&2; exit 2; }

mkvar() {   # the value of a variable of the configured Makefile
    make -s --no-print-directory -C "$top_builddir" -f Makefile \
         -f <(printf 'print-%%:\n\t@echo $(%s)\n' '$*') "print-$1"
}
srcs=$(mkvar daemon_libcopees_a_SOURCES | tr ' ' '\n' | grep '\.c$')
dep_cflags=$(mkvar COPEES_DEP_CFLAGS)
dep_libs=$(mkvar COPEES_DEP_LIBS)

keep=${FUZZ_WORK:+yes}
work=${FUZZ_WORK:-$(mktemp -d /tmp/copees-fuzz-http.XXXXXX)}
mkdir -p "$work/obj" "$work/corpus" "$work/artifacts"
cflags=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
        -fno-sanitize-recover=undefined -DHAVE_CONFIG_H "-I$top_builddir" "-I$top_srcdir"
        -iquote "$top_srcdir/daemon" '-DPREFLIGHT_HELPER_PATH="/bin/true"'
        '-DCOPEES_CONF_DEFAULT="/nonexistent/copeesd.conf"')
read -r -a depc <<<"$dep_cflags"

echo "# building the fuzz target in $work" >&2
objs=() pids=()
for s in $srcs tests/fuzz/fuzz-http.c; do
    o=$work/obj/$(basename "${s%.c}").o
    objs+=("$o")
    "$CC" -c "${cflags[@]}" "${depc[@]}" -o "$o" "$top_srcdir/$s" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || { echo "run-http.sh: build failed" >&2; exit 2; }
done
# shellcheck disable=SC2086
"$CC" -fsanitize=fuzzer,address,undefined -o "$work/fuzz-http" "${objs[@]}" $dep_libs ||
    { echo "run-http.sh: link failed" >&2; exit 2; }

echo "# running for $secs s" >&2
rc=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
"$work/fuzz-http" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    -dict="$here/http.dict" "$@" "$work/corpus" "$here/http-corpus" || rc=$?
crashes=$(ls "$work/artifacts" 2>/dev/null | wc -l)
if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    echo "run-http.sh: the target failed (exit $rc); reproducers in $work/artifacts:" >&2
    ls -l "$work/artifacts" >&2
    exit 1
fi
echo "# corpus grew to $(ls "$work/corpus" | wc -l) inputs" >&2
[ -n "$keep" ] || rm -rf "$work"
exit 0
