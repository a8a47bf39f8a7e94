#!/usr/bin/env bash
# The write policy's config switches, through the module: trusted_roots (a
# certificate must chain to one) and outside_profile (what happens to a
# certificate outside the serial-bound profile, e.g. a CA certificate).
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"

tm_make_tokens 1
S=${TM_SERIALS[0]}
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
conf() { # extra [tokenmint] lines
    printf '[tokenmint]\nbackends = %s\naudit_log = %s\n%s\n%s\n' "$TM_TOKEN_BACKEND" \
        "$TM_TMP/audit.jsonl" "$1" "$(tm_backend_section)" >"$TOKENMINT_CONF"
}
conf ""
p11() { pkcs11-tool --module "$TM_MODULE" --slot "$(tm_slot_of_serial "$S")" "$@"; }
write() { p11 -l --pin "$TM_USER_PIN" --write-object "$1" --type cert 2>&1; }

p11 -l --pin "$TM_USER_PIN" --keypairgen --key-type EC:prime256v1 --id 01 >/dev/null
p11 --read-object --type pubkey --id 01 -o "$TM_TMP/pub.der" 2>/dev/null
openssl pkey -pubin -inform DER -in "$TM_TMP/pub.der" -out "$TM_TMP/pub.pem"
tm_test_ca "$TM_TMP/ca"
tm_test_ca "$TM_TMP/other-ca"
tm_profile_cert "$TM_TMP/ca" "$S" "$TM_TMP/pub.pem" "$TM_TMP/cert.der"

# trusted_roots names another CA: refused, nothing stored
conf "trusted_roots = $TM_TMP/other-ca/ca.pem"
out=$(write "$TM_TMP/cert.der") && tm_fail "certificate from an untrusted CA written"
grep -q CKR_SIGNATURE_INVALID <<<"$out" || tm_fail "expected CKR_SIGNATURE_INVALID: $out"
p11 -O --type cert | tm_grepq "Certificate Object" && tm_fail "refused certificate stored"

# a roots file without a certificate stops the module
echo "not a certificate" >"$TM_TMP/empty.pem"
conf "trusted_roots = $TM_TMP/empty.pem"
out=$(TOKENMINT_DEBUG=1 pkcs11-tool --module "$TM_MODULE" -L 2>&1) && tm_fail "started with empty roots"
grep -q "holds no PEM certificate" <<<"$out" || tm_fail "no reason for the empty roots file: $out"

# its own CA: written
conf "trusted_roots = $TM_TMP/ca/ca.pem"
out=$(write "$TM_TMP/cert.der") || tm_fail "certificate from the trusted CA refused: $out"

# a CA certificate (outside the profile): refused by default, stored under allow
openssl x509 -in "$TM_TMP/ca/ca.pem" -outform DER -out "$TM_TMP/ca.der"
conf ""
out=$(write "$TM_TMP/ca.der") && tm_fail "CA certificate written under outside_profile = refuse"
grep -q CKR_TEMPLATE_INCONSISTENT <<<"$out" || tm_fail "expected CKR_TEMPLATE_INCONSISTENT: $out"
conf "outside_profile = allow"
out=$(write "$TM_TMP/ca.der") || tm_fail "CA certificate refused under outside_profile = allow: $out"
[ "$(p11 -O --type cert | grep -c 'Certificate Object')" -eq 2 ] || tm_fail "expected 2 certificates"
echo PASS
