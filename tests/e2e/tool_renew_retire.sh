#!/usr/bin/env bash
# Issue 12, renew --retire-old: 6 tokens with 5-day certificates.
# `renew --rekey --within 10` without it keeps the old certificate and key pair on the
# token (two certificates, two key pairs). `renew --retire-old` after that
# removes them (the old certificate and its key pair; the new ones stay and
# verify), each removal audited by the tool; a re-run has nothing left to do.
# A token renewed with --retire-old in one go holds one certificate and one key
# pair. A same-key renewal (the default) leaves two certificates on one key
# pair; retiring removes the old certificate and keeps the key pair.
# On the old code --retire-old was an unknown option (exit 2).
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 6
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
sed 's/^validity_days = .*/validity_days = 5/' "$TM_SOURCE_DIR/conf/profile.cnf" >"$TM_TMP/short.cnf"
"$T" issue --all --ca "$CA" --profile "$TM_TMP/short.cnf" --pin-source "$PIN" >"$TM_TMP/issue.txt" ||
    { cat "$TM_TMP/issue.txt"; tm_fail "issue (short profile)"; }
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]} S2=${TM_SERIALS[2]} S3=${TM_SERIALS[3]}
S4=${TM_SERIALS[4]} S5=${TM_SERIALS[5]}
counts() { # serial -> "certificates keys"
    "$T" tokens --json >"$TM_TMP/tokens.json" || tm_fail "tokens --json"
    paste <("$TJ" get serial <"$TM_TMP/tokens.json") <("$TJ" get certificates <"$TM_TMP/tokens.json") \
        <("$TJ" get key_pairs <"$TM_TMP/tokens.json") | awk -F'\t' -v s="$1" '$1 == s {print $2, $3}'
}
[ "$(counts "$S0")" = "1 1" ] || { "$T" tokens; tm_fail "token $S0 starts with one certificate and one key pair"; }
audit="$TM_TMP/audit.log"
export TOKENMINT_TOOL_CONF="$TM_TMP/tool.conf"
printf '[tokenmint]\naudit = %s\n' "$audit" >"$TOKENMINT_TOOL_CONF"

# tokens 0 and 1: renewed without --retire-old, the old ones stay
"$T" renew --token "pkcs11:serial=$S0" --token "pkcs11:serial=$S1" --ca "$CA" --within 10 --rekey \
    --pin-source "$PIN" >"$TM_TMP/r1.txt" || { cat "$TM_TMP/r1.txt"; tm_fail "renew"; }
[ "$(counts "$S0")" = "2 2" ] || { "$T" tokens; tm_fail "without --retire-old the old certificate and key pair stay"; }
# then --retire-old: nothing to renew, the old ones go
"$T" renew --token "pkcs11:serial=$S0" --ca "$CA" --within 10 --retire-old \
    --pin-source "$PIN" >"$TM_TMP/r2.txt" || { cat "$TM_TMP/r2.txt"; tm_fail "renew --retire-old after a renewal"; }
grep -q "already done *1" "$TM_TMP/r2.txt" || { cat "$TM_TMP/r2.txt"; tm_fail "nothing to renew the second time"; }
[ "$(counts "$S0")" = "1 1" ] || { "$T" tokens; tm_fail "--retire-old should leave one certificate and one key pair"; }
[ "$(counts "$S1")" = "2 2" ] || { "$T" tokens; tm_fail "a token not named is left alone"; }
grep -q "retire" "$audit" || { cat "$audit"; tm_fail "retiring should be audited"; }

# tokens 2 and 3: renewed and retired in one run
"$T" renew --token "pkcs11:serial=$S2" --token "pkcs11:serial=$S3" --ca "$CA" --within 10 --rekey --retire-old \
    --pin-source "$PIN" --json >"$TM_TMP/r3.json" || { cat "$TM_TMP/r3.json"; tm_fail "renew --retire-old"; }
[ "$("$TJ" get result <"$TM_TMP/r3.json" | grep -c issued)" -eq 2 ] || { cat "$TM_TMP/r3.json"; tm_fail "both renewed"; }
for s in "$S0" "$S2" "$S3"; do
    [ "$(counts "$s")" = "1 1" ] || { "$T" tokens; tm_fail "token $s: one certificate and one key pair after --retire-old"; }
