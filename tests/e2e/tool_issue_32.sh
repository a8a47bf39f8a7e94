#!/usr/bin/env bash
# End to end on 32 tokens: every token issued, `verify --all` clean, stock
# `openssl verify` accepts each certificate against the root; a second run
# issues nothing twice; --json lines parse.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 32
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null

"$T" issue --all --ca "$CA" --pin-source "$PIN" --json >"$TM_TMP/issue.json" ||
    { cat "$TM_TMP/issue.json"; tm_fail "issue --all failed"; }
[ "$("$TJ" check <"$TM_TMP/issue.json")" -eq 32 ] || tm_fail "issue --json: one JSON object per token"
[ "$("$TJ" get result <"$TM_TMP/issue.json" | sort -u)" = issued ] || tm_fail "every token issued"
[ "$("$TJ" get serial <"$TM_TMP/issue.json" | sort -u | wc -l)" -eq 32 ] || tm_fail "32 serials"

[ "$(wc -l <"$CA/index.txt")" -eq 32 ] || tm_fail "index.txt should hold 32 certificates"
for s in "${TM_SERIALS[@]}"; do
    grep -q "/serialNumber=$s\$" "$CA/index.txt" || tm_fail "no certificate for token $s"
done
for f in "$CA"/newcerts/*.pem; do
    openssl verify -CAfile "$CA/ca.pem" "$f" >/dev/null || tm_fail "openssl verify rejects $f"
done
# The certificate is really on the token, as stock tools see it.
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0007 -O 2>/dev/null |
    tm_grepq 'Certificate Object' || tm_fail "pkcs11-tool sees no certificate on tm-0007"

"$T" verify --all --ca "$CA" >"$TM_TMP/verify.txt" || tm_fail "verify --all not clean"
[ "$(grep -c '^OK' "$TM_TMP/verify.txt")" -eq 32 ] || tm_fail "verify should pass 32 certificates"
"$T" verify --all --ca "$CA" --json >"$TM_TMP/verify.json" || tm_fail "verify --json"
[ "$("$TJ" check <"$TM_TMP/verify.json")" -eq 32 ] || tm_fail "verify --json: 32 objects"
[ "$("$TJ" get ok <"$TM_TMP/verify.json" | sort -u)" = true ] || tm_fail "verify --json: all ok"

# Re-running is safe: every token is done, nothing new is issued.
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/again.txt" || tm_fail "re-run failed"
grep -q "already done *32" "$TM_TMP/again.txt" || { cat "$TM_TMP/again.txt"; tm_fail "re-run should find 32 done"; }
[ "$(wc -l <"$CA/index.txt")" -eq 32 ] || tm_fail "re-run issued again"

"$T" tokens --json >"$TM_TMP/tokens.json" || tm_fail "tokens --json"
"$TJ" check <"$TM_TMP/tokens.json" >/dev/null || tm_fail "tokens --json does not parse"
[ "$("$TJ" get state <"$TM_TMP/tokens.json" | grep -cx issued)" -eq 32 ] ||
    tm_fail "tokens --json should show 32 issued tokens"
tool_check_invariants "$CA"
echo "PASS: 32 tokens issued and verified"
