# Issue 11: stock `openssl ca` and tokenmint on one directory. Between two
# tokenmint runs stock openssl ca issues one certificate (with a subject that
# makes a 4 KB+ index.txt line) and revokes another; the next tokenmint run
# takes both into the database (ca list, ca show), never twice, reports a
# torn last line, and stock -gencrl / -updatedb accept the directory after.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >/dev/null || tm_fail "first tokenmint run"
[ "$("$T" ca list "$CA" | wc -l)" -eq 3 ] || tm_fail "three records after the first run"

# stock openssl ca: issue one (100 OUs: a 5 KB line) and revoke one of ours
subj="/serialNumber=0000feed"
for i in $(seq 100); do subj="$subj/OU=organisational unit number $i of a long chart"; done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TM_TMP/k.pem" \
    -subj "$subj" -out "$TM_TMP/r.pem" 2>/dev/null || tm_fail "openssl req"
openssl ca -batch -config "$CA/ca.cnf" -preserveDN -in "$TM_TMP/r.pem" -out "$TM_TMP/stock.pem" \
    2>"$TM_TMP/ca.err" || { cat "$TM_TMP/ca.err"; tm_fail "stock openssl ca issue"; }
STOCK=$(openssl x509 -in "$TM_TMP/stock.pem" -noout -serial | cut -d= -f2)
[ "$(grep "$STOCK" "$CA/index.txt" | wc -c)" -gt 4096 ] || tm_fail "the stock line should be over 4 KB"
VICTIM=$(head -1 "$CA/index.txt" | cut -f4)
openssl ca -config "$CA/ca.cnf" -revoke "$CA/newcerts/$VICTIM.pem" -crl_reason keyCompromise \
    2>"$TM_TMP/rev.err" || { cat "$TM_TMP/rev.err"; tm_fail "stock openssl ca -revoke"; }
# and a torn last line, as a crash in the middle of an append would leave
printf 'V\t300101000000Z\t\tDEAD' >>"$CA/index.txt"

# the next tokenmint run takes it all in
"$T" ca list "$CA" >"$TM_TMP/list" 2>"$TM_TMP/list.err" || { cat "$TM_TMP/list.err"; tm_fail "ca list"; }
cat "$TM_TMP/list.err"
grep -q "torn" "$TM_TMP/list.err" || tm_fail "the torn last line must be reported"
grep -q "took in certificate $STOCK issued by openssl ca" "$TM_TMP/list.err" ||
    tm_fail "the stock certificate must be reported as taken in"
grep -q "$VICTIM was revoked by openssl ca" "$TM_TMP/list.err" || tm_fail "the revocation must be reported"
[ "$(wc -l <"$TM_TMP/list")" -eq 4 ] || tm_fail "four records: three of ours and the stock one"
grep -q "^$STOCK	valid	0000feed	" "$TM_TMP/list" || tm_fail "the stock certificate in ca list"
grep "^$STOCK	" "$TM_TMP/list" | tm_grepq "	openssl	" || tm_fail "its origin is openssl"
[ "$("$T" ca list "$CA" --status revoked | cut -f1)" = "$VICTIM" ] || tm_fail "ca list --status revoked"
"$T" ca show "$CA" "$VICTIM" >"$TM_TMP/show" || tm_fail "ca show"
grep -q "^status: *revoked" "$TM_TMP/show" && grep -q "keyCompromise" "$TM_TMP/show" ||
    tm_fail "ca show should give the revocation and its reason"
grep -q "BEGIN CERTIFICATE" "$TM_TMP/show" || tm_fail "ca show should give the certificate"
"$T" ca show "$CA" "$VICTIM" --json | tm_grepq "\"status\": *\"revoked\"" || tm_fail "ca show --json"
S1=${TM_SERIALS[1]}
[ "$("$T" ca list "$CA" --token "pkcs11:serial=$S1" | wc -l)" -eq 1 ] || tm_fail "ca list --token"
grep -q "DEAD" "$CA/index.txt" && tm_fail "the view must be rewritten without the torn line"

# taken in once: a second run finds nothing new and changes nothing
"$T" ca list "$CA" >"$TM_TMP/list2" 2>"$TM_TMP/list2.err" || tm_fail "second ca list"
[ ! -s "$TM_TMP/list2.err" ] || { cat "$TM_TMP/list2.err"; tm_fail "nothing new to report the second time"; }
cmp -s "$TM_TMP/list" "$TM_TMP/list2" || tm_fail "the second run must not change the records"
# the token whose certificate stock openssl ca revoked needs renewal (issue
# 12): issue says so (exit 1) and issues nothing; the others are done
rc=0
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue2.out" || rc=$?
[ "$rc" -eq 1 ] || { cat "$TM_TMP/issue2.out"; tm_fail "second tokenmint issue: exit $rc, want 1 (one needs renewal)"; }
grep -q "^RENEW .*certificate $VICTIM was revoked" "$TM_TMP/issue2.out" &&
    grep -q "already done *2" "$TM_TMP/issue2.out" ||
    { cat "$TM_TMP/issue2.out"; tm_fail "second tokenmint issue: the revoked one needs renewal, two done"; }
[ "$("$T" ca list "$CA" | wc -l)" -eq 4 ] || tm_fail "still four records"
[ "$(cut -f4 "$CA/index.txt" | sort | uniq -d | wc -l)" -eq 0 ] || tm_fail "a serial twice in index.txt"

# stock openssl ca accepts what tokenmint wrote
openssl ca -config "$CA/ca.cnf" -gencrl -crldays 30 -out "$TM_TMP/crl.pem" 2>/dev/null || tm_fail "openssl ca -gencrl"
openssl crl -in "$TM_TMP/crl.pem" -noout -text | tm_grepq -i "Serial Number: *$VICTIM" ||
    tm_fail "the CRL must list the revoked certificate"
openssl ca -config "$CA/ca.cnf" -updatedb >/dev/null 2>&1 || tm_fail "openssl ca -updatedb"
echo "PASS: stock openssl ca issue + revoke taken in once, torn line reported, CRL from the view"
