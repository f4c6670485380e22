# shellcheck shell=bash
# tests/cups-printers.sh - more virtual printers in a tests/cups-env.sh
# directory: add-printer, kill-printer, restart-printer, printer-media,
# printer-port.  Sourced by tests/cups-env.sh (which documents the usage);
# it uses that file's _ce_* helpers.
#
# Design notes:
# - ippeveprinter's built-in printers (-s/-2) offer letter, legal, A4 and
#   envelopes, plus A5/A6 and photo sizes in colour, never A3.  --media=
#   writes a PPD with the sizes asked and runs ippeveprinter -P with it
#   (-2 and -s are refused next to -P; the PPD carries colour, duplex and
#   speed).  Sizes are written in exact points: ippeveprinter compares
#   the media-size CUPS sends, in hundredths of mm, exactly.
# - The PPD has one real tray (InputSlot Tray1): ippeveprinter's /media
#   web form (on by default) empties or fills real trays, which sets or
#   clears its media-empty reason; "auto" alone is a source the form
#   skips, and a form that finds no tray leaves media-col-ready broken.
# - A printer's port, options and command are kept under DIR/run so that
#   restart-printer brings the same printer back on the same port: the
#   queue's device URI names it.

_ce_name_ok() {       # _ce_name_ok NAME: usable as a queue and a file suffix
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ ]] && [ "$1" != test1 ]
}

_ce_ppd_size() {      # _ce_ppd_size PWG-NAME: "PPDNAME WIDTH HEIGHT" in points
    local n=$1 ppdname w h
    case $n in
    iso_a3_297x420mm) ppdname=A3 ;;
    iso_a4_210x297mm) ppdname=A4 ;;
    iso_a5_148x210mm) ppdname=A5 ;;
    iso_a6_105x148mm) ppdname=A6 ;;
    na_letter_8.5x11in) ppdname=Letter ;;
    na_legal_8.5x14in) ppdname=Legal ;;
    *) _ce_fail "--media: $n is not a size this harness knows (A3-A6, letter, legal)"; return 1 ;;
    esac
    # Exact points (mm * 72 / 25.4): ippeveprinter compares media-size
    # in hundredths of mm exactly against what CUPS sends.
    read -r w h < <(awk -v s="${n##*_}" 'BEGIN {
        u = (s ~ /mm$/) ? 72 / 25.4 : 72; sub(/(mm|in)$/, "", s); split(s, d, "x")
        printf "%.12f %.12f\n", d[1] * u, d[2] * u }')
    echo "$ppdname $w $h"
}

_ce_write_ppd() {     # _ce_write_ppd FILE MEDIA-LIST COLOR(0/1) DUPLEX(0/1) PPM
    local f=$1 media=$2 color=$3 duplex=$4 ppm=$5 m first="" name w h
    local -a sizes=()
    for m in ${media//,/ }; do
        read -r name w h < <(_ce_ppd_size "$m") || return 1
        [ -n "$name" ] || return 1
        sizes+=("$name $w $h")
        [ -n "$first" ] || first=$name
    done
    [ -n "$first" ] || { _ce_fail "--media: no size given"; return 1; }
    {
        printf '%s\n' '*PPD-Adobe: "4.3"' '*FormatVersion: "4.3"' '*FileVersion: "1.0"' \
            '*LanguageVersion: English' '*LanguageEncoding: ISOLatin1' '*PCFileName: "TEST.PPD"' \
            '*Manufacturer: "Test"' '*Product: "(Test)"' '*ModelName: "Test"' \
            '*ShortNickName: "Test"' '*NickName: "Test printer for copees-spool"' \
            '*PSVersion: "(3010.000) 0"' '*LanguageLevel: "3"' '*FileSystem: False' \
            '*LandscapeOrientation: Plus90' '*TTRasterizer: Type42' '*DefaultResolution: 600dpi'
        if [ "$color" = 1 ]; then
            printf '%s\n' '*ColorDevice: True' '*DefaultColorSpace: RGB'
        else
            printf '%s\n' '*ColorDevice: False' '*DefaultColorSpace: Gray'
        fi
        printf '*Throughput: "%s"\n' "$ppm"
        for kw in PageSize PageRegion; do
            printf '*OpenUI *%s/Media Size: PickOne\n*OrderDependency: 10 AnySetup *%s\n*Default%s: %s\n' \
                "$kw" "$kw" "$kw" "$first"
            for m in "${sizes[@]}"; do
                read -r name w h <<< "$m"
                printf '*%s %s/%s: "<</PageSize[%s %s]>>setpagedevice"\n' "$kw" "$name" "$name" "$w" "$h"
            done
            printf '*CloseUI: *%s\n' "$kw"
        done
        # One real tray, so ippeveprinter's /media form can empty and fill
        # it (media-empty); "auto" alone is a source that form skips.
        printf '%s\n' '*OpenUI *InputSlot/Media Source: PickOne' '*OrderDependency: 10 AnySetup *InputSlot' \
            '*DefaultInputSlot: Tray1' '*InputSlot Tray1/Tray 1: "<</MediaPosition 1>>setpagedevice"' \
            '*CloseUI: *InputSlot'
        printf '*DefaultImageableArea: %s\n*DefaultPaperDimension: %s\n' "$first" "$first"
        for m in "${sizes[@]}"; do
            read -r name w h <<< "$m"
            awk -v n="$name" -v w="$w" -v h="$h" 'BEGIN {
                printf "*ImageableArea %s/%s: \"12 12 %.12f %.12f\"\n", n, n, w - 12, h - 12
                printf "*PaperDimension %s/%s: \"%s %s\"\n", n, n, w, h }'
        done
        if [ "$duplex" = 1 ]; then
            printf '%s\n' '*OpenUI *Duplex/2-Sided Printing: PickOne' '*OrderDependency: 10 AnySetup *Duplex' \
                '*DefaultDuplex: None' '*Duplex None/Off: "<</Duplex false>>setpagedevice"' \
                '*Duplex DuplexNoTumble/Long Edge: "<</Duplex true/Tumble false>>setpagedevice"' \
                '*Duplex DuplexTumble/Short Edge: "<</Duplex true/Tumble true>>setpagedevice"' \
                '*CloseUI: *Duplex'
        fi
        if [ "$color" = 1 ]; then
            printf '%s\n' '*OpenUI *ColorModel/Color Mode: PickOne' '*OrderDependency: 10 AnySetup *ColorModel' \
                '*DefaultColorModel: RGB' '*ColorModel Gray/Grayscale: "<</ProcessColorModel /DeviceGray>>setpagedevice"' \
                '*ColorModel RGB/Color: "<</ProcessColorModel /DeviceRGB>>setpagedevice"' '*CloseUI: *ColorModel'
        fi
        printf '%s\n' '*DefaultFont: Courier' '*Font Courier: Standard "(002.004S)" Standard ROM'
    } > "$f"
}

