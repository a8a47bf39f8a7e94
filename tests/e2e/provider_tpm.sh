#!/usr/bin/env bash
# Issue 13, "a third backend: tpm2-pkcs11 on swtpm": the provider with a
# TPM-backed token (tests/lib/tpm.sh starts a swtpm per test), directly and
# through tokenmint-pkcs11.so:
# - key pairs made on the TPM through `openssl genpkey` (EC P-256, RSA 2048);
# - a request signed on the TPM that verifies; a TLS 1.3 server with the key;
# - RSA decryption, PKCS#1 v1.5 and OAEP, equal to the plaintext;
# - what the TPM token lacks is refused with a message that names it:
#   Ed25519 key generation (no CKM_EC_EDWARDS_KEY_PAIR_GEN) and ECDH (no
#   CKM_ECDH1_DERIVE in tpm2-pkcs11 1.9).
# Skips outside CI when the packages are absent; fails under CI=true.
. "$(dirname "$0")/provider_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/tpm.sh"
tm_tpm_available || exit 77 # ctest: skipped
tm_make_tpm_token tpm0
if [ "${TM_PROVIDER_ROUTE:-direct}" = module ]; then
    export TOKENMINT_BACKEND=$TM_TPM_MODULE
else
    export TOKENMINT_MODULE=$TM_TPM_MODULE
fi
cd "$TM_TMP"
Q="pin-value=$TM_USER_PIN"
KEY() { echo "pkcs11:token=tpm0;id=%$1;type=private;$Q"; }
openssl genpkey "${PROV[@]}" -algorithm EC -pkeyopt group:P-256 -pkeyopt pkcs11_key_usage:sign \
    -pkeyopt "pkcs11_uri:pkcs11:token=tpm0;object=ec;id=%01;$Q" -out ec.uri 2>err ||
    tm_fail "genpkey EC on the TPM: $(cat err)"
openssl genpkey "${PROV[@]}" -algorithm RSA -pkeyopt bits:2048 -pkeyopt pkcs11_key_usage:sign,decrypt \
    -pkeyopt "pkcs11_uri:pkcs11:token=tpm0;object=rsa;id=%02;$Q" -out rsa.uri 2>err ||
    tm_fail "genpkey RSA on the TPM: $(cat err)"
tm_grepq '^pkcs11:.*token=tpm0.*id=%02' rsa.uri || tm_fail "genpkey did not write the URI"

openssl req -new "${PROV[@]}" -key "$(KEY 01)" -subj "/serialNumber=$TM_TPM_SERIAL/CN=tpm" \
    -out ec.csr 2>err || tm_fail "request signed on the TPM: $(cat err)"
openssl req -in ec.csr -verify -noout || tm_fail "the TPM's request signature does not verify"

openssl pkey "${PROV[@]}" -in "$(KEY 02)" -pubout -out rsa.pub || tm_fail "RSA public key"
head -c 32 /dev/urandom >msg
for pad in pkcs1 oaep; do
    openssl pkeyutl -encrypt -pubin -inkey rsa.pub -pkeyopt rsa_padding_mode:$pad -in msg -out ct.$pad
    openssl pkeyutl -decrypt "${PROV[@]}" -inkey "$(KEY 02)" -pkeyopt rsa_padding_mode:$pad \
        -in ct.$pad -out pt.$pad 2>err || tm_fail "TPM decrypt $pad: $(cat err)"
    cmp -s msg pt.$pad || tm_fail "TPM decrypt $pad: wrong plaintext"
done

# TLS 1.3 with the TPM key (certified by a file CA)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -subj /CN=ca -days 2 -out ca.pem 2>/dev/null
openssl pkey "${PROV[@]}" -in "$(KEY 01)" -pubout -out ec.pub || tm_fail "EC public key"
openssl req -new -key ca.key -subj /CN=localhost -out host.csr 2>/dev/null
openssl x509 -req -in host.csr -force_pubkey ec.pub -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 2 -out tpm.pem 2>/dev/null || tm_fail "certificate for the TPM key"
PFX=("${PROV[@]}")
tm_tls tpm ec-13 -cert tpm.pem -key "$(KEY 01)" -tls1_3 -- -tls1_3

# what the TPM token lacks, said clearly
if openssl genpkey "${PROV[@]}" -algorithm ED25519 \
    -pkeyopt "pkcs11_uri:pkcs11:token=tpm0;object=ed;$Q" -out ed.uri 2>err; then
    echo "note: this TPM makes Ed25519 keys"
else
    tm_grepq 'cannot make Ed25519 keys: it has no mechanism .*CKM_EC_EDWARDS_KEY_PAIR_GEN' err ||
        tm_fail "Ed25519 on the TPM: no clear reason: $(cat err)"
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out peer.key 2>/dev/null
openssl pkey -in peer.key -pubout -out peer.pub
if openssl pkeyutl -derive "${PROV[@]}" -inkey "$(KEY 01)" -peerkey peer.pub -out z 2>err; then
    openssl pkeyutl -derive -inkey peer.key -peerkey ec.pub -out z.soft
    cmp -s z z.soft || tm_fail "TPM ECDH differs from the software result"
else
    tm_grepq 'has no ECDH (CKM_ECDH1_DERIVE)\|does not implement C_DeriveKey' err ||
        tm_fail "ECDH on the TPM: no clear reason: $(cat err)"
fi
cat err | tm_grepq "$Q" && tm_fail "a message shows the PIN"
echo "PASS: provider on a TPM token"
