#!/usr/bin/env bash
# idf_check_port.sh - compile-check the ESP-IDF side of esp_mcp_bridge (the
# ESP-IDF port, the portable core and the examples' main/*.c) against real
# ESP-IDF 5.5 and 6.x header trees, for esp32c3, without an Espressif
# toolchain (see idf_check.sh). Nothing is linked. `make idf-check` runs it;
# it is not part of `make test` (that needs no ESP-IDF trees).
#
# Environment:
#   IDF_CHECK   path of idf_check.sh (default: ../shared/tools/idf_check.sh
#               beside the repository)
#   IDF55_ENV   settings of the ESP-IDF 5.5 tree, as printed by idf_trees.sh:
#               "IDF_PATH=... ESP_MQTT_PATH=... CJSON_PATH=..."
#   IDF6_ENV    the same for an ESP-IDF 6.x tree
#   IDF_PATH    when neither IDF55_ENV nor IDF6_ENV is set: check this one
#               tree (with ESP_MQTT_PATH / CJSON_PATH as exported)
#   PYTHON      a Python with esp-idf-kconfig: the complete sdkconfig.h is
#               generated from ESP-IDF's Kconfig, the component's Kconfig and
#               the examples' sdkconfig.defaults. Without it the component's
#               Kconfig defaults are passed with --set.
#   TARGET      chip (default esp32c3)
# Exit status: 0 every file OK, 1 some file failed, 2 setup error.
set -u
set -o pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo" || exit 2
comp="firmware/components/esp_mcp_bridge"
examples="firmware/examples"
target="${TARGET:-esp32c3}"

check="${IDF_CHECK:-}"
if [ -z "$check" ]; then
    for c in "$repo/../shared/tools/idf_check.sh" "$(command -v idf_check.sh 2>/dev/null || true)"; do
        [ -n "$c" ] && [ -f "$c" ] && { check="$(cd "$(dirname "$c")" && pwd)/$(basename "$c")"; break; }
    done
fi
[ -n "$check" ] && [ -f "$check" ] || {
    echo "idf_check_port: idf_check.sh not found; set IDF_CHECK=/path/to/idf_check.sh" >&2; exit 2; }

trees=()
[ -n "${IDF55_ENV:-}" ] && trees+=("$IDF55_ENV")
[ -n "${IDF6_ENV:-}" ] && trees+=("$IDF6_ENV")
if [ ${#trees[@]} -eq 0 ]; then
    [ -n "${IDF_PATH:-}" ] || {
        echo "idf_check_port: set IDF55_ENV and IDF6_ENV (or IDF_PATH, ESP_MQTT_PATH, CJSON_PATH)" >&2; exit 2; }
    trees+=("IDF_PATH=$IDF_PATH ESP_MQTT_PATH=${ESP_MQTT_PATH:-} CJSON_PATH=${CJSON_PATH:-}")
fi

have_kconfgen=0
py="${PYTHON:-python3}"
"$py" -c 'import kconfgen' 2>/dev/null && have_kconfgen=1

# Kconfig defaults as --set options (used without kconfgen): unconditional
# defaults of bool/int/string options, choice defaults, and "default X if SYM"
# when SYM is already set.
kconfig_sets() {
    awk '
        function flush() { if (sym != "" && val != "") out[++n] = sym "=" val; sym = ""; val = ""; }
        $1 == "config" || $1 == "menuconfig" { flush(); sym = $2; type = ""; next }
        $1 == "choice" { flush(); inchoice = 1; next }
        $1 == "endchoice" { inchoice = 0; next }
        $1 == "bool" || $1 == "int" || $1 == "string" || $1 == "hex" { type = $1; next }
        $1 == "default" {
            if (inchoice && sym == "") { isset[$2] = 1; out[++n] = $2 "=y"; next }
            if (sym == "" || val != "") next
            line = $0; sub(/^[ \t]*default[ \t]+/, "", line)
            cond = ""
            if (match(line, /[ \t]+if[ \t]+/)) { cond = substr(line, RSTART + RLENGTH); line = substr(line, 1, RSTART - 1) }
            if (cond != "" && !(cond in isset)) next
            if (type == "bool") { if (line == "y") { val = "y"; isset[sym] = 1 } else { sym = "" } }
            else val = line
            next
        }
        END { flush(); for (i = 1; i <= n; i++) print out[i] }
    ' "$@"
}

# a private work directory: the generated sdkconfig.h holds this component's
# options, and a shared one could be rewritten by another idf_check.sh run
workdir="$(mktemp -d "${TMPDIR:-/tmp}/idf_check_port.XXXXXX")" || exit 2
trap 'rm -rf "$workdir"' EXIT
export IDF_CHECK_WORKDIR="$workdir"

comp_sets=()
if [ "$have_kconfgen" = 0 ]; then
    while IFS= read -r s; do comp_sets+=(--set "$s"); done < <(kconfig_sets "$comp/Kconfig")
fi

fail=0
run() {  # run ENV LABEL args...: one idf_check.sh invocation
    local envs="$1" label="$2"; shift 2
    local line rc
    # shellcheck disable=SC2086
    env $envs "$check" --target "$target" "$@" 2>&1 | while IFS= read -r line; do
        case "$line" in
            "idf_check: OK"*|"idf_check: FAIL"*) echo "$label ${line#idf_check: }" ;;
            *) echo "    $line" ;;
        esac
    done
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || fail=1
}