_ce_printer_opts() {  # _ce_printer_opts DIR NAME OPTION...: ippeveprinter's options
                      # into the array OPTS; --media=LIST becomes a PPD (-P)
    local d=$1 name=$2 media="" color=0 duplex=0 ppm=10
    local -a caps=() rest=()
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
        --media=*) media=${1#--media=} ;;
        -2) duplex=1; caps+=(-2) ;;
        -s) [ $# -ge 2 ] || { _ce_fail "-s needs SPEED[,COLOR]"; return 1; }
            caps+=(-s "$2"); ppm=${2%%,*}
            case $2 in *,*) [ "${2#*,}" -gt 0 ] 2>/dev/null && color=1 ;; esac
            shift ;;
        *) rest+=("$1") ;;
        esac
        shift
    done
    if [ -z "$media" ]; then
        OPTS=("${rest[@]}" "${caps[@]}")
        return 0
    fi
    # -2 and -s are "legacy" options that ippeveprinter refuses next to -P:
    # the PPD says it all (sizes, colour, duplex, speed).
    _ce_write_ppd "$d/printer-$name.ppd" "$media" "$color" "$duplex" "$ppm" || return 1
    OPTS=("${rest[@]}" -P "$d/printer-$name.ppd")
}

_cups_env_add_printer() (   # add-printer DIR NAME [OPTION...]: printer + queue NAME
    set -u
    umask 022
    [ $# -ge 2 ] || { _ce_fail "usage: add-printer DIR NAME [IPPEVEPRINTER-OPTION...]"; exit 2; }
    d=$(realpath -m "$1") name=$2
    shift 2
    tmo=${CUPS_ENV_TIMEOUT:-30}
    sock=$d/run/cups.sock
    _ce_name_ok "$name" || { _ce_fail "$name: a printer name is [A-Za-z0-9_-] (not test1)"; exit 2; }
    [ -f "$d/env" ] || { _ce_fail "$d is not started: run start first"; exit 1; }
    [ -f "$d/run/printer-$name.port" ] && { _ce_fail "printer $name already exists in $d"; exit 1; }
    if [ $# -gt 0 ]; then _ce_printer_opts "$d" "$name" "$@" || exit 1; else OPTS=(-2 -s "60,60"); fi
    opts=("${OPTS[@]}")
    [ "${IPPEVE_KEEP:-1}" = 1 ] && opts=(-k "${opts[@]}")
    rm -f "$d/ipp-jobs-$name.log"
    _ce_write_recorder "$d" "$name"
    cmd=${IPPEVE_CMD:-$d/ipp-record-$name.sh}
    _ce_start_printer "$d" "$tmo" "$name" "" "$cmd" "${opts[@]}" || exit 1
    # What restart-printer needs to bring the same printer back.
    echo "$IPP_PORT" > "$d/run/printer-$name.port"
    echo "$cmd" > "$d/run/printer-$name.cmd"
    printf '%s\0' "${opts[@]}" > "$d/run/printer-$name.opts"
    echo "$name" >> "$d/run/printers"
    CUPS_SERVER=$sock lpadmin -p "$name" -E -v "ipp://localhost:$IPP_PORT/ipp/print" -m everywhere \
        >> "$d/log/lpadmin.log" 2>&1 ||
        { _ce_fail "lpadmin $name failed (see $d/log/lpadmin.log and $d/log/error_log)"; exit 1; }
    _ce_wait "$tmo" test -s "$d/ppd/$name.ppd" ||
        { _ce_fail "queue $name has no PPD: cupsd could not query the printer (see $d/log/error_log)"; exit 1; }
    _ce_wait "$tmo" _ce_queue_ready "$sock" "$name" ||
        { _ce_fail "queue $name is not enabled and accepting (see $d/log/error_log)"; exit 1; }
    echo "cups-env: printer $name on localhost:$IPP_PORT ($*), queue $name"
)

_cups_env_kill_printer() (  # kill-printer DIR NAME: the printer dies (the queue stays)
    [ $# -eq 2 ] || { _ce_fail "usage: kill-printer DIR NAME"; exit 2; }
    d=$(realpath -m "$1") name=$2
    _ce_name_ok "$name" && [ -f "$d/run/printer-$name.port" ] ||
        { _ce_fail "no printer $name in $d"; exit 1; }
    [ -f "$d/run/ippeveprinter-$name.pid" ] || exit 0
    _ce_kill_tree "$(cat "$d/run/ippeveprinter-$name.pid")" ippeveprinter || exit 1
    rm -f "$d/run/ippeveprinter-$name.pid"
)

_cups_env_restart_printer() (   # restart-printer DIR NAME: back on the same port
    [ $# -eq 2 ] || { _ce_fail "usage: restart-printer DIR NAME"; exit 2; }
    d=$(realpath -m "$1") name=$2
    tmo=${CUPS_ENV_TIMEOUT:-30}
    _ce_name_ok "$name" && [ -f "$d/run/printer-$name.port" ] ||
        { _ce_fail "no printer $name in $d"; exit 1; }
    if [ -f "$d/run/ippeveprinter-$name.pid" ] && _ce_alive "$(cat "$d/run/ippeveprinter-$name.pid")"; then
        _ce_fail "printer $name is running: kill-printer first"; exit 1
    fi
    mapfile -d '' opts < "$d/run/printer-$name.opts"
    _ce_start_printer "$d" "$tmo" "$name" "$(cat "$d/run/printer-$name.port")" \
        "$(cat "$d/run/printer-$name.cmd")" "${opts[@]}"
)

_cups_env_printer_media() (    # printer-media DIR NAME empty|loaded: the trays
    # What staff see when paper runs out: ippeveprinter's own /media form
    # (its web forms are on by default) empties or fills every real tray
    # of the printer, which sets or clears its media-empty reason; a job
    # that reaches an empty printer waits there with media-needed, and
    # CUPS's queue shows media-empty-warning,media-needed-warning.
    [ $# -eq 3 ] || { _ce_fail "usage: printer-media DIR NAME empty|loaded"; exit 2; }
    d=$(realpath -m "$1") name=$2
    case $3 in empty) level=0 ;; loaded) level=250 ;; *) _ce_fail "printer-media: empty or loaded"; exit 2 ;; esac
    if [ "$name" = test1 ]; then port=$(sed -n "s/^export IPP_TEST_PORT=//p" "$d/env")
    else port=$(cat "$d/run/printer-$name.port" 2>/dev/null); fi
    [ -n "$port" ] || { _ce_fail "no printer $name in $d"; exit 1; }
    uri=ipp://localhost:$port/ipp/print
    attrs=$(ipptool -tv "$uri" get-printer-attributes.test 2>/dev/null)
    media=$(sed -n 's/^ *media-default ([^)]*) = //p' <<< "$attrs")
    sources=$(sed -n 's/^ *media-source-supported ([^)]*) = //p' <<< "$attrs")
    query="" i=0
    for src in ${sources//,/ }; do
        case $src in auto|manual|*-man*) ;; *) query+="size$i=$media&type$i=auto&level$i=$level&" ;; esac
        i=$((i + 1))
    done
    [ -n "$query" ] || { _ce_fail "printer $name has no tray the /media form can change"; exit 1; }
    curl -sf -o /dev/null "http://localhost:$port/media?${query%&}" ||
        { _ce_fail "printer $name: GET /media failed"; exit 1; }
    reasons=$(ipptool -tv "$uri" get-printer-attributes.test 2>/dev/null |
              sed -n 's/^ *printer-state-reasons ([^)]*) = //p')
    if [ "$level" = 0 ]; then
        [[ $reasons == *media-empty* ]] || { _ce_fail "printer $name reports '$reasons', not media-empty"; exit 1; }
    else
        [[ $reasons != *media-empty* ]] || { _ce_fail "printer $name still reports '$reasons'"; exit 1; }
    fi
)

_cups_env_printer_port() {  # printer-port DIR NAME: the TCP port of printer NAME
    cat "$(realpath -m "$1")/run/printer-$2.port"
}

