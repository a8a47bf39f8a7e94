#!/usr/bin/env bash
# Issue 12, selective renewal: 32 tokens, half of them certified under a
# short-validity profile (5 days), the other half under the normal one.
# `renew --within 10` renews exactly the short half: each gets a new
# certificate for its same key pair, its old certificate is superseded at the
# CA, the others are left alone; a re-run renews nothing. `--rekey` renews
# with a new key pair. Then a revoked certificate: `issue` reports it as
# needing renewal (exit 1), `renew --within 0` renews it, always with a new
# key pair, and nothing else. Every token ends with one valid certificate at
# the CA.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 32
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
sed 's/^validity_days = .*/validity_days = 5/' "$TM_SOURCE_DIR/conf/profile.cnf" >"$TM_TMP/short.cnf"
grep -qx 'validity_days = 5' "$TM_TMP/short.cnf" || tm_fail "the short profile has no validity_days = 5"

short=() long=()
for i in "${!TM_SERIALS[@]}"; do
    if [ $((i % 2)) -eq 0 ]; then short+=("${TM_SERIALS[$i]}"); else long+=("${TM_SERIALS[$i]}"); fi
done
args=()
for s in "${short[@]}"; do args+=(--token "pkcs11:serial=$s"); done
"$T" issue "${args[@]}" --ca "$CA" --profile "$TM_TMP/short.cnf" --pin-source "$PIN" >"$TM_TMP/issue1.txt" ||
    { cat "$TM_TMP/issue1.txt"; tm_fail "issue (short profile) failed"; }
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue2.txt" ||
    { cat "$TM_TMP/issue2.txt"; tm_fail "issue (normal profile) failed"; }
grep -q "issued (new certificate) *16" "$TM_TMP/issue2.txt" || tm_fail "the second issue should certify the other 16"

# valid certificates per token at the CA: exactly one each, 32 tokens
one_valid_each() {
    "$T" ca list "$CA" --status valid >"$TM_TMP/valid.tsv" || tm_fail "ca list failed"
    [ "$(cut -f3 "$TM_TMP/valid.tsv" | sort -u | wc -l)" -eq 32 ] || tm_fail "$1: not every token has a valid certificate"
    [ "$(cut -f3 "$TM_TMP/valid.tsv" | sort | uniq -d)" = "" ] || tm_fail "$1: a token has two valid certificates"
}
one_valid_each "before renew"
"$T" ca list "$CA" >"$TM_TMP/before.tsv"

"$T" renew --all --ca "$CA" --within 10 --pin-source "$PIN" --json >"$TM_TMP/renew.json" ||
    { cat "$TM_TMP/renew.json"; tm_fail "renew --within 10 failed"; }
[ "$("$TJ" check <"$TM_TMP/renew.json")" -eq 32 ] || tm_fail "renew --json: one object per token"
paste <("$TJ" get serial <"$TM_TMP/renew.json") <("$TJ" get result <"$TM_TMP/renew.json") \
    <("$TJ" get key_generated <"$TM_TMP/renew.json") <("$TJ" get key_reused <"$TM_TMP/renew.json") |
    sort >"$TM_TMP/renewed.tsv"
for s in "${short[@]}"; do
    grep -qx "$s	issued	false	true" "$TM_TMP/renewed.tsv" || { cat "$TM_TMP/renewed.tsv"; tm_fail "token $s (5-day certificate) was not renewed on its same key pair"; }
done
for s in "${long[@]}"; do
    grep -qx "$s	done	false	false" "$TM_TMP/renewed.tsv" || { cat "$TM_TMP/renewed.tsv"; tm_fail "token $s (10-year certificate) should be left alone"; }
done
one_valid_each "after renew"
"$T" ca list "$CA" --status superseded >"$TM_TMP/superseded.tsv"
[ "$(wc -l <"$TM_TMP/superseded.tsv")" -eq 16 ] || tm_fail "16 old certificates should be superseded"
for s in "${short[@]}"; do
    old=$(awk -F'\t' -v t="$s" '$3 == t {print $1}' "$TM_TMP/before.tsv")
    awk -F'\t' -v o="$old" '$1 == o' "$TM_TMP/superseded.tsv" | tm_grepq . ||
        tm_fail "token $s: its old certificate $old is not the superseded one"
    # the new certificate is the normal profile's (ten years), on the same key
    new=$(awk -F'\t' -v t="$s" '$3 == t {print $1}' "$TM_TMP/valid.tsv")
    openssl x509 -in "$CA/newcerts/$new.pem" -noout -checkend $((400 * 86400)) >/dev/null ||
        tm_fail "token $s: the renewed certificate should not expire within 400 days"
    [ "$(openssl x509 -in "$CA/newcerts/$new.pem" -noout -pubkey)" = "$(openssl x509 -in "$CA/newcerts/$old.pem" -noout -pubkey)" ] ||
        tm_fail "token $s: a renewal without --rekey keeps the key"
