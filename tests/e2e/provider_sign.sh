#!/usr/bin/env bash
# A CA key on a token: stock `openssl ca -config conf/ca.cnf -keyfile pkcs11:...`
# issues a profile certificate and refuses one with CN=Alice (issuing key,
# enforcement on); `openssl x509 -req -CAkey pkcs11:...`, `openssl dgst -sign`
# and `openssl pkeyutl -sign` with token keys verify with the exported public
# keys; every command exits 0.
. "$(dirname "$0")/provider_lib.sh"
tm_make_tokens 2
S=${TM_SERIALS[0]}  # the device token
CA=${TM_SERIALS[1]} # the CA token
cd "$TM_TMP"
tm_keygen 1 EC:prime256v1 01
tm_keygen 1 rsa:2048 02
tm_keygen 2 EC:prime256v1 01
CAKEY=$(tm_uri "$CA" 01)

# --- the CA certificate, self-signed by the token key -----------------------
mkdir ca ca/certs
: >ca/index.txt
cat >ca-req.cnf <<'CNF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
tm_run "CA certificate" openssl req -x509 -new "${PROV[@]}" -config ca-req.cnf -key "$CAKEY" \
    -subj "/O=tokenmint test/CN=Token CA" -days 30 -out ca/ca.pem
openssl x509 -in ca/ca.pem -noout -text | tm_grepq 'ASN1 OID: prime256v1' ||
    tm_fail "CA certificate: EC key not in named-curve form"

