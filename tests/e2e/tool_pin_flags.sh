#!/usr/bin/env bash
# CKF_USER_PIN_FINAL_TRY and CKF_USER_PIN_COUNT_LOW (issue 10, item 5).
# SoftHSM2 never reports a final try, so the test shim adds the flags to
# chosen tokens. The module's audit log counts the logins each token got.
# - a token on its final try is not sent the PIN (the others are issued),
#   unless --allow-final-try says so;
# - a wrong PIN is never tried first on a count-low token: a healthy token
#   refuses it, the count-low one is "not tried".
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"
tm_make_tokens 3 >/dev/null
tm_shim_setup f "$TM_SOFTHSM_MODULE" "$SOFTHSM2_CONF"
audit="$TM_TMP/audit.jsonl"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
unset TOKENMINT_BACKEND
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = shim
audit_log = $audit
[backend_shim]
module = $TM_SHIM_MODULE
CONF
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
logins() { grep -c "\"serial\":\"$1\",\"op\":\"login\"" "$audit" || true; }
failed() { grep -c "\"serial\":\"$1\",\"op\":\"login\",\"outcome\":\"failed\"" "$audit" || true; }
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]} S2=${TM_SERIALS[2]}

# Final try: not spent unasked.
tm_shim_flags "$S1" CKF_USER_PIN_FINAL_TRY
tm_expect_fail "a token on its final try fails (exit 1)" \
    "$T" issue --all --ca "$CA" --pin-source "$PIN" --json >"$TM_TMP/1.json" 2>&1
grep -q "\"serial\":\"$S1\".*not tried: the token's next wrong PIN locks it" "$TM_TMP/1.json" ||
    { cat "$TM_TMP/1.json"; tm_fail "the final-try token should be 'not tried'"; }
[ "$(logins "$S1")" -eq 0 ] || tm_fail "the final-try token got a login"
[ "$(grep -c '"result":"issued"' "$TM_TMP/1.json")" -eq 2 ] || tm_fail "the other two are issued"
"$T" issue --all --ca "$CA" --pin-source "$PIN" --allow-final-try --json >"$TM_TMP/2.json" ||
    { cat "$TM_TMP/2.json"; tm_fail "--allow-final-try should log in"; }
[ "$(logins "$S1")" -eq 1 ] || tm_fail "--allow-final-try: one login for the final-try token"
tm_shim_flags "$S1"

# Count low: a PIN nobody has accepted yet goes to a healthy token first.
tm_make_tokens 3 b >/dev/null
tm_shim_setup g "$TM_SOFTHSM_MODULE" "$SOFTHSM2_CONF"
sed -i "s|^module = .*|module = $TM_SHIM_MODULE|" "$TOKENMINT_CONF"
"$T" ca init "$TM_TMP/ca2" >/dev/null
S0=${TM_SERIALS[0]}
tm_shim_flags "$S0" CKF_USER_PIN_COUNT_LOW
echo 0000 >"$TM_TMP/wrongpin"
chmod 600 "$TM_TMP/wrongpin"
tm_expect_fail "a wrong PIN fails" \
    "$T" issue --all --ca "$TM_TMP/ca2" --pin-source "$TM_TMP/wrongpin" --json >"$TM_TMP/3.json" 2>&1
[ "$(failed "$S0")" -eq 0 ] ||
    { cat "$TM_TMP/3.json"; tm_fail "the count-low token was sent an untested PIN"; }
grep -q "\"serial\":\"$S0\".*not tried: PIN refused by token" "$TM_TMP/3.json" ||
    { cat "$TM_TMP/3.json"; tm_fail "the count-low token should be 'not tried'"; }
"$T" issue --all --ca "$TM_TMP/ca2" --pin-source "$PIN" --json >"$TM_TMP/4.json" ||
    { cat "$TM_TMP/4.json"; tm_fail "the right PIN: every token, the count-low one after a healthy one"; }
echo "PASS: final try and count-low tokens"
