#!/usr/bin/env bash
# Signed OCSP responses per second from `tokenmint ca serve` (issue 12 goal:
# >= 2,000/s on this 2-core machine). Run by hand from the build directory's
# parent: BUILD=build bash tests/bench/bench_ocsp.sh [CLIENTS] [SECONDS]
# A fresh CA (P-256 key in a file), one certificate issued by stock openssl
# ca and taken in by tokenmint; the server and the clients share the machine.
set -euo pipefail
BUILD=${BUILD:-build}
T="$BUILD/tool/tokenmint"
B="$BUILD/tests/bench_ocsp"
CLIENTS=${1:-8}
SECONDS_=${2:-10}
W=$(mktemp -d)
trap 'kill $SRV 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
"$T" ca init "$W/ca" >/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k.pem" \
    -subj "/serialNumber=00b3nch0" -out "$W/r.pem" 2>/dev/null
openssl ca -batch -config "$W/ca/ca.cnf" -in "$W/r.pem" -out "$W/c.pem" -notext 2>/dev/null
printf 'bench-secret\n' >"$W/secret"
chmod 600 "$W/secret"
"$T" ca serve "$W/ca" --listen 127.0.0.1:0 --port-file "$W/port" --secret-source "$W/secret" \
    >"$W/serve.log" 2>&1 &
SRV=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
[ -s "$W/port" ] || { cat "$W/serve.log"; exit 1; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) on $(nproc) cores"
"$B" --port "$(cat "$W/port")" --issuer "$W/ca/ca.pem" --cert "$W/c.pem" --clients "$CLIENTS" \
    --seconds "$SECONDS_"
