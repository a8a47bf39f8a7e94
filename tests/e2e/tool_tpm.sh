#!/usr/bin/env bash
# Issue 13, "the whole issue/verify pipeline on TPM tokens, and on SoftHSM2
# and TPM mixed in one station": tokenmint-pkcs11.so with two backends
# (SoftHSM2 with 2 tokens, tpm2-pkcs11 on a per-test swtpm with 1).
# tpm2-pkcs11 reports the serial 0000000000000000 for every token.
# 1. Without token_serials, `tokenmint issue --all` fails the TPM token with
#    that reason before it is touched (no key pair made on it), the SoftHSM2
#    tokens get their certificates; `verify --all` passes for them; a re-run
#    finds both done.
# 2. With `token_serials = tpm0:TPM0SERIAL01` in the TPM backend's section
#    (and two fresh SoftHSM2 tokens, a fresh CA) the module reports that
#    serial for the TPM token: every token gets a key pair made on it and its
#    certificate, the TPM's naming TPM0SERIAL01 (subject serialNumber, SAN
#    hardwareModuleName); `verify --all` passes; a re-run finds all 3 done.
#    A token_serials entry for a SoftHSM2 token, which has its own serial, is
#    ignored and audited so.
# Skips outside CI when the TPM packages are absent.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/tpm.sh"
tm_tpm_available || exit 77 # ctest: skipped
tm_make_tokens 2 >/dev/null
tm_make_tpm_token tpm0
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
unset TOKENMINT_BACKEND
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm, tpm
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
[backend_tpm]
module = $TM_TPM_MODULE
CONF
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
"$T" tokens >"$TM_TMP/tokens.out" || tm_fail "tokens: $(cat "$TM_TMP/tokens.out")"
tm_grepq ' tpm0 ' "$TM_TMP/tokens.out" || tm_fail "the TPM token is not listed: $(cat "$TM_TMP/tokens.out")"
[ "$TM_TPM_SERIAL" = 0000000000000000 ] || tm_fail "tpm2-pkcs11 reports $TM_TPM_SERIAL, not its placeholder"
set +e
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue.out" 2>&1
rc=$?
set -e
cat "$TM_TMP/issue.out"
[ "$rc" -eq 1 ] || tm_fail "issue exited $rc, not 1 (the TPM token failed)"
tm_grepq 'issued (new certificate) *2' "$TM_TMP/issue.out" || tm_fail "not 2 certificates issued"
tm_grepq "^FAIL .* tpm0 .*step 6: token 'tpm0' (slot [0-9]*) reports the serial '0000000000000000' (all zeros).*token_serials" \
    "$TM_TMP/issue.out" || tm_fail "the TPM token is not refused for its placeholder serial"
pkcs11-tool --module "$TM_TPM_MODULE" --token-label tpm0 --login --pin "$TM_USER_PIN" -O \
    >"$TM_TMP/tpm.objs" 2>/dev/null
tm_grepq 'Private Key Object' "$TM_TMP/tpm.objs" && tm_fail "a key pair was made on the refused TPM token"
"$T" verify --all --ca "$CA" >"$TM_TMP/verify.out" 2>&1 || true
tm_grepq '^2 certificates verified, 0 bad' "$TM_TMP/verify.out" || tm_fail "verify: $(cat "$TM_TMP/verify.out")"
set +e
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/again.out" 2>&1
set -e
tm_grepq 'already done *2' "$TM_TMP/again.out" || tm_fail "re-run: $(cat "$TM_TMP/again.out")"

# 2. token_serials names the TPM token; two fresh SoftHSM2 tokens, a fresh CA
tm_make_tokens 2 b >/dev/null
AUDIT="$TM_TMP/audit.jsonl"
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm, tpm
audit_log = $AUDIT
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
token_serials = tm-b0001:NOTTHISONE
[backend_tpm]
module = $TM_TPM_MODULE
token_serials = tpm0:TPM0SERIAL01
CONF
CA="$TM_TMP/ca2"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
"$T" tokens >"$TM_TMP/tokens.out" || tm_fail "tokens: $(cat "$TM_TMP/tokens.out")"
tm_grepq '^TPM0SERIAL01 *tpm0 ' "$TM_TMP/tokens.out" ||
    tm_fail "the module does not report TPM0SERIAL01 for tpm0: $(cat "$TM_TMP/tokens.out")"
