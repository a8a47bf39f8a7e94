#!/usr/bin/env bash
# Derived PINs (issue 10, item 6, the tool's side): `tokenmint pin derive`
# switches the named tokens from their factory PIN to the module's derived
# PIN; `tokens` and `show` say which PIN each token takes; `issue` then
# needs the factory PIN only for the tokens not switched, and no token loses
# a try to a PIN it does not take (the module's audit log counts them).
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 3 >/dev/null
tm_station_secret
tm_module_conf "station_secret = $secret"
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]} S2=${TM_SERIALS[2]}
failed() { grep -c "\"serial\":\"$1\",\"op\":\"login\",\"outcome\":\"failed\"" "$audit" || true; }
pin_of() { "$T" tokens --json | grep "\"serial\":\"$1\"" | grep -o '"pin":"[a-z]*"'; }

# Nothing switched yet: every token takes the user PIN, and says so.
for s in "$S0" "$S1" "$S2"; do
    [ "$(pin_of "$s")" = '"pin":"user"' ] || tm_fail "token $s is not switched yet: $(pin_of "$s")"
done
"$T" show "pkcs11:serial=$S0" | tm_grepq "PIN *entered by the operator" ||
    tm_fail "show: a token not switched takes the entered PIN"

# A wrong factory PIN switches nothing and costs one token one try.
echo 0000 >"$TM_TMP/wrong"
chmod 600 "$TM_TMP/wrong"
tm_expect_fail "a wrong factory PIN" "$T" pin derive --token "pkcs11:serial=$S0" --pin-source "$TM_TMP/wrong"
[ "$(pin_of "$S0")" = '"pin":"user"' ] || tm_fail "a wrong factory PIN must not switch the token"

# Switch one token.
"$T" pin derive --token "pkcs11:serial=$S0" --pin-source "$PIN" >"$TM_TMP/d.out" ||
    { cat "$TM_TMP/d.out"; tm_fail "pin derive failed"; }
grep -q "$S0 .*switched to its derived PIN" "$TM_TMP/d.out" || tm_fail "pin derive output: $(cat "$TM_TMP/d.out")"
[ "$(pin_of "$S0")" = '"pin":"derived"' ] || tm_fail "token $S0 should take its derived PIN"
[ "$(pin_of "$S1")" = '"pin":"user"' ] || tm_fail "token $S1 is not switched"
"$T" show "pkcs11:serial=$S0" | tm_grepq "PIN *derived by the module" || tm_fail "show: derived"
"$T" show "pkcs11:serial=$S1" | tm_grepq "PIN *entered by the operator" || tm_fail "show: entered"
# Again: left alone, no try spent.
"$T" pin derive --all --pin-source "$PIN" --token "pkcs11:serial=$S0" >"$TM_TMP/d2.out" ||
    tm_fail "pin derive again"
grep -q "already takes its derived PIN" "$TM_TMP/d2.out" || tm_fail "second derive: $(cat "$TM_TMP/d2.out")"

# issue: the switched token by its derived PIN, the others by the factory PIN;
# no token refuses a login.
before=$(grep -c '"outcome":"failed"' "$audit" || true)
"$T" ca init "$TM_TMP/ca" >/dev/null
"$T" issue --all --ca "$TM_TMP/ca" --pin-source "$PIN" --json >"$TM_TMP/i.json" ||
    { cat "$TM_TMP/i.json"; tm_fail "issue over switched and unswitched tokens"; }
[ "$(grep -c '"result":"issued"' "$TM_TMP/i.json")" -eq 3 ] || tm_fail "three issued"
for s in "$S1" "$S2"; do [ "$(failed "$s")" -eq 0 ] || tm_fail "token $s was sent a PIN it does not take"; done
[ "$(grep -c '"op":"login","outcome":"failed"' "$audit" || true)" -le "$before" ] ||
    tm_fail "a login failed during issue"

# --all switches the rest.
"$T" pin derive --all --pin-source "$PIN" >/dev/null || tm_fail "pin derive --all"
for s in "$S0" "$S1" "$S2"; do
    [ "$(pin_of "$s")" = '"pin":"derived"' ] || tm_fail "token $s should be switched"
done
echo "PASS: pin derive"
