#!/usr/bin/env bash
# The CA's records on PostgreSQL (castore_pg), each operation once, at no
# volume: small enough for every stage, the sanitizer stage included
# (cadb_pg_shared is the volume test). A throw-away cluster (tests/lib/pg.sh).
#   - ca init --db: schema made, no ca.db; a password in the string refused;
#   - local issue over 3 tokens, then a no-op re-run, records in the database;
#   - ca serve over CMP (20 requests), serials unique, views agree;
#   - a certified key sent again with another token serial: refused, logged;
#   - revoke, ca crl, ca show and ca list --status on the same records;
#   - PostgreSQL restarted under an idle server: the next requests are answered.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/pg.sh"
tm_pg_start
tm_make_tokens 3
cd "$TM_TMP"
S0=${TM_SERIALS[0]}

# ca init: a password in the string is refused and not echoed
out=$("$T" ca init pwca --db "$PG_CONNINFO password=hunter2" 2>&1) &&
    tm_fail "a connection string with a password must be refused"
echo "$out" | tm_grepq "pgpass" || tm_fail "the refusal should point to .pgpass: $out"
echo "$out" | tm_grepq "hunter2" && tm_fail "the password must not be echoed"
CA="$TM_TMP/ca"
"$T" ca init "$CA" --db "$PG_CONNINFO" >/dev/null || tm_fail "ca init --db"
[ ! -e "$CA/ca.db" ] || tm_fail "a PostgreSQL CA must not make ca.db"
[ "$(pg_psql "SELECT version FROM tm_schema")" = 1 ] || tm_fail "schema version 1 expected"

# local issue: three records, then a re-run that issues nothing
"$T" issue --all --ca "$CA" --pin-source "$PIN" >issue1.out || { cat issue1.out; tm_fail "issue"; }
[ "$(pg_psql "SELECT count(*) FROM tm_cert WHERE status = 'V'")" = 3 ] ||
    tm_fail "three valid records expected after the local issue"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >issue2.out || { cat issue2.out; tm_fail "re-run"; }
grep -q "already done *3" issue2.out || { cat issue2.out; tm_fail "the re-run should find 3 done"; }
[ "$(pg_psql "SELECT count(*) FROM tm_cert")" = 3 ] || tm_fail "a re-run must add no record"

# ca serve over CMP, a small load
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
"$BC" load --url "http://127.0.0.1:$CMP_PORT/pkix/" --secret-source "$SECRET" \
    --root "$CA/ca.pem" --clients 2 --requests 10 --check >load1.out 2>&1 ||
    { cat load1.out; tm_fail "CMP load on a PostgreSQL CA"; }
grep -q "answered 20 " load1.out || { cat load1.out; tm_fail "20 answers expected"; }
row=$(pg_psql "SELECT count(*), count(DISTINCT serial), count(*) FILTER (WHERE length(der) > 0)
               FROM tm_cert WHERE status = 'V'")
[ "$row" = "$(printf '23\t23\t23')" ] || tm_fail "23 valid records, serials unique, each with DER (got $row)"

# A certified key that comes back with another binding (issue 10 item 2): the
# lookup by key in the database refuses it with the reason, and the server logs it.
HW=2.25.306879213863795936203097792690857128826.1 # the built-in profile's default hwType
ir_for() { # KEY TOKENSERIAL OUT
    printf '[default]\n[exts]\nsubjectAltName = critical, otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwmn
keyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n[hwmn]\nhwType = OID:%s
hwSerialNum = FORMAT:ASCII,OCTETSTRING:%s\n' "$HW" "$2" >"ir-$2.cnf"
    openssl cmp -config "ir-$2.cnf" -cmd ir -newkey "$1" -subject "/serialNumber=$2" -reqexts exts \
        -server "127.0.0.1:$CMP_PORT/pkix/" -secret "file:$SECRET" -ref station -certout "$3" \
        >"$3.log" 2>&1
}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out irk.pem 2>/dev/null
ir_for irk.pem 00c0ffee01 ir1.pem || { cat ir1.pem.log; tm_fail "openssl cmp ir"; }
ir_for irk.pem 00c0ffee02 ir2.pem && tm_fail "a certified key with another token serial must be refused"
[ ! -e ir2.pem ] || tm_fail "no certificate for the refused key"
grep -q "already certified" ir2.pem.log || { cat ir2.pem.log; tm_fail "the refusal should say the key is already certified"; }
grep -q "already certified" "$TM_TMP/serve.log" || { cat "$TM_TMP/serve.log"; tm_fail "the server should log the refusal"; }
[ "$(pg_psql "SELECT count(*) FROM tm_cert WHERE subject LIKE '%00c0ffee02%'")" = 0 ] ||
    tm_fail "no record for the refused binding"

# PostgreSQL restarts while the server is idle: it reconnects for the next requests
tm_pg_ctl restart -m fast || tm_fail "PostgreSQL restart"
"$BC" load --url "http://127.0.0.1:$CMP_PORT/pkix/" --secret-source "$SECRET" \
    --root "$CA/ca.pem" --clients 1 --requests 3 --retry-ms 20000 --check >load2.out 2>&1 ||
    { cat load2.out; tm_fail "requests after the PostgreSQL restart"; }
grep -q "answered 3 " load2.out || { cat load2.out; tm_fail "3 answers expected after the restart"; }
cmp_stop "$CMP_PID"
CMP_PIDS=()

# revoke, CRL, show and list on the same records
"$T" revoke --serial "$S0" --ca "$CA" --reason keyCompromise >rev.out || { cat rev.out; tm_fail "revoke"; }
grep -q "^REVOKED  token $S0: 1 certificate revoked" rev.out || { cat rev.out; tm_fail "revoke output"; }
[ "$(pg_psql "SELECT count(*) FROM tm_cert WHERE status = 'R'")" = 1 ] || tm_fail "one revoked record"
"$T" ca crl "$CA" >crl.out || { cat crl.out; tm_fail "ca crl"; }
openssl crl -in "$CA/crl.pem" -CAfile "$CA/ca.pem" -noout 2>&1 | tm_grepq "verify OK" ||
    tm_fail "openssl crl -verify on the CRL of a PostgreSQL CA"
rs=$(pg_psql "SELECT serial FROM tm_cert WHERE status = 'R'")
openssl crl -in "$CA/crl.pem" -noout -text | tm_grepq "Serial Number: $rs" ||
    tm_fail "the CRL should list the revoked serial $rs"
"$T" ca show "$CA" "$rs" >show.out || { cat show.out; tm_fail "ca show"; }
grep -qi "revoked" show.out || { cat show.out; tm_fail "ca show should say revoked"; }
"$T" ca list "$CA" --status revoked >rlist || tm_fail "ca list --status revoked"
[ "$(wc -l <rlist)" -eq 1 ] || { cat rlist; tm_fail "one revoked record in ca list"; }
"$T" ca list "$CA" >records || tm_fail "ca list"
[ "$(wc -l <records)" -eq 27 ] || tm_fail "ca list should show 27 records"
cut -f1 records | sort >in_db
pg_psql "SELECT serial FROM tm_cert" | sort | cmp -s - in_db || tm_fail "ca list and SQL disagree"
cut -f4 "$CA/index.txt" | sort | cmp -s - in_db || tm_fail "the index.txt view and the database disagree"
echo "PASS: castore_pg: init, issue, re-run, CMP, key reuse refused, restart, revoke, CRL, show, list"