tm_grepq "^${TM_SERIALS[0]} *tm-b0001 " "$TM_TMP/tokens.out" ||
    tm_fail "tm-b0001 lost its own serial: $(cat "$TM_TMP/tokens.out")"
tm_grepq NOTTHISONE "$TM_TMP/tokens.out" && tm_fail "a real serial was replaced"
tm_grepq '"op":"token","outcome":"serial".*tpm0.*0000000000000000.*TPM0SERIAL01 from token_serials' "$AUDIT" ||
    tm_fail "the mapped serial is not audited: $(cat "$AUDIT")"
tm_grepq "\"outcome\":\"serial_ignored\".*its own serial ${TM_SERIALS[0]}; token_serials 'tm-b0001:NOTTHISONE' is ignored" "$AUDIT" ||
    tm_fail "the ignored entry is not audited: $(cat "$AUDIT")"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue.out" 2>&1 ||
    tm_fail "issue on the mixed station: $(cat "$TM_TMP/issue.out")"
cat "$TM_TMP/issue.out"
tm_grepq 'issued (new certificate) *3' "$TM_TMP/issue.out" || tm_fail "not 3 certificates issued"
tm_grepq "^OK *TPM0SERIAL01 *tpm0 .*issued" "$TM_TMP/issue.out" || tm_fail "the TPM token got no certificate"
"$T" verify --all --ca "$CA" >"$TM_TMP/verify.out" 2>&1 || tm_fail "verify: $(cat "$TM_TMP/verify.out")"
tm_grepq '^3 certificates verified, 0 bad' "$TM_TMP/verify.out" || tm_fail "verify: $(cat "$TM_TMP/verify.out")"
# the TPM's certificate, read past tokenmint, names TPM0SERIAL01 and
# certifies a key pair made on the TPM
tpm() { pkcs11-tool --module "$TM_TPM_MODULE" --token-label tpm0 --login --pin "$TM_USER_PIN" "$@"; }
tpm -O >"$TM_TMP/tpm.objs" 2>/dev/null
tm_grepq 'Private Key Object; EC' "$TM_TMP/tpm.objs" || tm_fail "no key pair on the TPM"
tm_grepq 'Certificate Object' "$TM_TMP/tpm.objs" || tm_fail "no certificate on the TPM"
ID=$(awk '/^Certificate Object/{c=1} c && /ID:/{print $2; exit}' "$TM_TMP/tpm.objs")
[ -n "$ID" ] || tm_fail "no CKA_ID on the TPM's certificate: $(cat "$TM_TMP/tpm.objs")"
tpm --read-object --type cert --id "$ID" -o "$TM_TMP/tpm-cert.der" >/dev/null 2>&1 ||
    tm_fail "cannot read the TPM's certificate"
openssl x509 -inform DER -in "$TM_TMP/tpm-cert.der" -noout -subject -nameopt sep_multiline |
    tm_grepq '^ *serialNumber=TPM0SERIAL01$' || tm_fail "the subject does not name TPM0SERIAL01"
HEX=$(od -An -v -tx1 "$TM_TMP/tpm-cert.der" | tr -d ' \n')
# otherName type-id id-on-hardwareModuleName, then hwSerialNum OCTET STRING (12) TPM0SERIAL01
[[ "$HEX" == *06082b06010505070804*040c54504d3053455249414c3031* ]] ||
    tm_fail "the SAN has no hardwareModuleName with TPM0SERIAL01"
"$T" show "pkcs11:serial=TPM0SERIAL01" | tm_grepq "token serial *TPM0SERIAL01" ||
    tm_fail "show does not decode TPM0SERIAL01 from the TPM's certificate"
tpm --read-object --type pubkey --id "$ID" -o "$TM_TMP/tpm-pub.der" >/dev/null 2>&1 ||
    tm_fail "cannot read the TPM's public key"
cmp -s <(openssl pkey -pubin -inform DER -in "$TM_TMP/tpm-pub.der" -outform DER) \
    <(openssl x509 -inform DER -in "$TM_TMP/tpm-cert.der" -noout -pubkey | openssl pkey -pubin -outform DER) ||
    tm_fail "the TPM's certificate does not certify the key pair on the TPM"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/again.out" 2>&1 ||
    tm_fail "re-run: $(cat "$TM_TMP/again.out")"
tm_grepq 'already done *3' "$TM_TMP/again.out" || tm_fail "re-run: $(cat "$TM_TMP/again.out")"
echo "PASS: the TPM token's placeholder serial is refused; named by token_serials it is issued and verified with SoftHSM2 tokens"
