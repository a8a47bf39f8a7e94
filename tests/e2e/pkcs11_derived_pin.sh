#!/usr/bin/env bash
# Derived PINs: with a station secret, C_SetPIN(factory PIN, NULL) moves a
# token to its derived PIN and writes the module's marker on it; from then on
# the token reports a protected authentication path and C_Login with a NULL
# PIN works (also from pkcs11-tool, which sends NULL for a protected path)
# and the factory PIN no longer does. A token without a valid marker never
# gets a derived PIN. A secret file others can read stops the module.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"

tm_make_tokens 2
s1=${TM_SERIALS[0]} s2=${TM_SERIALS[1]}
tm_station_secret
tm_module_conf "station_secret = $secret"
client() { "$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" "$@"; }

# direct to SoftHSM2, bypassing the module: a failed login sets "user PIN count low"
pin_count_low() { # SERIAL
    pkcs11-tool --module "$TM_SOFTHSM_MODULE" -T 2>/dev/null |
        awk -v s="$1" '/^Slot/{f=""} /token flags/{f=$0} /serial num/{if ($NF==s) print f}' |
        tm_grepq "PIN count low"
}

# issue 10 item 6: a token still on its factory PIN takes no derived PIN. It
# does not report a protected path, and a NULL-PIN login is refused without
# calling the token: no try is spent.
client flags "$s1" | tm_grepq "protected-path no" || tm_fail "an unswitched token claims a protected path"
out=$(client login-null "$s1") && tm_fail "derived PIN accepted before it was set"
grep -q "rv 0x200" <<<"$out" || tm_fail "expected CKR_FUNCTION_REJECTED, got: $out"
pin_count_low "$s1" && tm_fail "the derived PIN was sent to a token on its factory PIN (a try lost)"
grep -q "\"serial\":\"$s1\",\"op\":\"login\",\"outcome\":\"refused\".*not on its derived PIN" "$audit" ||
    tm_fail "the refused login is not audited with its reason"
grep -q "\"serial\":\"$s1\",\"op\":\"login\",\"outcome\":\"failed\"" "$audit" &&
    tm_fail "a login reached the token"
# the reason reaches a person through syslog, without an audit log too
: >"$TM_TMP/syslog.txt"
TM_SYSLOG_FILE="$TM_TMP/syslog.txt" LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$TM_SYSLOG_CAPTURE" \
    client login-null "$s1" >/dev/null && tm_fail "second NULL login accepted"
grep -q "tokenmint-pkcs11: token $s1: login refused: .*not on its derived PIN" "$TM_TMP/syslog.txt" ||
    tm_fail "the refusal is not in syslog: $(cat "$TM_TMP/syslog.txt")"

# factory PIN -> derived PIN: the token gets the marker, and the flag
client set-derived "$s1" "$TM_USER_PIN" | tm_grepq "set ok" || tm_fail "C_SetPIN to the derived PIN failed"
grep -q "\"serial\":\"$s1\",\"op\":\"set-pin\",\"outcome\":\"ok\"" "$audit" || tm_fail "PIN change not audited"
client flags "$s1" | tm_grepq "protected-path yes" || tm_fail "a switched token reports no protected path"
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0001 -O --type data 2>/dev/null |
    tm_grepq "tokenmint derived PIN" || tm_fail "no marker object on the switched token"
client login-null "$s1" | tm_grepq "login ok" || tm_fail "login with the derived PIN failed"
# switching again would send a factory PIN the token no longer takes: refused, untried
out=$(client set-derived "$s1" "$TM_USER_PIN") && tm_fail "switched twice"
grep -q "rv 0x200" <<<"$out" || tm_fail "second switch: expected CKR_FUNCTION_REJECTED, got: $out"
pin_count_low "$s1" && tm_fail "the second switch cost a try"

# a marker copied from another token (same bytes, other serial) does not verify
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0001 --read-object --type data \
    --label "tokenmint derived PIN" -o "$TM_TMP/marker.bin" >/dev/null 2>&1 || tm_fail "cannot read the marker"
[ "$(wc -c <"$TM_TMP/marker.bin")" -eq 39 ] || tm_fail "marker is not tmpin1: + 32 bytes"
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0002 --login --pin "$TM_USER_PIN" \
    --write-object "$TM_TMP/marker.bin" --type data --label "tokenmint derived PIN" \
    --application-label tokenmint >/dev/null 2>&1 || tm_fail "could not plant a copied marker"
client flags "$s2" | tm_grepq "protected-path no" || tm_fail "a copied marker was taken as valid"
out=$(client login-null "$s2") && tm_fail "NULL login on a token with a copied marker"
pin_count_low "$s2" && tm_fail "the derived PIN was sent to a token with a copied marker"

# the other token was not touched
slot2=$(tm_slot_of_serial "$s2")
pkcs11-tool --module "$TM_MODULE" --slot "$slot2" -l --pin "$TM_USER_PIN" -O >/dev/null ||
    tm_fail "token $s2 lost its PIN"

# the switch replaces a foreign marker with ours
client set-derived "$s2" "$TM_USER_PIN" | tm_grepq "set ok" || tm_fail "switching token $s2 failed"
client login-null "$s2" | tm_grepq "login ok" || tm_fail "token $s2 not on its derived PIN"

grep -qF "\"$TM_USER_PIN\"" "$audit" && tm_fail "a PIN reached the audit log"

# a secret others can read: the module refuses to start, and says why
chmod 644 "$secret"
out=$(TOKENMINT_DEBUG=1 pkcs11-tool --module "$TM_MODULE" -L 2>&1) && tm_fail "started with a 0644 secret"
grep -q "station_secret" <<<"$out" || tm_fail "no reason given: $out"
tail -1 "$audit" | tm_grepq '"op":"config","outcome":"error".*station_secret' ||
    tm_fail "the refusal is not in the audit log"
echo PASS
