#!/usr/bin/env bash
# The signing boundary in the module (issue 10 item 13): a key listed in the
# module's issuing_keys signs only with a hash-and-sign mechanism the module
# carries out, after checking the message with the profile. A raw signature
# over a precomputed digest is refused (stock pkcs11-tool), while stock
# `openssl ca` through the provider keeps working, and a certificate outside
# the profile is refused by the module even with the provider configured to
# know nothing about issuing keys.
TM_PROVIDER_ROUTE=module
. "$(dirname "$0")/provider_lib.sh"
tm_make_tokens 2
S=${TM_SERIALS[0]}  # the device token
CA=${TM_SERIALS[1]} # the CA token
cd "$TM_TMP"
tm_keygen 1 EC:prime256v1 01
tm_keygen 2 EC:prime256v1 01
tm_keygen 2 rsa:2048 02
CAKEY=$(tm_uri "$CA" 01)
export TM_SYSLOG_FILE=$TM_TMP/syslog.txt
export TOKENMINT_CONF=$TM_TMP/tokenmint.conf
conf() { # extra [tokenmint] lines
    printf '[tokenmint]\nbackends = %s\naudit_log = %s\n%s\n%s\n' "$TM_TOKEN_BACKEND" \
        "$TM_TMP/audit.jsonl" "$1" "$(tm_backend_section)" >"$TOKENMINT_CONF"
}
p11() { # SERIAL ARGS...: stock pkcs11-tool through the module, syslog captured
    local slot
    slot=$(pkcs11-tool --module "$TM_MODULE" -L 2>/dev/null |
        awk -v s="$1" '/^Slot/{id=$3} /serial num/{if ($NF==s) print id}' | tr -d '()')
    shift
    LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$TM_SYSLOG_CAPTURE" \
        pkcs11-tool --module "$TM_MODULE" --slot "$slot" "$@"
}

# the CA certificate is made before the key is an issuing key
conf ""
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
tm_profile_req_cnf "$S" dev.cnf
AUTH=(-addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=clientAuth")
tm_run "device request" openssl req -new "${PROV[@]}" -config dev.cnf -key "$(tm_uri "$S" 01)" \
    -subj "/serialNumber=$S" -addext "$HWMN_SAN" "${AUTH[@]}" -out dev.csr
tm_run "device request, CN=Alice" openssl req -new "${PROV[@]}" -config dev.cnf \
    -key "$(tm_uri "$S" 01)" -subj "/serialNumber=$S/CN=Alice" -addext "$HWMN_SAN" "${AUTH[@]}" \
    -out alice.csr
head -c 5000 /dev/urandom >data
openssl dgst -sha256 -binary data >h

# a bad issuing_keys list stops the module
conf "issuing_keys = pkcs11:serial=$CA"
out=$(TOKENMINT_DEBUG=1 pkcs11-tool --module "$TM_MODULE" -L 2>&1) && tm_fail "issuing_keys without a key accepted"
grep -q "names no key" <<<"$out" || tm_fail "no reason for issuing_keys naming no key: $out"

conf "issuing_keys = pkcs11:serial=$CA;id=%01 pkcs11:serial=$CA;id=%02"
# the CA token shows hash-and-sign mechanisms, not the raw ones
p11 "$CA" -M >mechs.txt 2>/dev/null
grep -q '^ *ECDSA-SHA256' mechs.txt || tm_fail "no ECDSA-SHA256 on the CA token: $(cat mechs.txt)"
grep -qE '^ *ECDSA,' mechs.txt && tm_fail "raw ECDSA still listed on the CA token"
grep -qE '^ *RSA-PKCS,' mechs.txt && tm_fail "raw RSA-PKCS still listed on the CA token"

# raw ECDSA / RSA over a precomputed digest with an issuing key: refused, and
# a person finds why
: >"$TM_SYSLOG_FILE"
p11 "$CA" -l --pin "$TM_USER_PIN" --sign -m ECDSA --id 01 -i h -o raw.sig >/dev/null 2>&1 &&
    tm_fail "raw ECDSA signature over a digest with an issuing key"
grep -q "token $CA: sign refused: issuing key: mechanism 0x1041" "$TM_SYSLOG_FILE" ||
    tm_fail "the raw-signature refusal is not in syslog: $(cat "$TM_SYSLOG_FILE")"
p11 "$CA" -l --pin "$TM_USER_PIN" --sign -m RSA-PKCS --id 02 -i h -o raw.sig >/dev/null 2>&1 &&
    tm_fail "raw RSA signature with an issuing key"
p11 "$CA" -l --pin "$TM_USER_PIN" --decrypt -m RSA-X-509 --id 02 -i h -o raw.out >/dev/null 2>&1 &&
    tm_fail "raw RSA decryption (a signature) with an issuing key"
# the device token's key is no issuing key: raw ECDSA as before
p11 "$S" -l --pin "$TM_USER_PIN" --sign -m ECDSA --id 01 -i h -o dev.sig >/dev/null 2>&1 ||
    tm_fail "raw ECDSA on a device key was refused"

# hash-and-sign over data that is no certificate: signed by the module, verifies
p11 "$CA" -l --pin "$TM_USER_PIN" --sign -m ECDSA-SHA256 --id 01 -i data -o data.sig \
    --signature-format openssl >/dev/null 2>&1 || tm_fail "ECDSA-SHA256 with the issuing key failed"
p11 "$CA" --read-object --type pubkey --id 01 -o capub.der >/dev/null 2>&1
openssl pkey -pubin -inform DER -in capub.der -out capub.pem
openssl dgst -sha256 -verify capub.pem -signature data.sig data >/dev/null ||
    tm_fail "the module's ECDSA-SHA256 signature does not verify"

# stock openssl ca through the provider: works, the module checked the profile
sed -e "s|^#module = .*|module = $TM_PROVIDER_DIR/tokenmint.so|" \
    "$TM_SOURCE_DIR/conf/openssl-tokenmint.cnf" >station.cnf
export OPENSSL_CONF=$TM_TMP/station.cnf
cd ca
tm_run "openssl ca" openssl ca -batch -notext -config "$TM_SOURCE_DIR/conf/ca.cnf" \
    -extensions auth -keyfile "$CAKEY" -in ../dev.csr -out dev.pem
openssl verify -CAfile ca.pem dev.pem || tm_fail "issued certificate does not verify"
grep -q '"op":"sign","outcome":"ok","detail":"issuing key signed certificate serial' ../audit.jsonl ||
    tm_fail "the module did not check (and audit) the certificate it signed"
# CN=Alice kept by -preserveDN: the provider knows no issuing key here; the module refuses
if openssl ca -batch -notext -config "$TM_SOURCE_DIR/conf/ca.cnf" -extensions auth -preserveDN \
    -keyfile "$CAKEY" -in ../alice.csr -out alice.pem 2>err.txt; then
    tm_fail "the module let an issuing key sign a certificate with CN=Alice"
fi
[ ! -s alice.pem ] || tm_fail "a refused certificate was written"
grep -q '"op":"sign","outcome":"refused","detail":"issuing key refuses to sign a certificate outside the profile: .*CN=Alice' \
    ../audit.jsonl || tm_fail "the refusal is not audited with its reason: $(tail -2 ../audit.jsonl)"
unset OPENSSL_CONF
echo PASS
