#!/usr/bin/env bash
# PINs: a wrong PIN is sent to each token exactly once (the module's audit
# log counts the logins) and never retried; with a station secret the tool
# logs in through the protected path (derived PIN, claim 5) and needs no PIN.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh" # tm_slot_of_serial
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
tm_module_conf

# A wrong PIN (issue 10, item 5): the first token to refuse it is the only
# one that loses a try; the others are "not tried: PIN refused by token X".
# Not hex digits: the record is hex (serial, salt, hash), so the PIN can only
# be found in it if it was written there.
echo wrong-pin-xyz >"$TM_TMP/wrongpin"
chmod 600 "$TM_TMP/wrongpin"
failed_logins() { grep -c "\"serial\":\"$1\",\"op\":\"login\",\"outcome\":\"failed\"" "$audit" || true; }
set +e
out=$("$T" issue --all --ca "$CA" --pin-source "$TM_TMP/wrongpin" --json 2>&1)
rc=$?
set -e
[ "$rc" -eq 1 ] || tm_fail "a wrong PIN should exit 1 (tokens failed), got $rc"
[ "$(grep -c '"step":4' <<<"$out")" -eq 3 ] || tm_fail "every token should fail at step 4: $out"
[ "$(grep -c "wrong PIN (tried once; not retried)" <<<"$out")" -eq 1 ] ||
    tm_fail "exactly one token should have been tried: $out"
first=""
for s in "${TM_SERIALS[@]}"; do
    n=$(failed_logins "$s")
    [ "$n" -le 1 ] || tm_fail "token $s: $n failed logins, want at most 1"
    [ "$n" -eq 1 ] && { [ -z "$first" ] || tm_fail "two tokens were sent the wrong PIN"; first=$s; }
done
[ -n "$first" ] || tm_fail "no token logged the refused login"
[ "$(grep -c "not tried: PIN refused by token $first" <<<"$out")" -eq 2 ] ||
    tm_fail "the other two should say 'not tried: PIN refused by token $first': $out"
[ ! -s "$CA/index.txt" ] || tm_fail "nothing may be issued with a wrong PIN"
grep -q 'wrong-pin-xyz' "$audit" && tm_fail "a PIN reached the audit log"

# The station's record: salted hashes only, mode 0600; the next run does not
# send the refused PIN to that token again (nor, in turn, to the others).
rec="$TOKENMINT_STATE_DIR/refused-pins"
[ "$(stat -c %a "$rec")" = 600 ] || tm_fail "the refused-PIN record should be mode 0600"
[ "$(wc -l <"$rec")" -eq 1 ] || tm_fail "one refusal recorded, got $(wc -l <"$rec")"
grep -q wrong-pin-xyz "$rec" && tm_fail "the record holds the PIN itself"
awk 'NF != 4 || $1 != "v1" || length($3) != 32 || length($4) != 64 {bad = 1} END {exit bad}' "$rec" ||
    tm_fail "record lines are 'v1 SERIAL SALT HASH'"
out=$("$T" issue --token "pkcs11:serial=$first" --ca "$CA" --pin-source "$TM_TMP/wrongpin" --json 2>&1) &&
    tm_fail "the refused PIN should not work on a re-run"
grep -q "not tried: token $first refused this PIN before" <<<"$out" || tm_fail "re-run message: $out"
[ "$(failed_logins "$first")" -eq 1 ] || tm_fail "the re-run sent the refused PIN to $first again"
chmod 644 "$rec"
tm_expect_fail "a record others can read is refused" \
    "$T" issue --all --ca "$CA" --pin-source "$PIN" 2>"$TM_TMP/rec.err"
grep -q "refused-PIN record .* mode 0600" "$TM_TMP/rec.err" || tm_fail "message: $(cat "$TM_TMP/rec.err")"
chmod 600 "$rec"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >/dev/null || tm_fail "the right PIN afterwards"

# Derived PINs: tokens moved to HMAC(secret, serial) report a protected
# authentication path; the tool logs in with a NULL PIN and asks for nothing.
tm_make_tokens 3 d
tm_station_secret
tm_module_conf "station_secret = $secret"
# C_SetPIN(factory PIN, NULL) through the module switches a token and marks it
# (only marked tokens report the protected path, issue 10 item 6)
for s in "${TM_SERIALS[@]}"; do
    "$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" set-derived "$s" "$TM_USER_PIN" |
        tm_grepq "set ok" || tm_fail "moving $s to its derived PIN"
done
"$T" ca init "$TM_TMP/ca2" >/dev/null
"$T" issue --all --ca "$TM_TMP/ca2" </dev/null >"$TM_TMP/d.out" ||
    { cat "$TM_TMP/d.out"; tm_fail "issue with derived PINs"; }
[ "$(wc -l <"$TM_TMP/ca2/index.txt")" -eq 3 ] || tm_fail "three tokens issued with derived PINs"
"$T" show "pkcs11:serial=${TM_SERIALS[0]}" | tm_grepq "derived by the module" ||
    tm_fail "show should say the PIN is derived"
echo "PASS: PINs"
