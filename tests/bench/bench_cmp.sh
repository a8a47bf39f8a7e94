#!/bin/bash
# Certificates per second for `tokenmint ca serve` (issue 6 benchmark):
# a CA with a P-256 file key and a CA with a P-256 token key (SoftHSM2 through
# the tokenmint provider), 1 and 8 concurrent CMP clients (bench_cmp load:
# p10cr, PBMAC, implicit confirmation). Every certificate is on disk (synced,
# group commit) before its response leaves the server.
#
#   TM_SOURCE_DIR=... TM_BUILD_DIR=... tests/bench/bench_cmp.sh [REQUESTS_PER_CLIENT]
# Not a test: it prints figures and asserts nothing about speed.
set -euo pipefail
: "${TM_SOURCE_DIR:?}" "${TM_BUILD_DIR:?}"
export TM_MODULE=${TM_MODULE:-$TM_BUILD_DIR/pkcs11/tokenmint-pkcs11.so}
export TM_PROVIDER_DIR=${TM_PROVIDER_DIR:-$TM_BUILD_DIR/provider}
export TM_TOOL=${TM_TOOL:-$TM_BUILD_DIR/tool/tokenmint}
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
N=${1:-250}
cd "$TM_TMP"

tm_make_tokens 1 k
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-k0001 --login --pin "$TM_USER_PIN" \
    --keypairgen --key-type EC:prime256v1 --id 01 --label ca >/dev/null 2>&1
"$T" ca init file-ca >/dev/null
"$T" ca init token-ca --key "pkcs11:serial=${TM_SERIALS[0]};id=%01;type=private?pin-source=$PIN" \
    >/dev/null

for ca in file-ca token-ca; do
    cmp_start "$ca" "$T" ca serve "$ca" --secret-source "$SECRET"
    for clients in 1 8; do
        printf '%-9s ' "$ca"
        "$BC" load --url "http://127.0.0.1:$CMP_PORT/" --secret-source "$SECRET" \
            --root "$ca/ca.pem" --clients "$clients" --requests "$N"
    done
    cmp_stop "$CMP_PID"
done
