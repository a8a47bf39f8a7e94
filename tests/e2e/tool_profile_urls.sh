#!/usr/bin/env bash
# Issue 12: CRL distribution point and OCSP (authorityInfoAccess) URLs are
# profile keys. Set, every certificate the CA issues carries them (as stock
# `openssl x509 -text` shows), and the profile check wants exactly them: a
# profile naming other URLs finds the certificate outside the profile. A
# URL that is not plain http:// is refused when the profile loads (exit 2,
# naming the key), before any token is touched.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
CRL_URL="http://127.0.0.1:8080/crl"
OCSP_URL="http://127.0.0.1:8080/ocsp"
with_urls() { # out crl ocsp
    sed "s|^validity_days = .*|&\ncrl_distribution_point = $2\nocsp_url = $3|" \
        "$TM_SOURCE_DIR/conf/profile.cnf" >"$1"
}
with_urls "$TM_TMP/urls.cnf" "$CRL_URL" "$OCSP_URL"
grep -q "^ocsp_url = $OCSP_URL\$" "$TM_TMP/urls.cnf" || tm_fail "the test profile has no ocsp_url"

S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]}
"$T" issue --token "pkcs11:serial=$S0" --ca "$CA" --profile "$TM_TMP/urls.cnf" --pin-source "$PIN" \
    >"$TM_TMP/issue.out" || { cat "$TM_TMP/issue.out"; tm_fail "issue with the URL profile"; }
"$T" issue --token "pkcs11:serial=$S1" --ca "$CA" --pin-source "$PIN" >/dev/null || tm_fail "issue without URLs"
sn0=$(awk -F'\t' -v s="serialNumber=$S0" 'index($6, s) {print $4}' "$CA/index.txt")
sn1=$(awk -F'\t' -v s="serialNumber=$S1" 'index($6, s) {print $4}' "$CA/index.txt")
openssl x509 -in "$CA/newcerts/$sn0.pem" -noout -text >"$TM_TMP/c0.txt"
grep -A3 "X509v3 CRL Distribution Points" "$TM_TMP/c0.txt" | tm_grepq "URI:$CRL_URL\$" ||
    { cat "$TM_TMP/c0.txt"; tm_fail "no CRL distribution point $CRL_URL in the certificate"; }
grep -A2 "Authority Information Access" "$TM_TMP/c0.txt" | tm_grepq "OCSP - URI:$OCSP_URL\$" ||
    { cat "$TM_TMP/c0.txt"; tm_fail "no OCSP URL $OCSP_URL in the certificate"; }
[ "$(openssl x509 -in "$CA/newcerts/$sn0.pem" -noout -ocsp_uri)" = "$OCSP_URL" ] || tm_fail "openssl x509 -ocsp_uri"
openssl x509 -in "$CA/newcerts/$sn1.pem" -noout -text | tm_grepq -e "CRL Distribution" -e "Authority Information" &&
    tm_fail "a profile without the keys must add neither extension"

# the profile check: the same profile passes it, other URLs do not, and the
# certificate without them fails a profile that wants them
"$T" verify --token "pkcs11:serial=$S0" --ca "$CA" --profile "$TM_TMP/urls.cnf" >"$TM_TMP/v0.out" ||
    { cat "$TM_TMP/v0.out"; tm_fail "the certificate should conform to its own profile"; }
with_urls "$TM_TMP/other.cnf" "http://crl.example/other.crl" "$OCSP_URL"
rc=0; "$T" verify --token "pkcs11:serial=$S0" --ca "$CA" --profile "$TM_TMP/other.cnf" >"$TM_TMP/v1.out" || rc=$?
[ "$rc" -eq 1 ] && grep -q "crl_distribution_point http://crl.example/other.crl" "$TM_TMP/v1.out" ||
    { cat "$TM_TMP/v1.out"; tm_fail "another CRL URL: outside the profile (exit 1, naming it)"; }
rc=0; "$T" verify --token "pkcs11:serial=$S1" --ca "$CA" --profile "$TM_TMP/urls.cnf" >"$TM_TMP/v2.out" || rc=$?
[ "$rc" -eq 1 ] && grep -q "authorityInfoAccess lacks the profile's ocsp_url" "$TM_TMP/v2.out" ||
    { cat "$TM_TMP/v2.out"; tm_fail "a certificate without the URLs: outside a profile that wants them"; }

# fail closed: bad URLs refused when the profile loads, nothing issued
n_before=$(wc -l <"$CA/index.txt")
for bad in "https://127.0.0.1/crl" "ldap://x/y" "http://" "http://has space/crl" "not a url"; do
    with_urls "$TM_TMP/bad.cnf" "$bad" "$OCSP_URL"
    rc=0; "$T" issue --all --ca "$CA" --profile "$TM_TMP/bad.cnf" --pin-source "$PIN" >"$TM_TMP/bad.out" 2>&1 || rc=$?
    [ "$rc" -eq 2 ] && grep -q "crl_distribution_point" "$TM_TMP/bad.out" ||
        { cat "$TM_TMP/bad.out"; tm_fail "crl_distribution_point = $bad: want exit 2 naming the key (got $rc)"; }
    with_urls "$TM_TMP/bad.cnf" "$CRL_URL" "$bad"
    rc=0; "$T" issue --all --ca "$CA" --profile "$TM_TMP/bad.cnf" --pin-source "$PIN" >"$TM_TMP/bad.out" 2>&1 || rc=$?
    [ "$rc" -eq 2 ] && grep -q "ocsp_url" "$TM_TMP/bad.out" ||
        { cat "$TM_TMP/bad.out"; tm_fail "ocsp_url = $bad: want exit 2 naming the key (got $rc)"; }
done
[ "$(wc -l <"$CA/index.txt")" -eq "$n_before" ] || tm_fail "a refused profile issued something"
echo "PASS: CRL DP and OCSP URLs from the profile, checked, bad ones refused"
