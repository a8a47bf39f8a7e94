#!/bin/bash
# Certificates per second for `tokenmint ca serve` (issue 6 benchmark):
# a CA with a P-256 file key and a CA with a P-256 token key (SoftHSM2 through
# the tokenmint provider), 1 and 8 concurrent CMP clients (bench_cmp load:
# p10cr, PBMAC, implicit confirmation). Every certificate is on disk (synced,
# group commit) before its response leaves the server.
# Then the CA's records on PostgreSQL (issue 11; a throw-away cluster, Unix
# socket): one server with 8 clients, and two servers on one database with 4
# clients each (the figure is all certificates over the longer run). The
# file CA above keeps its records in SQLite (DIR/ca.db, WAL, synchronous=FULL).
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
# The figures depend on what else runs: say so with them.
echo "before: $(uptime)"

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

# PostgreSQL: the same file key, records in the database
. "$TM_SOURCE_DIR/tests/lib/pg.sh"
tm_pg_start
"$T" ca init pg-ca --db "$PG_CONNINFO" >/dev/null
cmp_start pg1 "$T" ca serve pg-ca --secret-source "$SECRET"
printf '%-9s ' "pg-1srv"
"$BC" load --url "http://127.0.0.1:$CMP_PORT/" --secret-source "$SECRET" \
    --root pg-ca/ca.pem --clients 8 --requests "$N"
P1=$CMP_PORT
cmp_start pg2 "$T" ca serve pg-ca --secret-source "$SECRET"
P2=$CMP_PORT
"$BC" load --url "http://127.0.0.1:$P1/" --secret-source "$SECRET" --root pg-ca/ca.pem \
    --clients 4 --requests "$N" >pg2a.out &
a=$!
"$BC" load --url "http://127.0.0.1:$P2/" --secret-source "$SECRET" --root pg-ca/ca.pem \
    --clients 4 --requests "$N" >pg2b.out &
b=$!
wait "$a" "$b"
cat pg2a.out pg2b.out | awk '{ n += $6; if ($8 > t) t = $8 }
    END { printf "pg-2srv   clients 8 requests %d answered %d in %.3f s: %.1f certificates/s\n", n, n, t, n / t }'
echo "after:  $(uptime)"