done
[ "$(cut -f1 "$TM_TMP/superseded.tsv" | sort)" = "$(awk -F'\t' 'NR==FNR {s[$1]; next} ($3 in s) {print $1}' \
    <(printf '%s\n' "${short[@]}") "$TM_TMP/before.tsv" | sort)" ] || tm_fail "superseded: exactly the short half's old certificates"
tool_check_invariants "$CA"

"$T" renew --all --ca "$CA" --within 10 --pin-source "$PIN" >"$TM_TMP/again.txt" ||
    { cat "$TM_TMP/again.txt"; tm_fail "renew re-run failed"; }
grep -q "already done *32" "$TM_TMP/again.txt" || { cat "$TM_TMP/again.txt"; tm_fail "a re-run should renew nothing"; }

# --rekey: a new key pair although the certificate is good
k=${long[5]}
oldk=$(awk -F'\t' -v t="$k" '$3 == t {print $1}' "$TM_TMP/valid.tsv")
"$T" renew --token "pkcs11:serial=$k" --ca "$CA" --within 4000 --rekey --pin-source "$PIN" --json >"$TM_TMP/rekey.json" ||
    { cat "$TM_TMP/rekey.json"; tm_fail "renew --rekey failed"; }
paste <("$TJ" get result <"$TM_TMP/rekey.json") <("$TJ" get key_generated <"$TM_TMP/rekey.json") |
    tm_grepq -x "issued	true" || { cat "$TM_TMP/rekey.json"; tm_fail "renew --rekey should make a new key pair"; }
"$T" ca list "$CA" --status superseded | awk -F'\t' -v o="$oldk" '$1 == o' | tm_grepq . ||
    tm_fail "renew --rekey: the old certificate $oldk is superseded"
one_valid_each "after --rekey"

# A revoked certificate: issue says it needs renewal and points to renew.
r=${long[3]}
"$T" revoke --token "pkcs11:serial=$r" --ca "$CA" --reason keyCompromise >/dev/null || tm_fail "revoke failed"
rc=0
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue3.txt" || rc=$?
[ "$rc" -eq 1 ] || { cat "$TM_TMP/issue3.txt"; tm_fail "issue over a revoked certificate: exit $rc, want 1"; }
grep -q "^RENEW  *$r .*revoked.*tokenmint renew --token pkcs11:serial=$r" "$TM_TMP/issue3.txt" ||
    { cat "$TM_TMP/issue3.txt"; tm_fail "issue does not report the revoked certificate as needing renewal"; }
grep -q "already done *31" "$TM_TMP/issue3.txt" || tm_fail "issue: the 31 others are done"
"$T" renew --all --ca "$CA" --within 0 --pin-source "$PIN" --json >"$TM_TMP/renew2.json" ||
    { cat "$TM_TMP/renew2.json"; tm_fail "renew after revoke failed"; }
[ "$("$TJ" get result <"$TM_TMP/renew2.json" | grep -c issued)" -eq 1 ] || tm_fail "exactly one token renewed after the revocation"
paste <("$TJ" get serial <"$TM_TMP/renew2.json") <("$TJ" get result <"$TM_TMP/renew2.json") \
    <("$TJ" get key_generated <"$TM_TMP/renew2.json") |
    tm_grepq -x "$r	issued	true" || tm_fail "the revoked token was not the one renewed, with a new key pair"
one_valid_each "after renewing the revoked one"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue4.txt" || { cat "$TM_TMP/issue4.txt"; tm_fail "issue after renew should find every token done"; }
# the revoked certificate stays on the token (no --retire-old) and verify
# still says so; its successor verifies
rc=0
"$T" verify --token "pkcs11:serial=$r" --ca "$CA" >"$TM_TMP/verify_r.txt" || rc=$?
[ "$rc" -eq 1 ] || { cat "$TM_TMP/verify_r.txt"; tm_fail "verify of the token with a revoked certificate: exit $rc, want 1"; }
[ "$(grep -c '^REVOKED' "$TM_TMP/verify_r.txt")" -eq 1 ] && [ "$(grep -c '^OK' "$TM_TMP/verify_r.txt")" -eq 1 ] ||
    { cat "$TM_TMP/verify_r.txt"; tm_fail "verify: the old certificate REVOKED, the new one OK"; }
echo "PASS: renew --within renewed the 16 expiring tokens and no other; a revoked one needed renewal"
