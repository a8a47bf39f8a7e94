#!/usr/bin/env bash
# The CA directory of `tokenmint ca init` is also a stock `openssl ca`
# directory, and the tool's first and last steps chain around stock openssl:
#   tokenmint csr | openssl ca | tokenmint write
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 4
CA="$TM_TMP/ca"
"$T" ca init "$CA" --subject "Test Station CA" >/dev/null
openssl x509 -in "$CA/ca.pem" -noout -subject | tm_grepq "Test Station CA" || tm_fail "root subject"
tm_expect_fail "ca init refuses an existing CA directory" "$T" ca init "$CA"

# 1. The pipe: the token signs its request, stock openssl ca issues, the tool writes.
S0=${TM_SERIALS[0]}
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" >"$TM_TMP/req.pem" || tm_fail "csr"
openssl req -in "$TM_TMP/req.pem" -verify -noout 2>&1 | tm_grepq "verify OK" ||
    tm_fail "the token-signed request does not verify"
openssl req -in "$TM_TMP/req.pem" -noout -subject | tm_grepq "serialNumber *= *$S0" ||
    tm_fail "the request does not name the token serial"
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" |
    openssl ca -batch -config "$CA/ca.cnf" -in /dev/stdin -out /dev/stdout -notext 2>/dev/null |
    "$T" write --ca "$CA" --pin-source "$PIN" - >"$TM_TMP/write.out" ||
    { cat "$TM_TMP/write.out"; tm_fail "csr | openssl ca | write"; }
grep -q "^OK *$S0" "$TM_TMP/write.out" || tm_fail "write should report the token"
[ "$(wc -l <"$CA/index.txt")" -eq 1 ] || tm_fail "stock openssl ca should have recorded one certificate"
"$T" show "pkcs11:serial=$S0" | tm_grepq "token serial *$S0" ||
    tm_fail "show should decode the stock-issued certificate's hardwareModuleName"

# 2. Writing a certificate twice, or onto the wrong token, is refused.
openssl x509 -in "$(ls "$CA"/newcerts/*.pem)" -out "$TM_TMP/stock.pem"
tm_expect_fail "a second write of the same certificate" \
    "$T" write --pin-source "$PIN" "$TM_TMP/stock.pem"
echo "not a certificate" >"$TM_TMP/junk.pem"
out=$("$T" write --pin-source "$PIN" "$TM_TMP/junk.pem" 2>&1) && tm_fail "junk accepted"
echo "$out" | tm_grepq "no certificate" || tm_fail "junk should be named: $out"

# 3. The tool issues the rest from the same directory; both kinds verify.
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue.out" || tm_fail "issue"
grep -q "already done *1" "$TM_TMP/issue.out" || tm_fail "the stock-issued token counts as done"
[ "$(wc -l <"$CA/index.txt")" -eq 4 ] || tm_fail "index should hold 4 certificates"
[ "$(cut -f4 "$CA/index.txt" | sort -u | wc -l)" -eq 4 ] || tm_fail "serials must be unique"
for f in "$CA"/newcerts/*.pem; do
    openssl verify -CAfile "$CA/ca.pem" "$f" >/dev/null || tm_fail "openssl verify $f"
done
"$T" verify --all --ca "$CA" >/dev/null || tm_fail "verify --all"

# 4. And stock openssl ca keeps working after the tool wrote to the database.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TM_TMP/k.pem" \
    -subj "/serialNumber=0000feed" -out "$TM_TMP/r2.pem" 2>/dev/null
openssl ca -batch -config "$CA/ca.cnf" -in "$TM_TMP/r2.pem" -out "$TM_TMP/c2.pem" 2>/dev/null ||
    tm_fail "stock openssl ca after the tool"
[ "$(wc -l <"$CA/index.txt")" -eq 5 ] || tm_fail "index should hold 5 certificates"

# 5. A CA whose key is on a token, through the provider (pkcs11: URI in ca.cnf).
tm_make_tokens 2 k
pkcs11-tool --module "$TM_P11_MODULE" --token-label tm-k0001 --login --pin "$TM_USER_PIN" \
    --keypairgen --key-type EC:prime256v1 --id 01 --label ca >/dev/null 2>&1
KURI="pkcs11:serial=${TM_SERIALS[0]};id=%01;type=private?pin-source=$PIN"
"$T" ca init "$TM_TMP/tokca" --key "$KURI" >/dev/null || tm_fail "ca init --key pkcs11:"
grep -q "^private_key = pkcs11:" "$TM_TMP/tokca/ca.cnf" || tm_fail "ca.cnf should name the token key"
[ ! -e "$TM_TMP/tokca/private/ca.key" ] || tm_fail "no key file for a token CA key"
"$T" issue --token "pkcs11:serial=${TM_SERIALS[1]}" --ca "$TM_TMP/tokca" --pin-source "$PIN" \
    >/dev/null || tm_fail "issue with the CA key on a token"
openssl verify -CAfile "$TM_TMP/tokca/ca.pem" "$TM_TMP"/tokca/newcerts/*.pem >/dev/null ||
    tm_fail "certificate from the token CA key"
# 6. A CA with an existing key file.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$TM_TMP/p384.key" 2>/dev/null
"$T" ca init "$TM_TMP/fileca" --key-file "$TM_TMP/p384.key" >/dev/null || tm_fail "ca init --key-file"
grep -q "^private_key = $TM_TMP/p384.key" "$TM_TMP/fileca/ca.cnf" || tm_fail "ca.cnf names the key file"
"$T" issue --token "pkcs11:serial=${TM_SERIALS[1]}" --ca "$TM_TMP/fileca" --purpose sign \
    --pin-source "$PIN" >/dev/null || tm_fail "issue from a --key-file CA (second purpose)"
openssl verify -CAfile "$TM_TMP/fileca/ca.pem" "$TM_TMP"/fileca/newcerts/*.pem >/dev/null ||
    tm_fail "certificate from the --key-file CA"
echo "garbage" >"$TM_TMP/garbage.key"
out=$("$T" ca init "$TM_TMP/badca" --key-file "$TM_TMP/garbage.key" 2>&1) && tm_fail "garbage key"
grep -q "not a readable unencrypted PEM private key" <<<"$out" || tm_fail "garbage key message: $out"
echo "PASS: stock openssl ca and the tool share the CA directory"
