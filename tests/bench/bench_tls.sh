#!/bin/bash
# TLS handshakes per second (openssl s_time, new sessions) against an
# s_server whose key is on a SoftHSM2 token (through the tokenmint provider)
# and against the same server with a file key, both with tokenmint loaded
# first. Not run by ctest; figures are noisy on a shared machine.
#   TM_SOURCE_DIR=. TM_PROVIDER_DIR=build/provider bash tests/bench/bench_tls.sh [SECONDS]
set -euo pipefail
SECS=${1:-5}
. "$TM_SOURCE_DIR/tests/e2e/provider_lib.sh"
tm_make_tokens 1
tm_keygen 1 EC:prime256v1 01
URI=$(tm_uri "${TM_SERIALS[0]}" 01)
cd "$TM_TMP"
P=(-provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out file.key 2>/dev/null
openssl req -new -x509 -key file.key -subj /CN=localhost -days 2 -out file.pem 2>/dev/null
openssl pkey "${P[@]}" -in "$URI" -pubout -out tok.pub
openssl x509 -new -subj /CN=localhost -force_pubkey tok.pub -key file.key -days 2 -out tok.pem \
    2>/dev/null || openssl x509 -in file.pem -force_pubkey tok.pub -signkey file.key -out tok.pem
run() { # NAME CERT KEY
    local port=$((20000 + RANDOM % 40000))
    openssl s_server "${P[@]}" -accept "127.0.0.1:$port" -www -cert "$2" -key "$3" -tls1_3 \
        </dev/null >srv.log 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do grep -q ACCEPT srv.log && break; sleep 0.1; done
    printf '%s: ' "$1"
    openssl s_time -connect "127.0.0.1:$port" -new -time "$SECS" 2>/dev/null |
        awk '/connections in/ && /real/ {print $1, "handshakes in", $4, "s =", $1 / $4, "/s"}'
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
run "file key " file.pem file.key
run "token key" tok.pem "$URI"
