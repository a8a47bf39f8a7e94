#!/usr/bin/env bash
# Insert/remove events over a backend without C_WaitForSlotEvent (SoftHSM2
# behind the test shim): a process blocked in C_WaitForSlotEvent sees the
# token go and come back; both are in the audit log with the serial.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"

tm_make_tokens 2
s1=${TM_SERIALS[0]} s2=${TM_SERIALS[1]}
tm_shim_setup a "$TM_SOFTHSM_MODULE"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = shim
audit_log = $TM_TMP/audit.jsonl
[backend_shim]
module = $TM_SHIM_MODULE
CONF

client="$TM_BUILD_DIR/tests/tm-pkcs11-client"
out="$TM_TMP/events.out"
"$client" "$TM_MODULE" wait 2 >"$out" 2>&1 &
pid=$!

wait_for() { # PATTERN: up to 20 s for the client to print it
    local i
    for i in $(seq 1 200); do
        grep -q "$1" "$out" && return 0
        # the client may print its last line and exit between the two checks
        kill -0 "$pid" 2>/dev/null || { grep -q "$1" "$out" && return 0; break; }
        sleep 0.1
    done
    tm_fail "client did not print '$1': $(cat "$out")"
}

wait_for '^ready'
grep -qx no-event "$out" || tm_fail "CKF_DONT_BLOCK before any change should give CKR_NO_EVENT"
sleep 0.5 # the client is now blocked in C_WaitForSlotEvent
tm_shim_hide "$s1"
wait_for '^event [0-9]* absent'
tm_shim_show "$s1"
wait_for "^event [0-9]* present $s1"
wait "$pid" || tm_fail "client failed: $(cat "$out")"

# the token came back in a new slot; the other token was never reported
gone=$(awk '/absent/{print $2}' "$out")
back=$(awk '/present/{print $2}' "$out")
[ "$gone" != "$back" ] || tm_fail "a re-inserted token must not reuse a dead slot ID"
grep -q "$s2" "$out" && tm_fail "token $s2 did not change but was reported"

audit="$TM_TMP/audit.jsonl"
grep -q "\"serial\":\"$s1\",\"op\":\"token\",\"outcome\":\"removed\"" "$audit" ||
    tm_fail "removal not audited: $(cat "$audit")"
grep -q "\"serial\":\"$s1\",\"op\":\"token\",\"outcome\":\"inserted\"" "$audit" ||
    tm_fail "insertion not audited: $(cat "$audit")"
echo PASS
