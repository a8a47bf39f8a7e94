#!/usr/bin/env bash
# A station of 64 tokens: every token gets its own slot, and on every one a
# session, a login, a key pair and a verified signature work, in one process.
# (Per-token cost at 8 vs 64 tokens: tests/bench/bench_station.c.)
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"

tm_make_tokens 64
[ "${#TM_SERIALS[@]}" -eq 64 ] || tm_fail "expected 64 tokens, made ${#TM_SERIALS[@]}"
export TOKENMINT_BACKEND="$TM_SOFTHSM_MODULE"

out=$("$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" station "$TM_USER_PIN") ||
    tm_fail "station run failed: $out"
grep -qx "station 64" <<<"$out" || tm_fail "not every token signed: $(tail -3 <<<"$out")"
for s in "${TM_SERIALS[@]}"; do
    grep -q "^signed $s slot " <<<"$out" || tm_fail "token $s did not sign"
done
[ "$(awk '/^signed/{print $4}' <<<"$out" | sort -u | wc -l)" -eq 64 ] || tm_fail "slot IDs collide"

# and a stock client sees all 64
[ "$(pkcs11-tool --module "$TM_MODULE" -L | grep -c 'token label *: tm-')" -eq 64 ] ||
    tm_fail "pkcs11-tool does not list 64 tokens"
echo PASS
