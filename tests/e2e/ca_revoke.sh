#!/usr/bin/env bash
# Revocation and CRLs (issue 12), with stock tools on the same CA:
#   - stock `openssl ca -gencrl` works on a fresh `tokenmint ca init` CA;
#   - `tokenmint revoke --serial/--token` revokes a token's certificates,
#     idempotently, and names what it does not know;
#   - `tokenmint ca crl` makes a CRL that `openssl crl -verify` accepts and
#     `openssl verify -crl_check` refuses the revoked certificate with;
#   - stock `openssl ca -revoke` is taken in; CRL numbers run on across both;
#   - `tokenmint verify` reports REVOKED with the reason and date.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]} S2=${TM_SERIALS[2]}
"$T" issue --all --ca "$CA" --pin-source "$PIN" >issue.out || { cat issue.out; tm_fail "issue"; }
# certificate file of a token, from the stock view
cert_of() {
    local sn
    sn=$(awk -F'\t' -v s="serialNumber=$1" 'index($6, s) {print $4}' "$CA/index.txt" | head -1)
    [ -n "$sn" ] || tm_fail "no certificate for $1 in index.txt"
    cp "$CA/newcerts/$sn.pem" "$2"
}
cert_of "$S0" c0.pem
cert_of "$S1" c1.pem
cert_of "$S2" c2.pem
crlnum() { openssl crl -in "$1" -noout -crlnumber | cut -d= -f2; }

# 1. Stock -gencrl on the CA as made.
openssl ca -config "$CA/ca.cnf" -gencrl -out stock0.pem 2>gencrl.err ||
    { cat gencrl.err; tm_fail "stock openssl ca -gencrl"; }
openssl crl -in stock0.pem -CAfile "$CA/ca.pem" -noout 2>&1 | tm_grepq "verify OK" ||
    tm_fail "openssl crl -verify on the stock CRL"

# 2. tokenmint revoke: by token serial, idempotent, unknown names refused.
"$T" revoke --serial "$S0" --ca "$CA" --reason keyCompromise >r1.out ||
    { cat r1.out; tm_fail "revoke --serial"; }
grep -q "^REVOKED  token $S0: 1 certificate revoked" r1.out || { cat r1.out; tm_fail "revoke output"; }
"$T" revoke --serial "$S0" --ca "$CA" --reason keyCompromise >r2.out ||
    { cat r2.out; tm_fail "a second revoke must succeed (idempotent)"; }
grep -q "^ALREADY  token $S0: 0 certificates revoked .* 1 already revoked" r2.out ||
    { cat r2.out; tm_fail "the second revoke should say already revoked"; }
"$T" revoke --serial 00nosuchtoken --ca "$CA" --reason keyCompromise >r3.out &&
    tm_fail "an unknown token must be an error"
grep -q "issued no certificate to token 00nosuchtoken" r3.out || { cat r3.out; tm_fail "unknown token reason"; }
"$T" revoke --serial "$S1" --ca "$CA" --reason nonsense >/dev/null 2>&1 &&
    tm_fail "an unknown reason must be refused"
[ "$(awk -F'\t' '$1 == "R"' "$CA/index.txt" | wc -l)" -eq 1 ] ||
    tm_fail "exactly one certificate is revoked in the stock view"

# 3. tokenmint ca crl: verifies, lists the revoked one, numbered after the stock CRL.
"$T" ca crl "$CA" >crl.out || { cat crl.out; tm_fail "ca crl"; }
openssl crl -in "$CA/crl.pem" -CAfile "$CA/ca.pem" -noout 2>&1 | tm_grepq "verify OK" ||
    tm_fail "openssl crl -verify on tokenmint's CRL"
openssl crl -in "$CA/crl.pem" -noout -text >crl.txt
grep -q "Serial Number: $(openssl x509 -in c0.pem -noout -serial | cut -d= -f2)" crl.txt ||
    { cat crl.txt; tm_fail "the CRL should list the revoked certificate"; }
grep -q "Key Compromise" crl.txt || tm_fail "the CRL should carry the reason"
grep -q "Next Update" crl.txt || tm_fail "the CRL should have a nextUpdate"
[ $((16#$(crlnum "$CA/crl.pem"))) -gt $((16#$(crlnum stock0.pem))) ] ||
    tm_fail "tokenmint's CRL number must follow the stock one"

# 4. openssl verify -crl_check refuses the revoked token certificate, not the others.
openssl verify -crl_check -CAfile "$CA/ca.pem" -CRLfile "$CA/crl.pem" c0.pem >v0.out 2>&1 &&
    { cat v0.out; tm_fail "openssl verify -crl_check accepted a revoked certificate"; }
grep -q "certificate revoked" v0.out || { cat v0.out; tm_fail "the refusal should say revoked"; }
openssl verify -crl_check -CAfile "$CA/ca.pem" -CRLfile "$CA/crl.pem" c1.pem >/dev/null ||
    tm_fail "an unrevoked certificate should pass -crl_check"

# 5. tokenmint verify: REVOKED with reason and date, exit 1.
"$T" verify --all --ca "$CA" >ver.out && { cat ver.out; tm_fail "verify must fail on a revoked certificate"; }
grep -q "^REVOKED $S0 .*revoked on 20[0-9-]*T[0-9:]*Z, reason keyCompromise" ver.out ||
    { cat ver.out; tm_fail "verify should report REVOKED with date and reason"; }
grep -q "^OK *$S1" ver.out || { cat ver.out; tm_fail "the other tokens stay OK"; }

# 6. Stock openssl ca -revoke is taken in; numbers run on; stock -gencrl still works.
openssl ca -config "$CA/ca.cnf" -revoke c1.pem -crl_reason superseded 2>srev.err ||
    { cat srev.err; tm_fail "stock openssl ca -revoke"; }
"$T" ca crl "$CA" >crl2.out || { cat crl2.out; tm_fail "ca crl after stock revoke"; }
openssl crl -in "$CA/crl.pem" -noout -text | grep -c "Serial Number" | tm_grepq -x 2 ||
    tm_fail "the CRL should list both revoked certificates"
"$T" verify --token "pkcs11:serial=$S1" --ca "$CA" >ver1.out &&
    tm_fail "verify must see the stock revocation"
grep -q "^REVOKED .*reason superseded" ver1.out || { cat ver1.out; tm_fail "stock reason"; }
openssl ca -config "$CA/ca.cnf" -gencrl -out stock1.pem 2>gencrl.err ||
    { cat gencrl.err; tm_fail "stock -gencrl after tokenmint"; }
[ $((16#$(crlnum stock1.pem))) -gt $((16#$(crlnum "$CA/crl.pem"))) ] ||
    tm_fail "stock CRL numbers must follow tokenmint's"

# 7. By pkcs11: URI, and by certificate file (already revoked: idempotent).
"$T" revoke --token "pkcs11:serial=$S2" --ca "$CA" --reason cessationOfOperation >r4.out ||
    { cat r4.out; tm_fail "revoke --token URI"; }
grep -q "^REVOKED  token $S2" r4.out || { cat r4.out; tm_fail "revoke --token output"; }
"$T" revoke --ca "$CA" --reason cessationOfOperation c2.pem >r5.out ||
    { cat r5.out; tm_fail "revoke CERT"; }
grep -q "^ALREADY" r5.out || { cat r5.out; tm_fail "revoke CERT of a revoked certificate"; }
echo "ca_revoke: OK"
