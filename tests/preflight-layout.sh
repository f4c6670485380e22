#!/bin/bash
# The preflight server's memory layout (daemon/preflight-mem.c): by
# default it times a fresh page's fault at start-up and uses the
# fault-saving layout (a huge-page block for its children's heap, its
# code's page tables handed to them, the pages a check writes copied
# ahead) only where faults are dear; `--layout` forces either.  Both
# layouts check documents alike; each leaves its own marks in the
# server's memory.
. "$(dirname "$0")/lib.sh"

FEATURES=$("$COPEES_PREFLIGHT_HELPER" --features) || bail "the helper does not run"
if [[ " $FEATURES " == *" asan "* ]]; then
    echo "1..0 # SKIP an ASan build lays out no memory of its own"
    exit 0
fi
HELPER=$(cd "$(dirname "$COPEES_PREFLIGHT_HELPER")" && pwd)/$(basename "$COPEES_PREFLIGHT_HELPER")
CUPS_SERVER=$T/no-cups.sock write_conf
"$MKPDF" --pages 1 --text "layout" "$T/one.pdf"

ready_line() { grep -o "helper server [0-9]* ready (.*)" "$T/copeesd.log" | tail -1; }
server_of() { sed -n 's/^helper server \([0-9]*\) ready.*/\1/p' <<<"$1"; }
# hg_blocks PID: mappings advised MADV_HUGEPAGE; poppler_code_anon PID: kB
# of anonymous pages in libpoppler's code mapping (given to make fork copy
# its page tables)
hg_blocks() { grep -c '^VmFlags:.* hg\( \|$\)' "/proc/$1/smaps"; }
poppler_code_anon() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / {p = / r-xp .*\/libpoppler\.so/}
         p && /^Anonymous:/ {s += $2} END {print s + 0}' "/proc/$1/smaps"
}
thp_off() { grep -q '\[never\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; }

# ------------------------------------------------------------ the default
start_copeesd
check "the helper server says which layout it chose" wait_until 20 \
    bash -c "grep -qE 'helper server [0-9]+ ready \\(.* layout-(plain|fault-saving)' '$T/copeesd.log'"
diag "default: $(ready_line)"
upload "$T/one.pdf" "order=ORD-L0"
is "a document is checked and accepted" "$STATUS" 201
stop_copeesd

# ------------------------------------------------------------ each layout, forced
for layout in fault-saving plain; do
    printf '#!/bin/sh\nexec %q "$@" --layout=%s\n' "$HELPER" "$layout" > "$T/helper-$layout"
    chmod +x "$T/helper-$layout"
    : > "$T/copeesd.log"
    COPEES_PREFLIGHT_HELPER=$T/helper-$layout start_copeesd
    check "--layout=$layout: the server says so" wait_until 20 \
        bash -c "grep -q 'helper server [0-9]* ready (.* layout-$layout' '$T/copeesd.log'"
    srv=$(server_of "$(ready_line)")
    upload "$T/one.pdf" "order=ORD-L-$layout"
    is "... a document is checked and accepted" "$STATUS" 201
    is "... and reported one page" "$(jq -r .preflight.pages <<<"$BODY")" 1
    anon=$(poppler_code_anon "${srv:-0}")
    blocks=$(hg_blocks "${srv:-0}")
    if [ $layout = fault-saving ]; then
        check "... the server's code pages go to its children ($anon kB anonymous in poppler's code)" \
            test "${anon:-0}" -gt 0
        if thp_off; then
            ok "# SKIP transparent huge pages are off here"
            ok "# SKIP transparent huge pages are off here"
        else
            is "... and it sets one huge-page block aside for their heap" "$blocks" 1
            # a page of it in the server would be shared with every child
            is "... which the server never touches, after a check" \
                "$(awk '/^Rss:/ {r = $2} /^VmFlags:.* hg( |$)/ {print r}' "/proc/${srv:-0}/smaps")" 0
        fi
    else
        is "... the server's code stays file pages only" "$anon" 0
        is "... and no huge-page block is set aside" "$blocks" 0
    fi
    stop_copeesd
done
done_testing
