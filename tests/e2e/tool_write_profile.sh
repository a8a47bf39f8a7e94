#!/usr/bin/env bash
# The whole profile at write and verify time (issue 10 item 3). In the
# `tokenmint csr | openssl ca | tokenmint write` pipeline a stock CA can put
# anything in the certificate; here it adds an email address to the SAN next
# to the hardwareModuleName, which the profile forbids. Then:
#   - `tokenmint write` refuses it, naming the reason, and writes nothing;
#   - the module's write policy refuses it to any PKCS#11 application
#     (pkcs11-tool through the tokenmint module);
#   - written behind the module's back (straight into SoftHSM2),
#     `tokenmint verify` reports it BAD with the reason and exits 1.
# A profile-conforming certificate from the same stock CA still goes through.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
# labels follow TM_SERIALS order (tests/lib/tokens.sh)
label_of() {
    local i
    for i in "${!TM_SERIALS[@]}"; do
        [ "${TM_SERIALS[$i]}" = "$1" ] && { printf 'tm-%04d' $((i + 1)); return; }
    done
    tm_fail "no token with serial $1"
}
certs_on() {
    pkcs11-tool --module "$TM_P11_MODULE" --token-label "$(label_of "$1")" -O 2>/dev/null |
        grep -c 'Certificate Object' || true
}
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]}
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" >req.pem || tm_fail "csr"

# The request's SAN (hardwareModuleName) plus rfc822Name someone@example.com,
# as a DER extension value for openssl ca's extension file.
san=$(openssl asn1parse -in req.pem | grep -A1 "Subject Alternative Name" | tail -1 |
    sed 's/.*\[HEX DUMP\]://')
[ "${san:0:2}" = 30 ] || tm_fail "no SAN in the token's request: $san"
email=someone@example.com
inner="${san:4}$(printf '81%02x' ${#email})$(printf %s "$email" | od -An -tx1 | tr -d ' \n')"
newsan=$(printf '30%02x' $((${#inner} / 2)))$inner
cat >ext.cnf <<EOF
[ with_email ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DER:$newsan
EOF
openssl ca -batch -config "$CA/ca.cnf" -extfile ext.cnf -extensions with_email -in req.pem \
    -out bad.pem -notext 2>ca.err || { cat ca.err; tm_fail "stock openssl ca"; }
openssl x509 -in bad.pem -noout -ext subjectAltName | tm_grepq "email:$email" ||
    tm_fail "the test certificate should carry the email SAN"
openssl x509 -in bad.pem -outform DER -out bad.der

# 1. tokenmint write refuses it and names the reason.
"$T" write --ca "$CA" --pin-source "$PIN" bad.pem >write.out 2>&1 &&
    { cat write.out; tm_fail "write accepted a certificate outside the profile"; }
grep -q "email" write.out || { cat write.out; tm_fail "write should say the email SAN is the reason"; }
[ "$(certs_on "$S0")" -eq 0 ] || tm_fail "nothing may be written"

# 2. The module's policy refuses it to any PKCS#11 application.
pkcs11-tool --module "$TM_MODULE" --token-label "$(label_of "$S0")" --login \
    --pin "$TM_USER_PIN" --write-object bad.der --type cert --label bad >p11.out 2>&1 &&
    { cat p11.out; tm_fail "the module wrote a certificate outside the profile"; }
[ "$(certs_on "$S0")" -eq 0 ] || tm_fail "the module must write nothing"

# 3. Behind the module's back: verify says BAD, with the reason, exit 1.
pkcs11-tool --module "$TM_P11_MODULE" --token-label "$(label_of "$S0")" --login \
    --pin "$TM_USER_PIN" --write-object bad.der --type cert --label bad \
    --id "$(pkcs11-tool --module "$TM_P11_MODULE" --token-label "$(label_of "$S0")" -O \
        --type pubkey 2>/dev/null | awk '/ID:/ {print $2; exit}')" >direct.out 2>&1 ||
    { cat direct.out; tm_fail "cannot store the test certificate straight into SoftHSM2"; }
[ "$(certs_on "$S0")" -eq 1 ] || tm_fail "the direct write should have stored it"
"$T" verify --token "pkcs11:serial=$S0" --ca "$CA" >verify.out 2>&1 &&
    { cat verify.out; tm_fail "verify said OK for a certificate outside the profile"; }
grep -q "^BAD.*email" verify.out || { cat verify.out; tm_fail "verify should report BAD naming the email SAN"; }

# 4. A conforming certificate from the same stock CA is still written and verifies.
"$T" csr --token "pkcs11:serial=$S1" --pin-source "$PIN" |
    openssl ca -batch -config "$CA/ca.cnf" -in /dev/stdin -out /dev/stdout -notext 2>/dev/null |
    "$T" write --ca "$CA" --pin-source "$PIN" - >good.out 2>&1 ||
    { cat good.out; tm_fail "a conforming stock certificate should be written"; }
"$T" verify --token "pkcs11:serial=$S1" --ca "$CA" >verify1.out ||
    { cat verify1.out; tm_fail "the conforming certificate should verify"; }
echo "tool_write_profile: OK"