done
# what stays is the new certificate, valid at the CA and verified on the token
"$T" verify --token "pkcs11:serial=$S2" --token "pkcs11:serial=$S0" --ca "$CA" >"$TM_TMP/verify.txt" ||
    { cat "$TM_TMP/verify.txt"; tm_fail "verify after --retire-old"; }
[ "$(grep -c '^OK' "$TM_TMP/verify.txt")" -eq 2 ] || { cat "$TM_TMP/verify.txt"; tm_fail "the new certificates stay"; }
# the module's policy may refuse to destroy a bound certificate: the token
# is reported failed with the reason, its new certificate stays and verifies
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
printf '[tokenmint]\nbackends = softhsm\ndestroy_bound_certificates = refuse\n[backend_softhsm]\nmodule = %s\n' \
    "$TM_SOFTHSM_MODULE" >"$TOKENMINT_CONF"
rc=0
"$T" renew --token "pkcs11:serial=$S1" --ca "$CA" --within 10 --retire-old --pin-source "$PIN" \
    >"$TM_TMP/refused.txt" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { cat "$TM_TMP/refused.txt"; tm_fail "a refused retirement: exit $rc, want 1"; }
grep -q "destroy_bound_certificates = refuse" "$TM_TMP/refused.txt" ||
    { cat "$TM_TMP/refused.txt"; tm_fail "the refusal should name the module's policy"; }
"$T" verify --token "pkcs11:serial=$S1" --ca "$CA" >"$TM_TMP/verify1.txt" 2>&1 || true
[ "$(grep -c '^OK' "$TM_TMP/verify1.txt")" -eq 1 ] || { cat "$TM_TMP/verify1.txt"; tm_fail "the new certificate stays after a refused retirement"; }
unset TOKENMINT_CONF
# tokens 4 and 5: the same key pair renewed (the default): two certificates
# on one key pair; retiring takes the old certificate and keeps the key
"$T" renew --token "pkcs11:serial=$S4" --token "pkcs11:serial=$S5" --ca "$CA" --within 10 \
    --pin-source "$PIN" --json >"$TM_TMP/r5.json" || { cat "$TM_TMP/r5.json"; tm_fail "same-key renew"; }
[ "$("$TJ" get key_generated <"$TM_TMP/r5.json" | grep -c false)" -eq 2 ] || { cat "$TM_TMP/r5.json"; tm_fail "same-key renewal made a key pair"; }
[ "$(counts "$S4")" = "2 1" ] || { "$T" tokens; tm_fail "a same-key renewal leaves two certificates on one key pair"; }
"$T" renew --token "pkcs11:serial=$S4" --ca "$CA" --within 10 --retire-old --pin-source "$PIN" >"$TM_TMP/r6.txt" ||
    { cat "$TM_TMP/r6.txt"; tm_fail "renew --retire-old after a same-key renewal"; }
[ "$(counts "$S4")" = "1 1" ] || { "$T" tokens; tm_fail "retiring a same-key renewal's old certificate keeps the key pair"; }
"$T" verify --token "pkcs11:serial=$S4" --ca "$CA" >"$TM_TMP/verify4.txt" ||
    { cat "$TM_TMP/verify4.txt"; tm_fail "verify after retiring a same-key renewal"; }
"$T" renew --all --ca "$CA" --within 10 --retire-old --pin-source "$PIN" >"$TM_TMP/r4.txt" ||
    { cat "$TM_TMP/r4.txt"; tm_fail "renew --all --retire-old (token 1's old ones)"; }
grep -q "already done *6" "$TM_TMP/r4.txt" || { cat "$TM_TMP/r4.txt"; tm_fail "all done"; }
[ "$(counts "$S1")" = "1 1" ] || { "$T" tokens; tm_fail "token $S1's old ones retired on the --all run"; }
[ "$(counts "$S5")" = "1 1" ] || { "$T" tokens; tm_fail "token $S5's old certificate retired on the --all run"; }
[ "$(grep -c retire "$audit")" -ge 9 ] || { cat "$audit"; tm_fail "every retired certificate and key pair is audited"; }
"$T" ca list "$CA" --status superseded | wc -l | tm_grepq -x 6 || tm_fail "the six old certificates are superseded at the CA"
"$T" ca list "$CA" --status valid | wc -l | tm_grepq -x 6 || tm_fail "one valid certificate per token at the CA"
echo "PASS: renew --retire-old removes the replaced certificate and key pair, after the new ones are on the token"