# --- a device request with the profile's SAN, signed by its token ------------
tm_profile_req_cnf "$S" dev.cnf
AUTH=(-addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=clientAuth")
tm_run "device request" openssl req -new "${PROV[@]}" -config dev.cnf -key "$(tm_uri "$S" 01)" \
    -subj "/serialNumber=$S" -addext "$HWMN_SAN" "${AUTH[@]}" -out dev.csr
tm_run "device request, CN=Alice" openssl req -new "${PROV[@]}" -config dev.cnf \
    -key "$(tm_uri "$S" 01)" -subj "/serialNumber=$S/CN=Alice" -addext "$HWMN_SAN" "${AUTH[@]}" \
    -out alice.csr

# --- the station's openssl.cnf: the CA key is an issuing key ------------------
# The shipped snippet, with the paths of this build and the CA key filled in
# (the PKCS#11 module comes from TOKENMINT_MODULE).
sed -e "s|^#module = .*|module = $TM_PROVIDER_DIR/tokenmint.so|" \
    -e "s|^#issuing-keys = .*|issuing-keys = pkcs11:serial=$CA;id=%01|" \
    "$TM_SOURCE_DIR/conf/openssl-tokenmint.cnf" >station.cnf
grep -q '^enforce = on' station.cnf || tm_fail "the shipped snippet does not enforce the profile"
export OPENSSL_CONF=$TM_TMP/station.cnf
cd ca
tm_run "openssl ca" openssl ca -batch -notext -config "$TM_SOURCE_DIR/conf/ca.cnf" \
    -extensions auth -keyfile "$CAKEY" -in ../dev.csr -out dev.pem
openssl verify -CAfile ca.pem dev.pem || tm_fail "issued certificate does not verify"
openssl x509 -in dev.pem -noout -text >dev.txt
grep -q "serialNumber = $S" dev.txt || tm_fail "certificate does not name the token"
grep -q 'ASN1 OID: prime256v1' dev.txt || tm_fail "certificate: EC key not in named-curve form"
grep -q 'Field Type' dev.txt && tm_fail "certificate: explicit curve parameters"

# The policy drops CN; with -preserveDN it would reach the certificate, and
# the issuing key refuses to sign that.
if openssl ca -batch -notext -config "$TM_SOURCE_DIR/conf/ca.cnf" -extensions auth -preserveDN \
    -keyfile "$CAKEY" -in ../alice.csr -out alice.pem 2>err.txt; then
    tm_fail "the issuing key signed a certificate with CN=Alice"
fi
cat err.txt
grep -q "refuses to sign: .*CN=Alice" err.txt || tm_fail "no message naming CN=Alice"
[ ! -s alice.pem ] || tm_fail "a refused certificate was written"
[ "$(wc -l <index.txt)" -eq 1 ] || tm_fail "the CA database records a refused certificate"
tm_run "openssl ca, CN dropped by policy" openssl ca -batch -notext \
    -config "$TM_SOURCE_DIR/conf/ca.cnf" -extensions auth -keyfile "$CAKEY" -in ../alice.csr \
    -out alice-ok.pem
openssl x509 -in alice-ok.pem -noout -subject | tm_grepq Alice && tm_fail "CN=Alice kept"
unset OPENSSL_CONF
cd ..

# --- openssl x509 -req with the CA key on the token ----------------------------
tm_run "x509 -req" openssl x509 -req "${PROV[@]}" -in dev.csr -CA ca/ca.pem -CAkey "$CAKEY" \
    -days 10 -out x509.pem
openssl verify -CAfile ca/ca.pem x509.pem || tm_fail "x509 -req certificate does not verify"

# --- dgst -sign / pkeyutl -sign, verified with exported public keys -----------
head -c 10000 /dev/urandom >data
for id in 01 02; do
    K=$(tm_uri "$S" $id)
    tm_run "pkey -pubout $id" openssl pkey "${PROV[@]}" -in "$K" -pubout -out pub$id.pem
    tm_run "pkey -pubin public object $id" openssl pkey "${PROV[@]}" -pubin \
        -in "pkcs11:serial=$S;id=%$id;type=public" -pubout -out pubobj$id.pem
    cmp -s pub$id.pem pubobj$id.pem || tm_fail "public key $id differs between private and public object"
    tm_run "dgst -sign $id" openssl dgst "${PROV[@]}" -sha256 -sign "$K" -out d$id.sig data
    openssl dgst -sha256 -verify pub$id.pem -signature d$id.sig data || tm_fail "dgst signature $id"
    openssl dgst -sha256 -binary data >h
    tm_run "pkeyutl -sign $id" openssl pkeyutl "${PROV[@]}" -sign -inkey "$K" -in h \
        -pkeyopt digest:sha256 -out p$id.sig
    openssl pkeyutl -verify -pubin -inkey pub$id.pem -in h -pkeyopt digest:sha256 -sigfile p$id.sig ||
        tm_fail "pkeyutl signature $id"
done
# RSA-PSS through pkeyutl
tm_run "pkeyutl -sign pss" openssl pkeyutl "${PROV[@]}" -sign -inkey "$(tm_uri "$S" 02)" -in h \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -out pss.sig
openssl pkeyutl -verify -pubin -inkey pub02.pem -in h -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -sigfile pss.sig || tm_fail "PSS signature"
# --- a DER structure too large for the profile check: refused, not signed unchecked
# (a SEQUENCE header spanning the whole file, over 1 MiB), whether the data
# arrives in pieces (dgst) or at once (EdDSA signs the whole message)
{
    printf '\x30\x83\x10\x00\x00'
    head -c $((0x100000)) /dev/zero
} >big.der
if openssl dgst "${PROV[@]}" -sha256 -sign "$(tm_uri "$S" 01)" -out big.sig big.der 2>err.txt; then
    tm_fail "dgst signed a DER structure too large to check"
fi
grep -q 'too large for the profile check' err.txt || { cat err.txt; tm_fail "no message (dgst)"; }
if pkcs11-tool --module "$TM_P11_MODULE" -M 2>/dev/null | tm_grepq '^ *EDDSA'; then
    tm_keygen 1 EC:edwards25519 03
    if openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey "$(tm_uri "$S" 03)" -in big.der \
        -out big.sig 2>err.txt; then
        tm_fail "pkeyutl -rawin signed a DER structure too large to check"
    fi
    grep -q 'too large for the profile check' err.txt || { cat err.txt; tm_fail "no message (EdDSA)"; }
else
    echo "SoftHSM2 has no CKM_EDDSA: whole-message signing of large DER skipped"
fi

# A tampered message does not verify (the checks above can fail).
printf x >>data
if openssl dgst -sha256 -verify pub01.pem -signature d01.sig data >/dev/null; then
    tm_fail "a tampered message verified"
fi
echo PASS
