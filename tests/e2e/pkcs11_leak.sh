#!/usr/bin/env bash
# 100 cycles of C_Initialize / C_Finalize with sessions open (and a login) on
# every token, under valgrind: no definite leak, no memory error.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
command -v valgrind >/dev/null || tm_fail "valgrind is not installed"

tm_make_tokens 3
head -c 32 /dev/urandom >"$TM_TMP/station.secret"
chmod 600 "$TM_TMP/station.secret"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm
audit_log = $TM_TMP/audit.jsonl
station_secret = $TM_TMP/station.secret
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF

client="$TM_BUILD_DIR/tests/tm-pkcs11-client"
out=$(valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
    "$client" "$TM_MODULE" cycles 100 "$TM_USER_PIN" 2>&1) || tm_fail "valgrind: $out"
grep -q "cycles 100" <<<"$out" || tm_fail "the cycles did not complete: $out"
# every cycle logged in once: the module was really initialised each time
[ "$(grep -c '"op":"login","outcome":"ok"' "$TM_TMP/audit.jsonl")" -eq 100 ] ||
    tm_fail "expected 100 logins in the audit log"
echo PASS
