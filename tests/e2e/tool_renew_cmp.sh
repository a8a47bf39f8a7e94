#!/usr/bin/env bash
# Issue 12, renew over CMP: `tokenmint renew --cmp URL` against `ca serve`.
# 6 tokens, 4 certified under a 5-day profile. `renew --within 10 --cmp`
# renews those 4 with a kur signed by the old certificate's key on the
# token: by default on the same key pair (the CA supersedes the old
# certificate in the insert's transaction), with --rekey on a new one; the
# other 2 are left alone. The PBMAC secret given for p10cr does not protect
# the kur (the server's access log names the kur). A re-run renews nothing.
# Every token ends with one valid certificate at the CA, verify passes, and
# no key pair is left free.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 6
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
sed 's/^validity_days = .*/validity_days = 5/' "$TM_SOURCE_DIR/conf/profile.cnf" >"$TM_TMP/short.cnf"
S=("${TM_SERIALS[@]}")
short=(--token "pkcs11:serial=${S[0]}" --token "pkcs11:serial=${S[1]}"
    --token "pkcs11:serial=${S[2]}" --token "pkcs11:serial=${S[3]}")
"$T" issue "${short[@]}" --ca "$CA" --profile "$TM_TMP/short.cnf" --pin-source "$PIN" >"$TM_TMP/i1" ||
    { cat "$TM_TMP/i1"; tm_fail "issue (short profile)"; }
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/i2" || { cat "$TM_TMP/i2"; tm_fail "issue"; }
"$T" ca list "$CA" >"$TM_TMP/before.tsv"
pub_of() { # token serial -> its valid certificate's public key at the CA
    local sn
    sn=$("$T" ca list "$CA" --token "pkcs11:serial=$1" --status valid | cut -f1)
    openssl x509 -in "$CA/newcerts/$sn.pem" -noout -pubkey
}
for i in 0 1 2 3; do pub_of "${S[$i]}" >"$TM_TMP/pub$i.before"; done

# only the shared secret at the server: the kur's answer cannot be checked,
# and the station says what the server needs
cmp_start serve0 "$T" ca serve "$CA" --secret-source "$SECRET"
"$T" renew --within 10 --pin-source "$PIN" --token "pkcs11:serial=${S[0]}" \
    --cmp "http://127.0.0.1:$CMP_PORT/pkix/" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station >"$TM_TMP/r0" 2>&1 &&
    tm_fail "a kur answered under the secret only was taken"
tm_grepq "server has to trust that certificate's CA and sign its answers" "$TM_TMP/r0" ||
    { cat "$TM_TMP/r0"; tm_fail "the failure does not say what the server needs"; }
cmp_stop "$CMP_PID"
[ "$(pub_of "${S[0]}")" = "$(cat "$TM_TMP/pub0.before")" ] || tm_fail "the failed renewal changed the CA"
# a kur is signed with the token certificate, the answer by the CA's CMP signer
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TM_TMP/srv.key" \
    -subj "/CN=tokenmint CMP" -out "$TM_TMP/srv.csr" 2>/dev/null
KEY=$(awk -F' *= *' '/^private_key/ {print $2}' "$CA/ca.cnf")
openssl x509 -req -in "$TM_TMP/srv.csr" -CA "$CA/ca.pem" -CAkey "$KEY" -CAcreateserial -days 2 \
    -extfile <(printf 'keyUsage=critical,digitalSignature\n') -out "$TM_TMP/srv.pem" 2>/dev/null ||
    tm_fail "cannot make the CMP signer"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET" --trusted "$CA/ca.pem" \
    --srv-cert "$TM_TMP/srv.pem" --srv-key "$TM_TMP/srv.key"
CMPARGS=(--cmp "http://127.0.0.1:$CMP_PORT/pkix/" --cmp-root "$CA/ca.pem"
    --cmp-secret-source "$SECRET" --cmp-ref station)
renew() { "$T" renew --within 10 --pin-source "$PIN" "${CMPARGS[@]}" "$@"; }

renew --token "pkcs11:serial=${S[0]}" --token "pkcs11:serial=${S[1]}" --json >"$TM_TMP/r1.json" ||
    { cat "$TM_TMP/r1.json" "$TM_TMP/serve.log"; tm_fail "renew --cmp (same key)"; }
paste <("$TJ" get serial <"$TM_TMP/r1.json") <("$TJ" get result <"$TM_TMP/r1.json") \
    <("$TJ" get key_generated <"$TM_TMP/r1.json") >"$TM_TMP/r1.tsv"
for i in 0 1; do
    grep -qx "${S[$i]}	issued	false" "$TM_TMP/r1.tsv" || { cat "$TM_TMP/r1.tsv"; tm_fail "token $i not renewed on its key pair"; }
    [ "$(pub_of "${S[$i]}")" = "$(cat "$TM_TMP/pub$i.before")" ] || tm_fail "token $i: the renewal certifies another key"
done
[ "$(grep -c '(kur)' "$TM_TMP/serve.log")" -ge 2 ] || { cat "$TM_TMP/serve.log"; tm_fail "the renewals were not kur"; }
grep -q '(p10cr)' "$TM_TMP/serve.log" && tm_fail "a renewal went as p10cr"

renew --all --rekey --json >"$TM_TMP/r2.json" || { cat "$TM_TMP/r2.json" "$TM_TMP/serve.log"; tm_fail "renew --cmp --rekey"; }
paste <("$TJ" get serial <"$TM_TMP/r2.json") <("$TJ" get result <"$TM_TMP/r2.json") \
    <("$TJ" get key_generated <"$TM_TMP/r2.json") | sort >"$TM_TMP/r2.tsv"
for i in 2 3; do
    grep -qx "${S[$i]}	issued	true" "$TM_TMP/r2.tsv" || { cat "$TM_TMP/r2.tsv"; tm_fail "token $i not renewed on a new key pair"; }
    [ "$(pub_of "${S[$i]}")" != "$(cat "$TM_TMP/pub$i.before")" ] || tm_fail "token $i: --rekey kept the key"
done
for i in 0 1 4 5; do
    grep -qx "${S[$i]}	done	false" "$TM_TMP/r2.tsv" || { cat "$TM_TMP/r2.tsv"; tm_fail "token $i should be left alone"; }
done
[ "$(grep -c '(kur)' "$TM_TMP/serve.log")" -ge 4 ] || { cat "$TM_TMP/serve.log"; tm_fail "the --rekey renewals were not kur"; }
renew --all >"$TM_TMP/r3" || { cat "$TM_TMP/r3"; tm_fail "re-run"; }
grep -q 'already done *6$' "$TM_TMP/r3" || { cat "$TM_TMP/r3"; tm_fail "a re-run should find all 6 done"; }

"$T" ca list "$CA" --status superseded >"$TM_TMP/sup.tsv"
for i in 0 1 2 3; do
    old=$(awk -F'\t' -v t="${S[$i]}" '$3 == t {print $1}' "$TM_TMP/before.tsv")
    awk -F'\t' -v o="$old" '$1 == o' "$TM_TMP/sup.tsv" | tm_grepq . || tm_fail "token $i: $old is not superseded"
done
"$T" verify --all --ca "$CA" >"$TM_TMP/verify.out" 2>&1 || { cat "$TM_TMP/verify.out"; tm_fail "verify"; }
tool_check_invariants "$CA" 2
cmp_stop "$CMP_PID"
echo "PASS: renew --cmp: kur signed by the old certificate, same key by default, new with --rekey"
