# Issue 11: four `ca serve` processes on one PostgreSQL database (a
# throw-away cluster), 8 clients x 200 requests. Every request answered,
# serials unique, one valid certificate per key and purpose, and the
# database, `ca list` and the index.txt view agree.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/pg.sh"
tm_pg_start
# a password in the connection string is refused (ca.cnf and argv are readable)
out=$("$T" ca init "$TM_TMP/pwca" --db "$PG_CONNINFO password=hunter2" 2>&1) &&
    tm_fail "a connection string with a password must be refused"
echo "$out" | tm_grepq "pgpass" || tm_fail "the refusal should point to .pgpass: $out"
echo "$out" | tm_grepq "hunter2" && tm_fail "the password must not be echoed"
[ ! -e "$TM_TMP/pwca/ca.cnf" ] || tm_fail "no CA directory after the refusal"
CA="$TM_TMP/ca"
"$T" ca init "$CA" --db "$PG_CONNINFO" >/dev/null || tm_fail "ca init --db"
grep -q "^database = $PG_CONNINFO" "$CA/ca.cnf" || tm_fail "ca.cnf should name the database"
[ ! -e "$CA/ca.db" ] || tm_fail "a PostgreSQL CA must not make ca.db"
[ "$(pg_psql "SELECT version FROM tm_schema")" = 1 ] || tm_fail "schema version 1 expected"
out=$("$T" ca init "$TM_TMP/other" --db "$PG_CONNINFO" 2>&1) &&
    tm_fail "a second CA on the same database must be refused"
echo "$out" | tm_grepq "records of another CA" || tm_fail "the refusal should say why: $out"
cd "$TM_TMP"
ports=()
for s in 1 2 3 4; do
    cmp_start "serve$s" "$T" ca serve "$CA" --secret-source "$SECRET"
    ports+=("$CMP_PORT")
done
lp=()
for s in 0 1 2 3; do
    "$BC" load --url "http://127.0.0.1:${ports[$s]}/pkix/" --secret-source "$SECRET" \
        --root "$CA/ca.pem" --clients 2 --requests 200 --check >"load$s.out" 2>&1 &
    lp+=($!)
done
for s in 0 1 2 3; do
    wait "${lp[$s]}" || { cat "load$s.out"; tm_fail "clients of server $((s + 1)) failed"; }
    grep -q "answered 400 " "load$s.out" || { cat "load$s.out"; tm_fail "400 answers expected"; }
done
for p in "${CMP_PIDS[@]}"; do cmp_stop "$p"; done
CMP_PIDS=()
row=$(pg_psql "SELECT count(*), count(DISTINCT serial), count(DISTINCT spki_sha256 || purpose),
                      count(*) FILTER (WHERE length(der) > 0) FROM tm_cert WHERE status = 'V'")
[ "$row" = "$(printf '1600\t1600\t1600\t1600')" ] ||
    tm_fail "database: 1600 valid records, serials unique, one per key, each with DER (got $row)"
"$T" ca list "$CA" >records || tm_fail "ca list"
[ "$(wc -l <records)" -eq 1600 ] || tm_fail "ca list should show 1600 records"
cut -f1 records | sort >in_db
cut -f4 "$CA/index.txt" | sort >in_index
cmp -s in_db in_index || tm_fail "the index.txt view and the database disagree"
pg_psql "SELECT serial FROM tm_cert" | sort | cmp -s - in_db || tm_fail "ca list and SQL disagree"
openssl ca -config "$CA/ca.cnf" -updatedb >/dev/null 2>&1 || tm_fail "openssl ca -updatedb"

# PostgreSQL restarts in the middle of the load: the servers answer
# systemUnavail while it is away (the clients send again), reconnect, and
# every certificate acknowledged before or after is in the database.
ports=()
for s in 1 2; do
    cmp_start "again$s" "$T" ca serve "$CA" --secret-source "$SECRET"
    ports+=("$CMP_PORT")
done
lp=()
for s in 0 1; do
    "$BC" load --url "http://127.0.0.1:${ports[$s]}/pkix/" --secret-source "$SECRET" \
        --root "$CA/ca.pem" --clients 4 --requests 50 --retry-ms 30000 --acked "acked$s" \
        >"again$s.out" 2>&1 &
    lp+=($!)
done
for _ in $(seq 300); do grep -q "^sending" again1.out && break; sleep 0.05; done
sleep 0.2
tm_pg_ctl restart -m fast || tm_fail "PostgreSQL restart"
for s in 0 1; do
    wait "${lp[$s]}" || { cat "again$s.out"; tm_fail "clients of server $((s + 1)) failed"; }
    grep -q "answered 200 " "again$s.out" || { cat "again$s.out"; tm_fail "every request answered after the restart"; }
done
cat again0.out again1.out
cat "$TM_TMP/again1.log" "$TM_TMP/again2.log" | tm_grepq "unavailable, try again" ||
    tm_fail "the servers should have told clients to retry (systemUnavail) while PostgreSQL was away"
cat acked0 acked1 | cut -f1 | sort >acked
[ "$(wc -l <acked)" -eq 400 ] || tm_fail "400 acknowledged certificates expected"
pg_psql "SELECT serial FROM tm_cert WHERE status = 'V'" | sort >in_db
[ -z "$(comm -23 acked in_db)" ] || tm_fail "an acknowledged certificate is not in the database"
[ "$(pg_psql "SELECT count(*) - count(DISTINCT spki_sha256 || purpose) FROM tm_cert WHERE status = 'V'")" = 0 ] ||
    tm_fail "a key and purpose certified twice"
for p in "${CMP_PIDS[@]}"; do cmp_stop "$p"; done
CMP_PIDS=()
echo "PASS: 4 servers on one PostgreSQL database, 1600 requests, serials unique, views agree; restart survived"
