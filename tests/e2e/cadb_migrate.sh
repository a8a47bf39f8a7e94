# Issue 11: an old-format CA directory (index.txt + issued.txt, no database)
# is migrated on first open: every record taken in once with its operator
# and token, a duplicated issued.txt line dropped, a torn last line reported,
# issued.txt kept as issued.txt.migrated; re-running issue certifies nothing
# twice.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >/dev/null || tm_fail "issue"
"$T" ca list "$CA" >"$TM_TMP/before" || tm_fail "ca list"

# Make it what the previous version left: no database, an issued.txt with a
# record per certificate (the last one appended twice, as a re-open used to
# do), and a torn line at the end.
rm -f "$CA"/ca.db "$CA"/ca.db-wal "$CA"/ca.db-shm
: >"$CA/issued.txt"
while IFS="$(printf '\t')" read -r serial status token purpose op origin na subject; do
    spki=$(openssl x509 -in "$CA/newcerts/$serial.pem" -noout -pubkey |
        openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
    printf '%s\t%s\t%s\t%s\told-operator\t2026-01-02T03:04:05Z\n' \
        "$serial" "$spki" "$token" "$purpose" >>"$CA/issued.txt"
done <"$TM_TMP/before"
tail -1 "$CA/issued.txt" >>"$CA/issued.txt"
printf '0ABCDEF\t0123' >>"$CA/issued.txt"

"$T" ca list "$CA" >"$TM_TMP/after" 2>"$TM_TMP/after.err" || { cat "$TM_TMP/after.err"; tm_fail "ca list after"; }
cat "$TM_TMP/after.err"
grep -q "migrated the old-format directory: 3 records from issued.txt" "$TM_TMP/after.err" ||
    tm_fail "the migration must be reported with its count"
grep -q "1 duplicate lines dropped" "$TM_TMP/after.err" || tm_fail "the duplicate line must be counted"
grep -q "issued.txt line 5: torn" "$TM_TMP/after.err" || tm_fail "the torn line must be reported"
[ -e "$CA/issued.txt.migrated" ] && [ ! -e "$CA/issued.txt" ] || tm_fail "issued.txt kept as issued.txt.migrated"
[ "$(wc -l <"$TM_TMP/after")" -eq 3 ] || tm_fail "three records after the migration"
[ "$(grep -c "	valid	.*	auth	old-operator	migrated	" "$TM_TMP/after")" -eq 3 ] ||
    tm_fail "every record keeps its token, purpose and operator, origin migrated"
cut -f1,3 "$TM_TMP/before" | sort >"$TM_TMP/b"
cut -f1,3 "$TM_TMP/after" | sort >"$TM_TMP/a"
cmp -s "$TM_TMP/a" "$TM_TMP/b" || tm_fail "the same serials and tokens before and after"

# once: nothing to report the next time, and nothing issued twice
"$T" ca list "$CA" >/dev/null 2>"$TM_TMP/again.err" || tm_fail "ca list again"
[ ! -s "$TM_TMP/again.err" ] || { cat "$TM_TMP/again.err"; tm_fail "migrated twice"; }
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue2.out" || tm_fail "issue after migration"
grep -q "already done *3" "$TM_TMP/issue2.out" || { cat "$TM_TMP/issue2.out"; tm_fail "every token is already done"; }
[ "$("$T" ca list "$CA" | wc -l)" -eq 3 ] || tm_fail "still three records"
openssl ca -config "$CA/ca.cnf" -updatedb >/dev/null 2>&1 || tm_fail "openssl ca -updatedb"
echo "PASS: old-format directory migrated once, duplicate dropped, torn line reported"
