#!/usr/bin/env bash
# Issue 13, derived PINs on a tpm2-pkcs11 token: the module's derived-PIN
# marker is a public data object (read before any login), and tpm2-pkcs11 1.9
# makes data objects only private and only in a R/W user session. So
# C_SetPIN(factory PIN, NULL) cannot switch the token: it fails closed, the
# factory PIN is put back (the token is never left on a PIN nobody knows it
# is on), the audit log names the backend's reason, no marker is on the
# token, and a NULL-PIN login is refused without reaching the token.
# Skips outside CI when the TPM packages are absent; fails under CI=true.
set -euo pipefail
export TM_TOKEN_BACKEND=tpm
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"
tm_make_tokens 1
S=${TM_SERIALS[0]}
tm_station_secret
tm_module_conf "station_secret = $secret"
client() { "$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" "$@"; }

out=$(client set-derived "$S" "$TM_USER_PIN") && tm_fail "a TPM token took a derived PIN: $out"
grep -q "\"serial\":\"$S\",\"op\":\"set-pin\",\"outcome\":\"failed\",\"detail\":\"the derived-PIN marker could not be written (CKR_[A-Z_]*); the old PIN was put back\"" "$audit" ||
    tm_fail "the failed switch is not audited with the backend's reason: $(grep set-pin "$audit")"
# the factory PIN still logs in, through the module and past it
pkcs11-tool --module "$TM_MODULE" --slot "$(tm_slot_of_serial "$S")" -l --pin "$TM_USER_PIN" -O \
    >/dev/null 2>&1 || tm_fail "the token lost its factory PIN"
pkcs11-tool --module "$TM_P11_MODULE" --token-label tm-0001 -l --pin "$TM_USER_PIN" -O --type data \
    2>/dev/null | tm_grepq "tokenmint derived PIN" && tm_fail "a marker is on the token"
client flags "$S" | tm_grepq "protected-path no" || tm_fail "the token claims a protected path"
out=$(client login-null "$S") && tm_fail "a NULL-PIN login was accepted: $out"
grep -q "rv 0x200" <<<"$out" || tm_fail "NULL login: expected CKR_FUNCTION_REJECTED, got: $out"
grep -q "\"serial\":\"$S\",\"op\":\"login\",\"outcome\":\"failed\"" "$audit" &&
    tm_fail "a login with a wrong PIN reached the token"
grep -qF "\"$TM_USER_PIN\"" "$audit" && tm_fail "a PIN reached the audit log"
grep -o "marker could not be written ([A-Z_]*)" "$audit"
echo "PASS: a TPM token cannot take a derived PIN, and is left on its factory PIN"
