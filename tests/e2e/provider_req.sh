#!/usr/bin/env bash
# Stock `openssl req` signs a request with a token key (RSA-2048 PKCS#1 and
# PSS, P-256, P-384, Ed25519); `openssl req -verify` accepts it; EC keys are
# written in the named-curve form; a request naming another token's serial is
# refused with a message saying so.
. "$(dirname "$0")/provider_lib.sh"
tm_make_tokens 1
S=${TM_SERIALS[0]}
cd "$TM_TMP"

tm_keygen 1 rsa:2048 01
tm_keygen 1 EC:prime256v1 02
tm_keygen 1 EC:secp384r1 03
have_eddsa=0
if pkcs11-tool --module "$TM_P11_MODULE" -M 2>/dev/null | tm_grepq '^ *EDDSA'; then
    have_eddsa=1
    tm_keygen 1 EC:edwards25519 04
fi

req() { # ID OUT [extra args]
    local id=$1 out=$2
    shift 2
    tm_run "openssl req key $id" openssl req -new "${PROV[@]}" -key "$(tm_uri "$S" "$id")" \
        -subj "/serialNumber=$S" -out "$out" "$@"
    tm_run "openssl req -verify $out" openssl req -in "$out" -verify -noout
}

req 01 rsa.csr
openssl req -in rsa.csr -noout -text | tm_grepq 'sha256WithRSAEncryption' || tm_fail "RSA: not sha256WithRSAEncryption"
req 01 pss.csr -sigopt rsa_padding_mode:pss
openssl req -in pss.csr -noout -text | tm_grepq 'rsassaPss' || tm_fail "PSS: not rsassaPss"
req 02 p256.csr
req 03 p384.csr -sha384
for c in p256 p384; do
    # RFC 5480: the curve by OID, never explicit parameters
    openssl req -in $c.csr -noout -text >$c.txt
    grep -q 'ASN1 OID: \(prime256v1\|secp384r1\)' $c.txt || tm_fail "$c: no named curve OID"
    grep -q 'Field Type' $c.txt && tm_fail "$c: explicit curve parameters"
    openssl req -in $c.csr -outform DER | openssl asn1parse -inform DER >$c.asn1
    grep -q 'OBJECT *:\(prime256v1\|secp384r1\)' $c.asn1 || tm_fail "$c: curve OID missing in DER"
done
if [ $have_eddsa = 1 ]; then
    req 04 ed.csr
    openssl req -in ed.csr -noout -text | tm_grepq 'ED25519' || tm_fail "Ed25519 request"
else
    echo "SoftHSM2 has no CKM_EDDSA: Ed25519 skipped"
fi

# A request with the profile's SAN, naming this token: signed.
tm_profile_req_cnf "$S" hw.cnf
tm_run "req with hardwareModuleName" openssl req -new "${PROV[@]}" -config hw.cnf \
    -key "$(tm_uri "$S" 02)" -subj "/serialNumber=$S" -addext "$HWMN_SAN" -out hw.csr
openssl req -in hw.csr -verify -noout
# The provider registers the profile's OIDs: text output names the otherName.
openssl req "${PROV[@]}" -in hw.csr -noout -text | tm_grepq -i 'othername: *hardware *module *name' ||
    tm_fail "req -text does not name hardwareModuleName with the provider loaded"

# Naming another serial: refused at the signer, with the reason.
if openssl req -new "${PROV[@]}" -key "$(tm_uri "$S" 02)" -subj "/serialNumber=FEEDFACE00000000" \
    -out other.csr 2>err.txt; then
    tm_fail "a request naming another serial was signed"
fi
cat err.txt
grep -q "request names serial FEEDFACE00000000; this key is on token $S" err.txt ||
    tm_fail "no message naming both serials"
[ ! -s other.csr ] || tm_fail "a refused request was written"
# The SAN naming another token while the subject names this one: refused too.
tm_profile_req_cnf "FEEDFACE00000000" hw2.cnf
if openssl req -new "${PROV[@]}" -config hw2.cnf -key "$(tm_uri "$S" 02)" \
    -subj "/serialNumber=$S" -addext "$HWMN_SAN" -out hw2.csr 2>err.txt; then
    tm_fail "a request with a SAN naming another token was signed"
fi
grep -q "this key is on token $S" err.txt || tm_fail "no message for the SAN mismatch"
# No serial at all: refused, and told what to add.
if openssl req -new "${PROV[@]}" -key "$(tm_uri "$S" 02)" -subj "/O=Example" -out none.csr \
    2>err.txt; then
    tm_fail "a request naming no serial was signed"
fi
grep -q "request names no token serial" err.txt || tm_fail "no message for a missing serial"

# Enforcement off (provider option): a plain PKCS#11 provider.
cat >off.cnf <<CNF
openssl_conf = init
[init]
providers = provs
[provs]
tokenmint = tm
default = dflt
[tm]
module = $TM_PROVIDER_DIR/tokenmint.so
pkcs11-module = $TOKENMINT_MODULE
enforce = off
activate = 1
[dflt]
activate = 1
CNF
OPENSSL_CONF=off.cnf tm_run "req with enforce off" openssl req -new \
    -key "$(tm_uri "$S" 02)" -subj "/serialNumber=FEEDFACE00000000" -out off.csr
openssl req -in off.csr -verify -noout
echo PASS
