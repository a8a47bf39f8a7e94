#!/usr/bin/env bash
# C_DestroyObject through the module (issue 10 item 9): every destroy is
# audited with what was removed; under destroy_bound_certificates = refuse a
# certificate bound to the token stays, and the refusal's reason reaches a
# person through syslog (and stderr with TOKENMINT_DEBUG) even without an
# audit log.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"

tm_make_tokens 1
S=${TM_SERIALS[0]}
audit="$TM_TMP/audit.jsonl"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
export TM_SYSLOG_FILE="$TM_TMP/syslog.txt"
conf() { # extra [tokenmint] lines
    printf '[tokenmint]\nbackends = %s\n%s\n%s\n' "$TM_TOKEN_BACKEND" \
        "$1" "$(tm_backend_section)" >"$TOKENMINT_CONF"
}
p11() {
    LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$TM_SYSLOG_CAPTURE" \
        pkcs11-tool --module "$TM_MODULE" --slot "$(tm_slot_of_serial "$S")" "$@"
}
conf "audit_log = $audit"
p11 -l --pin "$TM_USER_PIN" --keypairgen --key-type EC:prime256v1 --id 01 --label k1 >/dev/null
p11 -l --pin "$TM_USER_PIN" --keypairgen --key-type EC:prime256v1 --id 02 --label k2 >/dev/null
p11 --read-object --type pubkey --id 01 -o "$TM_TMP/pub.der" 2>/dev/null
openssl pkey -pubin -inform DER -in "$TM_TMP/pub.der" -out "$TM_TMP/pub.pem"
tm_test_ca "$TM_TMP/ca"
tm_profile_cert "$TM_TMP/ca" "$S" "$TM_TMP/pub.pem" "$TM_TMP/cert.der"
p11 -l --pin "$TM_USER_PIN" --write-object "$TM_TMP/cert.der" --type cert >/dev/null

# a key pair without certificate: destroyed, and audited with what it was
p11 -l --pin "$TM_USER_PIN" --delete-object --type privkey --id 02 >/dev/null ||
    tm_fail "destroying a free private key failed"
grep -q '"op":"destroy","outcome":"destroyed","detail":"private key, CKA_ID 02, label .k2.' "$audit" ||
    tm_fail "the destroy is not audited: $(cat "$audit")"

# destroy_bound_certificates = refuse: the bound certificate stays, and a
# person finds why: syslog without an audit log, stderr with TOKENMINT_DEBUG
conf "destroy_bound_certificates = refuse"
: >"$TM_SYSLOG_FILE"
out=$(p11 -l --pin "$TM_USER_PIN" --delete-object --type cert --id 01 2>&1) &&
    tm_fail "a bound certificate was destroyed under refuse"
p11 -O --type cert | tm_grepq "Certificate Object" || tm_fail "the bound certificate is gone"
grep -q "tokenmint-pkcs11: token $S: destroy refused: certificate (serial .*, bound to this token).*destroy_bound_certificates = refuse" \
    "$TM_SYSLOG_FILE" || tm_fail "the refusal is not in syslog: $(cat "$TM_SYSLOG_FILE")"
grep -q "destroy refused" <<<"$out" && tm_fail "the module wrote to stderr without TOKENMINT_DEBUG"
out=$(TOKENMINT_DEBUG=1 p11 -l --pin "$TM_USER_PIN" --delete-object --type cert --id 01 2>&1) &&
    tm_fail "a bound certificate was destroyed under refuse (debug run)"
grep -q "destroy refused: certificate" <<<"$out" || tm_fail "no reason on stderr with TOKENMINT_DEBUG: $out"

# a bad value is refused at start
conf "destroy_bound_certificates = sometimes"
out=$(TOKENMINT_DEBUG=1 pkcs11-tool --module "$TM_MODULE" -L 2>&1) &&
    tm_fail "started with destroy_bound_certificates = sometimes"
grep -q "destroy_bound_certificates must be" <<<"$out" || tm_fail "no reason for the bad value: $out"

# allow (the default): the destroy goes through and is audited
conf "audit_log = $audit"
p11 -l --pin "$TM_USER_PIN" --delete-object --type cert --id 01 >/dev/null ||
    tm_fail "destroying the certificate failed under allow"
grep -q '"op":"destroy","outcome":"destroyed","detail":"certificate (serial .*, bound to this token), CKA_ID 01' "$audit" ||
    tm_fail "the certificate's destroy is not audited: $(tail -2 "$audit")"
p11 -O --type cert | tm_grepq "Certificate Object" && tm_fail "certificate still there"
echo PASS
