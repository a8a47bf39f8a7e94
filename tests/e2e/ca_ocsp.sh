#!/usr/bin/env bash
# `ca serve` as an OCSP responder and CRL server (issue 12), checked with
# stock `openssl ocsp` on loopback: a token certificate is good, then
# revoked (with the reason) after `tokenmint revoke`, without restarting the
# server; the nonce comes back; GET requests (RFC 6960 A.1) work; a
# certificate of another CA is unknown; a delegated OCSP signer signs when
# given, and one without OCSPSigning is refused at start; GET /crl serves
# the CRL `tokenmint ca crl` made; stock `openssl cmp -cmd rr` revokes.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]}
"$T" issue --all --ca "$CA" --pin-source "$PIN" >issue.out || { cat issue.out; tm_fail "issue"; }
cert_of() {
    local sn
    sn=$(awk -F'\t' -v s="serialNumber=$1" 'index($6, s) {print $4}' "$CA/index.txt" | head -1)
    [ -n "$sn" ] || tm_fail "no certificate for $1 in index.txt"
    cp "$CA/newcerts/$sn.pem" "$2"
}
cert_of "$S0" c0.pem
cert_of "$S1" c1.pem

cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
URL="http://127.0.0.1:$CMP_PORT/ocsp"
ocsp() { # cert out [extra openssl ocsp args]
    openssl ocsp -issuer "$CA/ca.pem" -cert "$1" -url "$URL" -CAfile "$CA/ca.pem" "${@:3}" \
        >"$2" 2>&1 || true
}

# 1. good, signed by the CA, nonce returned
ocsp c0.pem good.out
grep -q "Response verify OK" good.out || { cat good.out; tm_fail "the response should verify"; }
grep -q "^c0.pem: good" good.out || { cat good.out; tm_fail "c0 should be good"; }
grep -qi "WARNING: no nonce" good.out && tm_fail "the nonce should be echoed"
ocsp c0.pem get.out -req_text -header Host=127.0.0.1 -no_nonce -resp_text
grep -q "^c0.pem: good" get.out || { cat get.out; tm_fail "the POST without nonce"; }

# tokenmint verify --ocsp: both good (the root alone knows nothing of revocation)
"$T" verify --all --root "$CA/ca.pem" --ocsp "$URL" >v_good.out || { cat v_good.out; tm_fail "verify --ocsp: both good"; }
[ "$(grep -c '^OK' v_good.out)" -eq 2 ] || { cat v_good.out; tm_fail "verify --ocsp: two OK lines"; }
# a bad URL is refused before any token is touched; an https one too
rc=0; "$T" verify --all --root "$CA/ca.pem" --ocsp "not a url" >v_bad.out 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "ocsp" v_bad.out || { cat v_bad.out; tm_fail "verify --ocsp 'not a url': exit 2 naming it"; }
rc=0; "$T" verify --all --root "$CA/ca.pem" --ocsp "https://127.0.0.1:$CMP_PORT/ocsp" >v_tls.out 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { cat v_tls.out; tm_fail "verify --ocsp https://: exit 2"; }

# 2. revoked after tokenmint revoke, same running server
"$T" revoke --serial "$S0" --ca "$CA" --reason keyCompromise >rev.out || { cat rev.out; tm_fail "revoke"; }
# verify with the root alone still passes c0; with --ocsp it is REVOKED, with
# the reason and date the responder gave
"$T" verify --all --root "$CA/ca.pem" >v_root.out || { cat v_root.out; tm_fail "verify --root without revocation data"; }
rc=0; "$T" verify --all --root "$CA/ca.pem" --ocsp "$URL" >v_rev.out || rc=$?
[ "$rc" -eq 1 ] || { cat v_rev.out; tm_fail "verify --ocsp after revoke: exit $rc, want 1"; }
grep -q "^REVOKED  *$S0 .*revoked on 20[0-9-]*T[0-9:]*Z, reason keyCompromise (OCSP)" v_rev.out ||
    { cat v_rev.out; tm_fail "verify --ocsp should report c0 REVOKED with date and reason"; }
grep -q "^OK  *$S1 " v_rev.out || { cat v_rev.out; tm_fail "verify --ocsp: c1 stays OK"; }
"$T" verify --all --root "$CA/ca.pem" --ocsp "$URL" --json >v_rev.json || true
[ "$("$TJ" get revoked <v_rev.json | sort | tr '\n' ' ')" = "false true " ] || { cat v_rev.json; tm_fail "verify --ocsp --json: one revoked"; }
ocsp c0.pem revoked.out
grep -q "^c0.pem: revoked" revoked.out || { cat revoked.out; tm_fail "c0 should now be revoked"; }
grep -q "Reason: keyCompromise" revoked.out || { cat revoked.out; tm_fail "the reason should be given"; }
grep -q "Revocation Time" revoked.out || tm_fail "the revocation time should be given"
ocsp c1.pem c1.out
grep -q "^c1.pem: good" c1.out || { cat c1.out; tm_fail "c1 stays good"; }

# 3. GET (RFC 6960 A.1): the request in the URL, base64
openssl ocsp -issuer "$CA/ca.pem" -cert c0.pem -no_nonce -reqout req.der >/dev/null 2>&1 ||
    tm_fail "cannot make an OCSP request"
