#!/usr/bin/env bash
# Operator authentication (claim 6): before anything touches a token, a
# passphrase checked against an scrypt hash in the config, or an operator
# token that logs in, signs a fresh challenge and chains to the operator CA.
# Refusals leave every token untouched; the identity reaches the CA record
# and the audit log.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 5
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
OPTOK=${TM_SERIALS[4]}
S0=${TM_SERIALS[0]}

echo "correct horse battery" >"$TM_TMP/pass"
echo "wrong horse" >"$TM_TMP/badpass"
chmod 600 "$TM_TMP/pass" "$TM_TMP/badpass"
line=$("$T" operator hash --operator-pass-source "$TM_TMP/pass") || tm_fail "operator hash"
echo "$line" | tm_grepq '^passphrase = scrypt:N=' || tm_fail "hash line: $line"
cat >"$TM_TMP/tool.conf" <<CONF
[ tokenmint ]
audit = $TM_TMP/audit.jsonl
[ operator ]
require = yes
name = desk-7
$line
CONF
export TOKENMINT_TOOL_CONF="$TM_TMP/tool.conf"

untouched() {
    [ "$("$T" tokens --json | "$TJ" get key_pairs | sort -u)" = 0 ] || tm_fail "$1 touched a token"
    [ ! -s "$CA/index.txt" ] || tm_fail "$1 issued a certificate"
}

# No passphrase (no terminal to ask on): refused with exit 2.
set +e
out=$("$T" issue --all --ca "$CA" --pin-source "$PIN" 2>&1 </dev/null)
rc=$?
set -e
[ "$rc" -eq 2 ] || tm_fail "missing operator passphrase should exit 2, got $rc"
echo "$out" | tm_grepq "operator authentication refused" || tm_fail "message: $out"
untouched "no passphrase"

# Wrong passphrase: refused, says so, and the refusal is audited.
set +e
out=$("$T" issue --all --ca "$CA" --pin-source "$PIN" --operator-pass-source "$TM_TMP/badpass" 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] || tm_fail "wrong passphrase should exit 2, got $rc"
echo "$out" | tm_grepq "passphrase is wrong" || tm_fail "message: $out"
untouched "a wrong passphrase"
grep -q '"op":"operator-auth","outcome":"refused"' "$TM_TMP/audit.jsonl" || tm_fail "refusal not audited"

# Right passphrase: issued; the identity is in the CA record and the audit log.
"$T" issue --token "pkcs11:serial=$S0" --ca "$CA" --pin-source "$PIN" \
    --operator-pass-source "$TM_TMP/pass" >/dev/null || tm_fail "right passphrase refused"
"$T" ca list "$CA" >"$TM_TMP/records" || tm_fail "ca list"
grep -q "	valid	$S0	auth	passphrase:desk-7	" "$TM_TMP/records" || tm_fail "operator not in the CA record"
grep "\"serial\":\"$S0\"" "$TM_TMP/audit.jsonl" | tm_grepq '"operator":"passphrase:desk-7"' ||
    tm_fail "operator not in the audit line of the token"
! grep -q "correct horse" "$TM_TMP/audit.jsonl" "$TM_TMP/records" "$CA/ca.db"* || tm_fail "passphrase leaked"

# A broken config is a config error that names the problem.
printf '[ operator ]\nrequire = perhaps\n' >"$TM_TMP/bad.conf"
set +e
out=$(TOKENMINT_TOOL_CONF="$TM_TMP/bad.conf" "$T" issue --all --ca "$CA" 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] && echo "$out" | tm_grepq 'require must be yes or no' || tm_fail "bad require: $rc $out"
printf '[ operator ]\npassword = x\n' >"$TM_TMP/bad.conf"
out=$(TOKENMINT_TOOL_CONF="$TM_TMP/bad.conf" "$T" issue --all --ca "$CA" 2>&1) && tm_fail "unknown key"
echo "$out" | tm_grepq 'unknown key "password"' || tm_fail "unknown key message: $out"
printf '[ operator ]\nrequire = yes\npassphrase = plain\n' >"$TM_TMP/bad.conf"
out=$(TOKENMINT_TOOL_CONF="$TM_TMP/bad.conf" "$T" issue --all --ca "$CA" \
    --operator-pass-source "$TM_TMP/pass" 2>&1) && tm_fail "a plain passphrase in the config"
echo "$out" | tm_grepq 'not a scrypt:' || tm_fail "bad hash message: $out"

# Operator token: a key on token 5 with a certificate from the operator CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TM_TMP/opca.key" \
    -out "$TM_TMP/opca.pem" -subj "/CN=Operator CA" -days 30 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TM_TMP/other.key" \
    -out "$TM_TMP/other.pem" -subj "/CN=Some Other CA" -days 30 2>/dev/null
P11="pkcs11-tool --module $TM_SOFTHSM_MODULE --token-label tm-0005 --login --pin $TM_USER_PIN"
$P11 --keypairgen --key-type EC:prime256v1 --id 0a --label operator >/dev/null 2>&1
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0005 --read-object --type pubkey \
    --id 0a -o "$TM_TMP/op.pub.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$TM_TMP/op.pub.der" -out "$TM_TMP/op.pub.pem"
openssl x509 -new -force_pubkey "$TM_TMP/op.pub.pem" -subj "/CN=Operator Alice" \
    -CA "$TM_TMP/opca.pem" -CAkey "$TM_TMP/opca.key" -days 30 -outform DER -out "$TM_TMP/op.der" 2>/dev/null
# written straight to SoftHSM2: the station's write policy takes only token certificates
$P11 --write-object "$TM_TMP/op.der" --type cert --id 0a --label operator >/dev/null 2>&1
cat >"$TM_TMP/tool.conf" <<CONF
[ tokenmint ]
audit = $TM_TMP/audit.jsonl
[ operator ]
require = yes
ca = $TM_TMP/opca.pem
CONF

OPURI="pkcs11:serial=$OPTOK"
"$T" issue --all --ca "$CA" --pin-source "$PIN" --operator-token "$OPURI" \
    --operator-pin-source "$PIN" >"$TM_TMP/op.out" || { cat "$TM_TMP/op.out"; tm_fail "operator token refused"; }
"$T" ca list "$CA" | tm_grepq "CN=Operator Alice" || tm_fail "operator token identity not in the CA record"
grep -q "$OPTOK" "$CA/index.txt" && tm_fail "the operator's own token must not be issued to"
[ "$(wc -l <"$CA/index.txt")" -eq 4 ] || tm_fail "4 station tokens should be issued"

# Refusals: a wrong operator PIN; a certificate from another CA.
echo 9999 >"$TM_TMP/badpin"
chmod 600 "$TM_TMP/badpin"
set +e
out=$("$T" issue --all --ca "$CA" --pin-source "$PIN" --operator-token "$OPURI" \
    --operator-pin-source "$TM_TMP/badpin" 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] && echo "$out" | tm_grepq "login failed" || tm_fail "wrong operator PIN: $rc $out"
sed -i "s|^ca = .*|ca = $TM_TMP/other.pem|" "$TM_TMP/tool.conf"
set +e
out=$("$T" issue --all --ca "$CA" --pin-source "$PIN" --operator-token "$OPURI" \
    --operator-pin-source "$PIN" 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] && echo "$out" | tm_grepq "chains to" || tm_fail "foreign operator CA: $rc $out"
echo "PASS: operator authentication"
