#!/bin/bash
# The test shim through a stock client: a hidden token disappears from the
# slot list and comes back, an injected failure reaches the client with its
# code, and added latency is visible.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"

tm_make_tokens 2
s1=${TM_SERIALS[0]} s2=${TM_SERIALS[1]}
tm_shim_setup a "$TM_SOFTHSM_MODULE" "$SOFTHSM2_CONF"

# Serials of the tokens present (pkcs11-tool -L prints tokens only for slots
# with CKF_TOKEN_PRESENT).
serials() { pkcs11-tool --module "$TM_SHIM_MODULE" -L | awk -F': *' '/serial num/{print $2}'; }

out=$(serials)
grep -qx "$s1" <<<"$out" || tm_fail "token $s1 not listed through the shim: $out"
grep -qx "$s2" <<<"$out" || tm_fail "token $s2 not listed through the shim: $out"

tm_shim_hide "$s1"
out=$(serials)
grep -qx "$s1" <<<"$out" && tm_fail "hidden token $s1 still listed"
grep -qx "$s2" <<<"$out" || tm_fail "token $s2 vanished with $s1"
# the hidden token cannot be used either
tm_expect_fail "login on a hidden token" \
    pkcs11-tool --module "$TM_SHIM_MODULE" --token-label tm-0001 --login --pin "$TM_USER_PIN" -O

tm_shim_show "$s1"
out=$(serials)
grep -qx "$s1" <<<"$out" || tm_fail "token $s1 not back after show"

# the 1st C_Login from process start fails with the chosen code, and the
# client reports exactly that code
tm_shim_fail C_Login 1 CKR_DEVICE_REMOVED
if out=$(pkcs11-tool --module "$TM_SHIM_MODULE" --token-label tm-0002 --login \
    --pin "$TM_USER_PIN" -O 2>&1); then
    tm_fail "login succeeded despite the injected failure"
fi
grep -q CKR_DEVICE_REMOVED <<<"$out" || tm_fail "expected CKR_DEVICE_REMOVED, got: $out"
# numeric codes work too (0xa0 = CKR_PIN_INCORRECT)
tm_shim_fail C_Login 1 0xa0
out=$(pkcs11-tool --module "$TM_SHIM_MODULE" --token-label tm-0002 --login \
    --pin "$TM_USER_PIN" -O 2>&1) && tm_fail "login succeeded despite the injected 0xa0"
grep -q CKR_PIN_INCORRECT <<<"$out" || tm_fail "expected CKR_PIN_INCORRECT, got: $out"
# N counts calls per process and per function: with N=2 a process's first
# C_GenerateRandom still passes
tm_shim_clear
tm_shim_fail C_GenerateRandom 2 CKR_DEVICE_ERROR
pkcs11-tool --module "$TM_SHIM_MODULE" --token-label tm-0002 --generate-random 8 >/dev/null ||
    tm_fail "first C_GenerateRandom failed"
tm_shim_clear
pkcs11-tool --module "$TM_SHIM_MODULE" --token-label tm-0002 --login --pin "$TM_USER_PIN" -O \
    >/dev/null || tm_fail "login fails after clearing the failure rules"

# latency: -L makes at least one C_GetTokenInfo per token, so with 400 ms
# each the run cannot take less than 2 x 400 ms. Only a lower bound, which a
# slow machine cannot break (sleeps never end early).
ms() { date +%s%3N; }
tm_shim_latency C_GetTokenInfo 400
t0=$(ms)
pkcs11-tool --module "$TM_SHIM_MODULE" -L >/dev/null
slow=$(($(ms) - t0))
[ "$slow" -ge 800 ] || tm_fail "latency not applied: -L took ${slow} ms, expected >= 800"
tm_shim_latency C_GetTokenInfo 0
[ ! -s "$TM_SHIM_CTL/latency" ] || tm_fail "latency 0 did not remove the rule"

echo "shim_basic: ok"
