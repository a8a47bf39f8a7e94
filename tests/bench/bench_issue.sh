#!/usr/bin/env bash
# Benchmark (not a test): tokens per second of `tokenmint issue` over N
# SoftHSM2 tokens (default 64), P-256 and RSA-2048, --jobs 1 / 2 / default,
# beside the stock pipeline (../shared/bench/stock_pipeline.sh) and the floor
# (../shared/bench/floor.c) at the same N, in the same run; then a slow token
# (the shim adds 300 ms to every key generation): 16 tokens against one.
#
#   tests/bench/bench_issue.sh [N] [BUILD_DIR]
# REPS=3 (default): floor and tool figures are the best of REPS runs, which
# filters out other load on a shared machine; the stock pipeline runs once.
# Goals (issue 5): P-256 per token <= 1.3x the floor with one worker; default
# workers >= 5x faster than the stock pipeline; 2 workers >= 1.7x one worker;
# 16 slow tokens <= 2x the time of one.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-64}
BUILD=${2:-$SRC/build}
SHARED=${TM_SHARED_BENCH:-$SRC/../shared/bench}
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
T="$BUILD/tool/tokenmint"
W=$(mktemp -d /tmp/tokenmint-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export TOKENMINT_MODULE="$BUILD/pkcs11/tokenmint-pkcs11.so"
export TOKENMINT_PROVIDER_DIR="$BUILD/provider"
unset TOKENMINT_CONF TOKENMINT_TOOL_CONF
echo 1234 >"$W/pin"
chmod 600 "$W/pin"

REPS=${REPS:-3}
now() { date +%s.%N; }
# best FUNCTION ARGS...: the smallest of REPS results
best() {
    local i v b=
    for i in $(seq 1 "$REPS"); do
        v=$("$@")
        if [ -z "$b" ] || [ "$(echo "$v < $b" | bc -l)" -eq 1 ]; then b=$v; fi
    done
    echo "$b"
}
ms_since() { echo "($(now) - $1) * 1000" | bc -l; }

# pristine N-token store in $W/pristine-N, copied for every run
make_store() {
    local n=$1 d="$W/pristine-$1" i
    [ -d "$d" ] && return
    mkdir -p "$d/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$d" >"$d/softhsm2.conf"
    for i in $(seq 1 "$n"); do
        SOFTHSM2_CONF="$d/softhsm2.conf" softhsm2-util --init-token --free \
            --label "$(printf 'b-%04d' "$i")" --so-pin 12345678 --pin 1234 >/dev/null
    done
}

# fresh_store N: $W/run is a copy of the pristine store; exports SOFTHSM2_CONF
fresh_store() {
    make_store "$1"
    rm -rf "$W/run"
    cp -a "$W/pristine-$1" "$W/run"
    sed -i "s|$W/pristine-$1|$W/run|" "$W/run/softhsm2.conf"
    export SOFTHSM2_CONF="$W/run/softhsm2.conf"
}

# tool_ms N KEYTYPE JOBS: wall time of one `tokenmint issue --all` (whole process)
tool_ms() {
    local n=$1 kt=$2 jobs=$3 t0 ms
    fresh_store "$n"
    rm -rf "$W/ca"
    TOKENMINT_BACKEND=${BACKEND:-$SOFTHSM} "$T" ca init "$W/ca" >/dev/null
    t0=$(now)
    # shellcheck disable=SC2086
    TOKENMINT_BACKEND=${BACKEND:-$SOFTHSM} "$T" issue --all --ca "$W/ca" --pin-source "$W/pin" \
        --key-type "$kt" $jobs >"$W/out" || { cat "$W/out"; echo "tool run failed" >&2; exit 1; }
    ms=$(ms_since "$t0")
    [ "$(wc -l <"$W/ca/index.txt")" -eq "$n" ] || { echo "not all $n issued" >&2; exit 1; }
    echo "$ms"
}

floor_ms() {
    local kt=$1 out
    fresh_store "$N"
    out=$("$W/floor" $kt)
    echo "$out" | sed -n 's/.*ms_per_token=\([0-9.]*\).*/\1/p'
}

stock_ms() {
    local kt=$1 out
    out=$(bash "$SHARED/stock_pipeline.sh" "$N" "$kt" "$W/stock")
    echo "$out" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' | awk -v n="$N" '{printf "%.2f", $1 * 1000 / n}'
}

gcc -O2 -I/usr/include/p11-kit-1 -o "$W/floor" "$SHARED/floor.c" -lcrypto -ldl
printf 'tokenmint issue benchmark: N=%s, %s cores, best of %s, load %s, %s\n' "$N" "$(nproc)" \
    "$REPS" "$(cut -d' ' -f1 /proc/loadavg)" "$(date -u +%FT%TZ)"
printf '%-9s %-22s %10s %10s\n' key route ms/token tokens/s
for kt in p256 rsa2048; do
    case $kt in
    p256) tkt=ec:P-256 skt=EC:prime256v1 fkt= ;;
    rsa2048) tkt=rsa:2048 skt=rsa:2048 fkt=rsa ;;
    esac
    f=$(best floor_ms "$fkt")
    s=$(stock_ms "$skt")
    j1=$(best tool_ms "$N" "$tkt" "--jobs 1")
    j2=$(best tool_ms "$N" "$tkt" "--jobs 2")
    jd=$(best tool_ms "$N" "$tkt" "")
    for row in "floor:$f" "stock pipeline:$s"; do
        printf '%-9s %-22s %10.2f %10.1f\n' "$kt" "${row%%:*}" "${row#*:}" "$(echo "1000 / ${row#*:}" | bc -l)"
    done
    for row in "tokenmint --jobs 1:$j1" "tokenmint --jobs 2:$j2" "tokenmint default jobs:$jd"; do
        per=$(echo "${row#*:} / $N" | bc -l)
        printf '%-9s %-22s %10.2f %10.1f\n' "$kt" "${row%%:*}" "$per" "$(echo "1000 / $per" | bc -l)"
    done
    printf '%-9s   jobs1/floor = %.2f (goal <= 1.3 for p256)   stock/default = %.1fx (goal >= 5)   jobs1/jobs2 = %.2fx (goal >= 1.7)\n' \
        "$kt" "$(echo "$j1 / $N / $f" | bc -l)" "$(echo "$s * $N / $jd" | bc -l)" "$(echo "$j1 / $j2" | bc -l)"
done

# A slow token: +300 ms on every C_GenerateKeyPair (the shim), 1 vs 16 tokens.
SHIM=${TM_SHIM:-$BUILD/tests/shim/tokenmint-shim.so}
if [ -f "$SHIM" ]; then
    mkdir -p "$W/shim/ctl"
    cp "$SHIM" "$W/shim/tokenmint-shim.so"
    printf 'module = %s\ncontrol = %s/shim/ctl\n' "$SOFTHSM" "$W" >"$W/shim/tokenmint-shim.so.conf"
    echo "C_GenerateKeyPair 300" >"$W/shim/ctl/latency"
    BACKEND="$W/shim/tokenmint-shim.so"
    one=$(best tool_ms 1 ec:P-256 "")
    sixteen=$(best tool_ms 16 ec:P-256 "")
    unset BACKEND
    printf 'slow token (+300 ms keygen): 1 token %.0f ms, 16 tokens %.0f ms, ratio %.2f (goal <= 2)\n' \
        "$one" "$sixteen" "$(echo "$sixteen / $one" | bc -l)"
fi