b64=$(base64 -w0 <req.der | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
"$BC" post "$URL/$b64" /dev/null --method GET --out get.der >get.http
grep -q "^HTTP 200" get.http || { cat get.http; tm_fail "GET OCSP should answer 200"; }
openssl ocsp -respin get.der -issuer "$CA/ca.pem" -cert c0.pem -CAfile "$CA/ca.pem" \
    -no_nonce >getr.out 2>&1 || true
grep -q "^c0.pem: revoked" getr.out || { cat getr.out; tm_fail "GET should say revoked"; }

# 4. another CA's certificate: unknown
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key \
    -subj "/CN=other CA" -days 2 -out other.pem 2>/dev/null
ocsp other.pem other.out
grep -q "^other.pem: unknown" other.out || { cat other.out; tm_fail "a foreign certificate is unknown"; }

# 5. GET /crl serves the CRL made last
"$BC" post "http://127.0.0.1:$CMP_PORT/crl" /dev/null --method GET --out nocrl.der >nocrl.http
grep -q "^HTTP 404" nocrl.http || { cat nocrl.http; tm_fail "no CRL made yet: 404"; }
"$T" ca crl "$CA" >/dev/null || tm_fail "ca crl"
"$BC" post "http://127.0.0.1:$CMP_PORT/crl" /dev/null --method GET --out crl.der >crl.http
grep -q "^HTTP 200" crl.http || { cat crl.http; tm_fail "GET /crl"; }
openssl crl -inform DER -in crl.der -CAfile "$CA/ca.pem" -noout 2>&1 | tm_grepq "verify OK" ||
    tm_fail "the served CRL should verify"

# 6. CMP rr with stock openssl cmp (PBMAC): OCSP says revoked at once; a
# second rr is refused with certRevoked.
openssl cmp -cmd rr -server "127.0.0.1:$CMP_PORT/pkix/" -secret "file:$SECRET" -ref station \
    -oldcert c1.pem -revreason 4 -unprotected_errors >rr.log 2>&1 || { cat rr.log; tm_fail "openssl cmp -cmd rr"; }
ocsp c1.pem rr.out
grep -q "^c1.pem: revoked" rr.out || { cat rr.out; tm_fail "c1 revoked over CMP rr"; }
openssl cmp -cmd rr -server "127.0.0.1:$CMP_PORT/pkix/" -secret "file:$SECRET" -ref station \
    -oldcert c1.pem -revreason 4 -unprotected_errors >rr2.log 2>&1 && tm_fail "a second rr must be refused"
grep -q "certRevoked" rr2.log || { cat rr2.log; tm_fail "the second rr: certRevoked"; }
grep -q "revoked serial .* (rr)" serve.log || { cat serve.log; tm_fail "rr should be in the access log"; }
cmp_stop "$CMP_PID"

# 7. a delegated OCSP signer (issued by the CA, EKU OCSPSigning)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ocsp.key \
    -subj "/CN=tokenmint OCSP" -out ocsp.csr 2>/dev/null
KEY=$(awk -F' *= *' '/^private_key/ {print $2}' "$CA/ca.cnf")
openssl x509 -req -in ocsp.csr -CA "$CA/ca.pem" -CAkey "$KEY" -CAcreateserial -days 2 \
    -extfile <(printf 'extendedKeyUsage=OCSPSigning\nkeyUsage=critical,digitalSignature\n') \
    -out ocsp.pem 2>/dev/null || tm_fail "cannot make the OCSP signer"
openssl x509 -req -in ocsp.csr -CA "$CA/ca.pem" -CAkey "$KEY" -CAcreateserial -days 2 \
    -extfile <(printf 'keyUsage=critical,digitalSignature\n') -out noeku.pem 2>/dev/null
"$T" ca serve "$CA" --secret-source "$SECRET" --listen 127.0.0.1:0 --ocsp-cert noeku.pem \
    --ocsp-key ocsp.key >noeku.out 2>&1 && tm_fail "a signer without OCSPSigning must be refused"
grep -q "OCSPSigning" noeku.out || { cat noeku.out; tm_fail "the refusal should name the EKU"; }
cmp_start serve2 "$T" ca serve "$CA" --secret-source "$SECRET" --ocsp-cert ocsp.pem --ocsp-key ocsp.key
URL="http://127.0.0.1:$CMP_PORT/ocsp"
ocsp c1.pem del.out -resp_text
grep -q "Response verify OK" del.out || { cat del.out; tm_fail "the delegated response should verify"; }
grep -q "^c1.pem: revoked" del.out || { cat del.out; tm_fail "c1 revoked via the delegated signer"; }
grep -q "Responder Id: CN = tokenmint OCSP" del.out || { cat del.out; tm_fail "signed by the delegated signer"; }
rc=0; "$T" verify --all --root "$CA/ca.pem" --ocsp "$URL" >v_del.out || rc=$?
[ "$rc" -eq 1 ] && [ "$(grep -c '^REVOKED' v_del.out)" -eq 2 ] ||
    { cat v_del.out; tm_fail "verify --ocsp through the delegated signer: both revoked"; }
cmp_stop "$CMP_PID"
echo "ca_ocsp: OK"
