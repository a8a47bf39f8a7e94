#!/usr/bin/env bash
# --pin-source takes the one secret-source syntax of the client layer
# (issue 9): PATH, file:PATH, file://PATH, and "%s" for the token serial
# (one PIN file per token), as the provider's pin-source does.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 2
S0=${TM_SERIALS[0]}
S1=${TM_SERIALS[1]}

for src in "$PIN" "file:$PIN" "file://$PIN"; do
    "$T" csr --token "pkcs11:serial=$S0" --pin-source "$src" >"$TM_TMP/req.pem" ||
        tm_fail "csr with --pin-source $src"
    openssl req -in "$TM_TMP/req.pem" -noout -verify 2>/dev/null || tm_fail "no request from $src"
done

# Per token: the right PIN in each token's own file; the shared file holds a
# wrong one, so only the per-token files can make this pass.
for s in "$S0" "$S1"; do
    echo "$TM_USER_PIN" >"$TM_TMP/pin-$s"
    chmod 600 "$TM_TMP/pin-$s"
done
"$T" csr --all --pin-source "file:$TM_TMP/pin-%s" >"$TM_TMP/all.pem" 2>"$TM_TMP/all.err" ||
    { cat "$TM_TMP/all.err"; tm_fail "csr --all with a per-token PIN source"; }
[ "$(grep -c 'BEGIN CERTIFICATE REQUEST' "$TM_TMP/all.pem")" -eq 2 ] ||
    tm_fail "two requests from per-token PIN files"

# A token whose file is missing: refused before any token is touched (exit
# 2), the error names the file, and no request comes out.
rm "$TM_TMP/pin-$S1"
set +e
"$T" csr --all --pin-source "$TM_TMP/pin-%s" >"$TM_TMP/one.pem" 2>"$TM_TMP/one.err"
rc=$?
set -e
[ "$rc" -eq 2 ] || tm_fail "a missing per-token PIN file must exit 2, got $rc"
grep -q "pin-$S1" "$TM_TMP/one.err" || tm_fail "the error names the missing file: $(cat "$TM_TMP/one.err")"
grep -q "$TM_USER_PIN" "$TM_TMP/one.err" && tm_fail "a PIN reached an error message"
[ ! -s "$TM_TMP/one.pem" ] || tm_fail "nothing may be done when a PIN file is missing"
echo "ok"
