#!/usr/bin/env bash
# Derived PINs: with a station secret, tokens report a protected
# authentication path; C_SetPIN(factory PIN, NULL) moves a token to its
# derived PIN; from then on C_Login with a NULL PIN works (also from
# pkcs11-tool, which sends NULL for a protected path) and the factory PIN no
# longer does. A wrong PIN is tried once. A secret file others can read stops
# the module.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"

tm_make_tokens 2
s1=${TM_SERIALS[0]} s2=${TM_SERIALS[1]}
secret="$TM_TMP/station.secret"
head -c 32 /dev/urandom >"$secret"
chmod 600 "$secret"
audit="$TM_TMP/audit.jsonl"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm
audit_log = $audit
station_secret = $secret
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
client() { "$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" "$@"; }

client flags "$s1" | grep -q "protected-path yes" || tm_fail "no CKF_PROTECTED_AUTHENTICATION_PATH"

# still on its factory PIN: the derived PIN is wrong, tried exactly once
out=$(client login-null "$s1") && tm_fail "derived PIN accepted before it was set"
grep -q "rv 0xa0" <<<"$out" || tm_fail "expected CKR_PIN_INCORRECT, got: $out"
[ "$(grep -c "\"serial\":\"$s1\",\"op\":\"login\",\"outcome\":\"failed\"" "$audit")" -eq 1 ] ||
    tm_fail "one failed login expected in the audit log"

# factory PIN -> derived PIN
client set-derived "$s1" "$TM_USER_PIN" | grep -q "set ok" || tm_fail "C_SetPIN to the derived PIN failed"
grep -q "\"serial\":\"$s1\",\"op\":\"set-pin\",\"outcome\":\"ok\"" "$audit" || tm_fail "PIN change not audited"
client login-null "$s1" | grep -q "login ok" || tm_fail "login with the derived PIN failed"

slot1=$(tm_slot_of_serial "$s1")
tm_expect_fail "the factory PIN after the change" \
    pkcs11-tool --module "$TM_MODULE" --slot "$slot1" -l --pin "$TM_USER_PIN" -O
# pkcs11-tool logs in with a NULL PIN on a protected path: the derived PIN
pkcs11-tool --module "$TM_MODULE" --slot "$slot1" -l --keypairgen --key-type EC:prime256v1 \
    --id 07 >/dev/null || tm_fail "pkcs11-tool could not log in through the protected path"

# the other token was not touched
slot2=$(tm_slot_of_serial "$s2")
pkcs11-tool --module "$TM_MODULE" --slot "$slot2" -l --pin "$TM_USER_PIN" -O >/dev/null ||
    tm_fail "token $s2 lost its PIN"

# a stock client can do the same: --change-pin with only the factory PIN
pkcs11-tool --module "$TM_MODULE" --slot "$slot2" --change-pin --pin "$TM_USER_PIN" </dev/null \
    >/dev/null || tm_fail "pkcs11-tool --change-pin to the derived PIN failed"
client login-null "$s2" | grep -q "login ok" || tm_fail "token $s2 not on its derived PIN"

grep -qF "\"$TM_USER_PIN\"" "$audit" && tm_fail "a PIN reached the audit log"

# a secret others can read: the module refuses to start, and says why
chmod 644 "$secret"
out=$(TOKENMINT_DEBUG=1 pkcs11-tool --module "$TM_MODULE" -L 2>&1) && tm_fail "started with a 0644 secret"
grep -q "station_secret" <<<"$out" || tm_fail "no reason given: $out"
tail -1 "$audit" | grep -q '"op":"config","outcome":"error".*station_secret' ||
    tm_fail "the refusal is not in the audit log"
echo PASS
