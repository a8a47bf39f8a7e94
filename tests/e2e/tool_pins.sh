#!/usr/bin/env bash
# PINs: a wrong PIN is sent to each token exactly once (the module's audit
# log counts the logins) and never retried; with a station secret the tool
# logs in through the protected path (derived PIN, claim 5) and needs no PIN.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh" # tm_slot_of_serial
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
audit="$TM_TMP/audit.jsonl"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
unset TOKENMINT_BACKEND
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm
audit_log = $audit
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF

echo 0000 >"$TM_TMP/wrongpin"
set +e
out=$("$T" issue --all --ca "$CA" --pin-source "$TM_TMP/wrongpin" --json 2>&1)
rc=$?
set -e
[ "$rc" -eq 1 ] || tm_fail "a wrong PIN should exit 1 (tokens failed), got $rc"
[ "$(grep -c '"step":4' <<<"$out")" -eq 3 ] || tm_fail "every token should fail at step 4: $out"
grep -q "wrong PIN (tried once; not retried)" <<<"$out" || tm_fail "message: $out"
for s in "${TM_SERIALS[@]}"; do
    n=$(grep -c "\"serial\":\"$s\",\"op\":\"login\",\"outcome\":\"failed\"" "$audit" || true)
    [ "$n" -eq 1 ] || tm_fail "token $s: $n failed logins, want exactly 1"
done
[ ! -s "$CA/index.txt" ] || tm_fail "nothing may be issued with a wrong PIN"
grep -q '"0000"' "$audit" && tm_fail "a PIN reached the audit log"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >/dev/null || tm_fail "the right PIN afterwards"

# Derived PINs: tokens moved to HMAC(secret, serial) report a protected
# authentication path; the tool logs in with a NULL PIN and asks for nothing.
tm_make_tokens 3 d
secret="$TM_TMP/station.secret"
head -c 32 /dev/urandom >"$secret"
chmod 600 "$secret"
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm
audit_log = $audit
station_secret = $secret
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
# C_SetPIN(factory PIN, NULL) through the module switches a token and marks it
# (only marked tokens report the protected path, issue 10 item 6)
for s in "${TM_SERIALS[@]}"; do
    "$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" set-derived "$s" "$TM_USER_PIN" |
        grep -q "set ok" || tm_fail "moving $s to its derived PIN"
done
"$T" ca init "$TM_TMP/ca2" >/dev/null
"$T" issue --all --ca "$TM_TMP/ca2" </dev/null >"$TM_TMP/d.out" ||
    { cat "$TM_TMP/d.out"; tm_fail "issue with derived PINs"; }
[ "$(wc -l <"$TM_TMP/ca2/index.txt")" -eq 3 ] || tm_fail "three tokens issued with derived PINs"
"$T" show "pkcs11:serial=${TM_SERIALS[0]}" | grep -q "derived by the module" ||
    tm_fail "show should say the PIN is derived"
echo "PASS: PINs"
