#!/usr/bin/env bash
# Two writers, one key pair: the per-token write lock makes "no certificate
# yet" and the create one step, so when two threads write a certificate for
# the same key at once, exactly one is stored and the other is refused with
# CKR_DATA_INVALID. The shim slows the policy's token searches down so that,
# without the lock, both would pass the check.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"

tm_make_tokens 1
S=${TM_SERIALS[0]}
tm_shim_setup a "$TM_SOFTHSM_MODULE"
export TOKENMINT_BACKEND="$TM_SHIM_MODULE"
slot=$(tm_slot_of_serial "$S")
pkcs11-tool --module "$TM_MODULE" --slot "$slot" -l --pin "$TM_USER_PIN" --keypairgen \
    --key-type EC:prime256v1 --id 01 >/dev/null
pkcs11-tool --module "$TM_MODULE" --slot "$slot" --read-object --type pubkey --id 01 \
    -o "$TM_TMP/pub.der" 2>/dev/null
openssl pkey -pubin -inform DER -in "$TM_TMP/pub.der" -out "$TM_TMP/pub.pem"
tm_test_ca "$TM_TMP/ca"
tm_profile_cert "$TM_TMP/ca" "$S" "$TM_TMP/pub.pem" "$TM_TMP/cert.der"

tm_shim_latency C_FindObjectsInit 300
out=$("$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" race-write "$S" "$TM_USER_PIN" \
    "$TM_TMP/cert.der") || tm_fail "client: $out"
grep -qx "created 1 refused 1 rv 0x20" <<<"$out" || tm_fail "expected one write and one refusal: $out"
tm_shim_clear
[ "$(pkcs11-tool --module "$TM_MODULE" --slot "$slot" -O --type cert | grep -c 'Certificate Object')" \
    -eq 1 ] || tm_fail "expected exactly one certificate on the token"
echo PASS