# What the linker would say about the component's own objects: the ESP-IDF
# port provides what the core expects of it, and nothing is defined twice.
nm_tool="${NM:-riscv64-unknown-elf-nm}"
check_symbols() {  # check_symbols LABEL OBJDIR
    local label="$1" dir="$2" defs dups missing="" s
    command -v "$nm_tool" >/dev/null 2>&1 || { echo "$label SKIP symbols (no $nm_tool)"; return 0; }
    compgen -G "$dir/*.o" >/dev/null || return 0
    defs="$("$nm_tool" --defined-only "$dir"/*.o 2>/dev/null | awk '$2 ~ /^[TDBRC]$/ { print $3 }' | sort)"
    dups="$(printf '%s\n' "$defs" | uniq -d | tr '\n' ' ')"
    local want="mcp_port_default_create mcp_port_default_destroy"
    [ -f "$comp/core/src/esp_mcp_bridge.c" ] && want="$want mcp_bridge_init"
    for s in $want; do
        printf '%s\n' "$defs" | grep -qx "$s" || missing="$missing $s"
    done
    if [ -z "$dups" ] && [ -z "$missing" ]; then
        echo "$label OK   symbols: port entry points defined, no symbol defined twice"
    else
        echo "$label FAIL symbols:${missing:+ missing$missing}${dups:+ defined twice: $dups}"
        fail=1
    fi
}

n_tree=0
shopt -s nullglob
comp_files=("$comp"/port/esp_idf/*.c "$comp"/core/*.c "$comp"/core/src/*.c)
for envs in "${trees[@]}"; do
    idf="$(printf '%s\n' $envs | sed -n 's/^IDF_PATH=//p')"
    ver="$(sed -n 's/^set(IDF_VERSION_MAJOR \([0-9]*\)).*/\1/p;s/^set(IDF_VERSION_MINOR \([0-9]*\)).*/.\1/p' \
        "$idf/tools/cmake/version.cmake" 2>/dev/null | tr -d '\n')"
    label="[IDF ${ver:-?}]"
    kc=()
    if [ "$have_kconfgen" = 1 ]; then kc=(--kconfig-file "$comp/Kconfig"); else kc=("${comp_sets[@]}"); fi
    if [ ${#comp_files[@]} -gt 0 ]; then
        n_tree=$((n_tree + 1))
        export IDF_CHECK_WORKDIR="$workdir/component-$n_tree"
        run "$envs" "$label" "${kc[@]}" -I "$comp/include" -I "$comp/port/esp_idf/include" \
            -I "$comp/core/include" -I "$comp/port/esp_idf" \
            "${comp_files[@]}"
        check_symbols "$label" "$IDF_CHECK_WORKDIR/obj"
        export IDF_CHECK_WORKDIR="$workdir"
    fi
    for ex in "$examples"/*/; do
        ex="${ex%/}"
        srcs=("$ex"/main/*.c)
        [ ${#srcs[@]} -gt 0 ] || continue
        exkc=("${kc[@]}")
        if [ "$have_kconfgen" = 1 ]; then
            [ -f "$ex/main/Kconfig.projbuild" ] && exkc+=(--kconfig-file "$ex/main/Kconfig.projbuild")
            [ -f "$ex/sdkconfig.defaults" ] && exkc+=(--defaults "$ex/sdkconfig.defaults")
        elif [ -f "$ex/main/Kconfig.projbuild" ]; then
            while IFS= read -r s; do exkc+=(--set "$s"); done < <(kconfig_sets "$ex/main/Kconfig.projbuild")
        fi
        run "$envs" "$label" "${exkc[@]}" -I "$comp/include" -I "$comp/port/esp_idf/include" "${srcs[@]}"
    done
done
if [ "$fail" = 0 ]; then echo "idf_check_port: all files OK"; else echo "idf_check_port: some files FAILED"; fi
exit $fail
