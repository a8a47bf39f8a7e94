#!/usr/bin/env bash
# The command line: --help on every command, documented exit codes (0 all
# done, 1 some tokens failed, 2 usage or config error), clear messages for bad
# input.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null

for c in tokens "ca init" issue csr write verify watch show "operator hash"; do
    # shellcheck disable=SC2086
    "$T" $c --help | tm_grepq "usage: tokenmint" || tm_fail "$c --help"
done
"$T" --help | tm_grepq "Exit: 0 all done, 1 some tokens failed" || tm_fail "tokenmint --help"

# expect_rc RC PATTERN CMD...: exit code and a message naming the problem.
expect_rc() {
    local want=$1 pat=$2 out rc
    shift 2
    set +e
    out=$("$@" 2>&1 </dev/null)
    rc=$?
    set -e
    [ "$rc" -eq "$want" ] || tm_fail "$*: exit $rc, want $want ($out)"
    echo "$out" | tm_grepq -- "$pat" || tm_fail "$*: message should say '$pat': $out"
}
expect_rc 2 'unknown command "frobnicate"' "$T" frobnicate
expect_rc 2 "unknown option" "$T" issue --all --ca "$CA" --colour
expect_rc 2 "does not apply" "$T" tokens --ca "$CA"
expect_rc 2 "\-\-ca DIR is required" "$T" issue --all
expect_rc 2 "name the tokens" "$T" issue --ca "$CA"
expect_rc 2 "key-type rsa:1024: one of" "$T" issue --all --ca "$CA" --key-type rsa:1024
expect_rc 2 "purpose payroll: the profile has no such purpose" "$T" issue --all --ca "$CA" --purpose payroll
expect_rc 2 "jobs 0" "$T" issue --all --ca "$CA" --jobs 0
expect_rc 2 "not a pkcs11: token URI" "$T" issue --token "http://x" --ca "$CA"
expect_rc 2 "no token at this station matches" "$T" issue --token "pkcs11:serial=nosuch" --ca "$CA"
expect_rc 2 "nowhere: No such file" "$T" issue --all --ca "$TM_TMP/nowhere"
mkdir "$TM_TMP/empty"
expect_rc 2 "cannot read (is" "$T" issue --all --ca "$TM_TMP/empty"
expect_rc 2 "cannot load PKCS#11 module" "$T" tokens --module "$TM_TMP/none.so"
expect_rc 2 "no certificate (PEM or DER) found" "$T" write /dev/null
expect_rc 2 "name the root" "$T" verify --all
printf '[ profile ]\nno_such_key = 1\n' >"$TM_TMP/bad-profile.cnf"
expect_rc 2 "profile" "$T" issue --all --ca "$CA" --profile "$TM_TMP/bad-profile.cnf"
# A CA directory whose key does not match its root.
"$T" ca init "$TM_TMP/ca2" >/dev/null
cp "$TM_TMP/ca2/private/ca.key" "$CA/private/ca.key"
expect_rc 2 "does not match" "$T" issue --all --ca "$CA" --pin-source "$PIN"
rm -rf "$CA"
"$T" ca init "$CA" >/dev/null

# One token failing does not stop the others: exit 1, the rest issued.
tm_make_tokens 3 y
"$T" ca init "$TM_TMP/ca3" >/dev/null
pkcs11-tool --module "$TM_P11_MODULE" --token-label tm-y0002 --login --pin "$TM_USER_PIN" \
    --change-pin --new-pin 55555 >/dev/null 2>&1
expect_rc 1 "step 4" "$T" issue --all --ca "$TM_TMP/ca3" --pin-source "$PIN"
[ "$(wc -l <"$TM_TMP/ca3/index.txt")" -eq 2 ] || tm_fail "the other two tokens should be issued"

# Key types.
tm_make_tokens 5 z
"$T" ca init "$TM_TMP/ca4" >/dev/null
i=0
for kt in ec:P-384 rsa:2048 rsa:3072 ec:P-256 ed25519; do
    "$T" issue --token "pkcs11:serial=${TM_SERIALS[$i]}" --ca "$TM_TMP/ca4" --pin-source "$PIN" \
        --key-type "$kt" >/dev/null || tm_fail "key type $kt"
    i=$((i + 1))
done
[ "$(wc -l <"$TM_TMP/ca4/index.txt")" -eq 5 ] || tm_fail "five key types, five certificates"
openssl x509 -in "$TM_TMP/ca4/newcerts/$(tail -1 "$TM_TMP/ca4/index.txt" | cut -f4).pem" -noout \
    -text | tm_grepq "ED25519" || tm_fail "the last certificate should carry an Ed25519 key"
"$T" verify --all --ca "$TM_TMP/ca4" >/dev/null || tm_fail "verify the key types"
# A second purpose on an issued token gets its own key pair and certificate.
"$T" issue --token "pkcs11:serial=${TM_SERIALS[0]}" --ca "$TM_TMP/ca4" --pin-source "$PIN" \
    --key-type ec:P-384 --purpose sign >/dev/null || tm_fail "second purpose"
"$T" show "pkcs11:serial=${TM_SERIALS[0]}" | grep -c "^certificate" | tm_grepq 2 ||
    tm_fail "the token should hold two certificates"
echo "PASS: command line and exit codes"
