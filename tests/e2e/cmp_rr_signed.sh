#!/usr/bin/env bash
# Issue 12: CMP rr protected by a signature, not only PBMAC. Stock
# `openssl cmp -cmd rr` signs with a token certificate's own key (on the
# token, through the tokenmint provider) against `ca serve --trusted`:
#   - it revokes that certificate (the CA's records and OCSP say so);
#   - signed by one token's certificate, an rr for another token's
#     certificate is refused (notAuthorized) and nothing is revoked: on the
#     old code any certificate chaining to --trusted could revoke any other;
#   - through `tokenmint relay` (the same checks as for p10cr: the token's
#     own certificate signed it, its serial is in --serial-range), forwarded
#     to the CA under the relay's RA certificate: in range revoked, out of
#     range or for another token's certificate refused.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 4
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]} S2=${TM_SERIALS[2]} S3=${TM_SERIALS[3]}
"$T" issue --all --ca "$CA" --pin-source "$PIN" --json >issue.json || { cat issue.json; tm_fail "issue"; }
paste <("$TJ" get serial <issue.json) <("$TJ" get certificate_serial <issue.json) \
    <("$TJ" get key_id <issue.json) >tok.tsv
cert_sn() { awk -F'\t' -v s="$1" '$1 == s {print $2}' tok.tsv; }
key_uri() { # serial: the token key's pkcs11: URI with the PIN
    local id
    id=$(awk -F'\t' -v s="$1" '$1 == s {print $3}' tok.tsv | sed 's/../%&/g')
    echo "pkcs11:serial=$1;id=$id;type=private;pin-value=$TM_USER_PIN"
}
C0=$(cert_sn "$S0") C1=$(cert_sn "$S1")
[ -n "$C0" ] && [ -n "$C1" ] || { cat tok.tsv; tm_fail "no certificate serials"; }
cp "$CA/newcerts/$C0.pem" c0.pem
cp "$CA/newcerts/$C1.pem" c1.pem
C2=$(cert_sn "$S2") C3=$(cert_sn "$S3")
cp "$CA/newcerts/$C2.pem" c2.pem
cp "$CA/newcerts/$C3.pem" c3.pem

# the CA's CMP signer (responses to signature-protected requests are signed)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
    -subj "/CN=tokenmint CMP" -out srv.csr 2>/dev/null
KEY=$(awk -F' *= *' '/^private_key/ {print $2}' "$CA/ca.cnf")
openssl x509 -req -in srv.csr -CA "$CA/ca.pem" -CAkey "$KEY" -CAcreateserial -days 2 \
    -extfile <(printf 'keyUsage=critical,digitalSignature\n') -out srv.pem 2>/dev/null ||
    tm_fail "cannot make the CMP signer"
# the relay's RA certificate: trusted by the CA, bound to no token
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ra.key \
    -subj "/CN=tokenmint relay" -out ra.csr 2>/dev/null
openssl x509 -req -in ra.csr -CA "$CA/ca.pem" -CAkey "$KEY" -CAcreateserial -days 2 \
    -extfile <(printf 'keyUsage=critical,digitalSignature\n') -out ra.pem 2>/dev/null ||
    tm_fail "cannot make the RA certificate"
cmp_start serve "$T" ca serve "$CA" --trusted "$CA/ca.pem" --srv-cert srv.pem --srv-key srv.key
CAURL="http://127.0.0.1:$CMP_PORT/pkix/"
URL=$CAURL
rr_signed() { # signer-cert signer-token-serial cert-to-revoke log
    openssl cmp -provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default \
        -cmd rr -server "${URL#http://}" -trusted "$CA/ca.pem" \
        -cert "$1" -key "$(key_uri "$2")" -oldcert "$3" -revreason 1 >"$4" 2>&1
}
status_of() { "$T" ca show "$CA" "$1" | awk -F': *' '/^status/ {print $2}'; }
[ "$(status_of "$C1")" = valid ] || { "$T" ca show "$CA" "$C1"; tm_fail "c1 starts valid"; }

# token 0's certificate signs an rr for token 1's: refused, nothing revoked
rr_signed c0.pem "$S0" c1.pem other.log && { cat other.log; tm_fail "an rr for another token's certificate must be refused"; }
grep -q "notAuthorized\|may revoke only that certificate" other.log || { cat other.log; tm_fail "the refusal should say why"; }
[ "$(status_of "$C1")" = valid ] || tm_fail "c1 must stay valid"
grep -q "may revoke only that certificate" serve.log || { cat serve.log; tm_fail "the refusal should be logged"; }

# token 1's certificate revokes itself
rr_signed c1.pem "$S1" c1.pem own.log || { cat own.log; cat serve.log; tm_fail "openssl cmp -cmd rr signed by the certificate itself"; }
[ "$(status_of "$C1")" = revoked ] || { "$T" ca show "$CA" "$C1"; tm_fail "c1 should now be revoked"; }
openssl ocsp -issuer "$CA/ca.pem" -cert c1.pem -url "http://127.0.0.1:$CMP_PORT/ocsp" -CAfile "$CA/ca.pem" \
    >ocsp.out 2>&1 || true
grep -q "^c1.pem: revoked" ocsp.out || { cat ocsp.out; tm_fail "OCSP should say c1 is revoked"; }
[ "$(status_of "$C0")" = valid ] || tm_fail "c0 stays valid"

# through the relay: it checks, then asks the CA under its RA certificate
SERVE_PID=$CMP_PID
cmp_start relay "$T" relay --upstream "$CAURL" --upstream-cert ra.pem --upstream-key ra.key \
    --upstream-srvcert srv.pem --trusted "$CA/ca.pem" --srv-cert srv.pem --srv-key srv.key \
    --serial-range "$S2-$S2"
URL="http://127.0.0.1:$CMP_PORT/pkix/"
rr_signed c3.pem "$S3" c3.pem out.log && { cat out.log; tm_fail "the relay must refuse a token outside its range"; }
grep -q "outside the serial range" relay.log || { cat relay.log; tm_fail "the relay should say the serial is out of range"; }
[ "$(status_of "$C3")" = valid ] || tm_fail "c3 stays valid"
rr_signed c2.pem "$S2" c3.pem other2.log && { cat other2.log; tm_fail "the relay must refuse an rr for another certificate"; }
[ "$(status_of "$C3")" = valid ] || tm_fail "c3 stays valid (rr signed by c2)"
rr_signed c2.pem "$S2" c2.pem relay_rr.log || { cat relay_rr.log relay.log serve.log; tm_fail "rr through the relay"; }
[ "$(status_of "$C2")" = revoked ] || { "$T" ca show "$CA" "$C2"; tm_fail "c2 should be revoked through the relay"; }
cmp_stop "$CMP_PID"
cmp_stop "$SERVE_PID"
echo "PASS: rr signed by the certificate itself revokes it, directly and through the relay; other rrs refused"
