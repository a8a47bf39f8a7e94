#!/usr/bin/env bash
# `openssl req` per token, N tokens in one station, one after another:
# through the tokenmint provider vs through the libp11 engine (the route of
# ../shared/bench/stock_pipeline.sh). Key generation is setup, not timed.
#   bench_provider_req.sh N [KEYTYPE] [ROUTE]   ROUTE: direct (SoftHSM2) | module
# Needs libengine-pkcs11-openssl for the engine figure.
set -euo pipefail
N=${1:-10}
KT=${2:-EC:prime256v1}
ROUTE=${3:-direct}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TM_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/tokens.sh"
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
tm_make_tokens "$N"
for i in $(seq 1 "$N"); do
    pkcs11-tool --module $SOFTHSM --token-label "$(printf 'tm-%04d' "$i")" --login --pin 1234 \
        --keypairgen --key-type "$KT" --id 01 --label dev >/dev/null 2>&1
done
cd "$TM_TMP"
if [ "$ROUTE" = module ]; then
    export TOKENMINT_MODULE=$BUILD/pkcs11/tokenmint-pkcs11.so TOKENMINT_BACKEND=$SOFTHSM
else
    export TOKENMINT_MODULE=$SOFTHSM
fi
ms_per_token() { echo "scale=1; ($2 - $1) * 1000 / $N" | bc; }

t0=$(date +%s.%N)
for s in "${TM_SERIALS[@]}"; do
    openssl req -new -provider-path "$BUILD/provider" -provider tokenmint -provider default \
        -key "pkcs11:serial=$s;id=%01;type=private;pin-value=1234" -subj "/serialNumber=$s" \
        -out "p-$s.csr"
done
t1=$(date +%s.%N)
echo "provider ($ROUTE): N=$N $KT $(ms_per_token "$t0" "$t1") ms/token"

if [ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ]; then
    cat >engine.cnf <<CNF
openssl_conf = init
[init]
engines = eng
[eng]
pkcs11 = p11
[p11]
engine_id = pkcs11
MODULE_PATH = $SOFTHSM
PIN = 1234
init = 0
CNF
    t0=$(date +%s.%N)
    for s in "${TM_SERIALS[@]}"; do
        OPENSSL_CONF=engine.cnf openssl req -new -engine pkcs11 -keyform engine \
            -key "pkcs11:serial=$s;id=%01;type=private;pin-value=1234" -subj "/serialNumber=$s" \
            -out "e-$s.csr" 2>/dev/null
    done
    t1=$(date +%s.%N)
    echo "libp11 engine: N=$N $KT $(ms_per_token "$t0" "$t1") ms/token"
fi
