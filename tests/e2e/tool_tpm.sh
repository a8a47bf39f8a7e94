#!/usr/bin/env bash
# Issue 13, "the whole issue/verify pipeline on TPM tokens, and on SoftHSM2
# and TPM mixed in one station": tokenmint-pkcs11.so with two backends
# (SoftHSM2 with 2 tokens, tpm2-pkcs11 on a per-test swtpm with 1), one
# `tokenmint issue --all`: every token gets a key pair made on it and its
# certificate; `verify --all` passes; a re-run finds all 3 done and touches
# nothing. Skips outside CI when the TPM packages are absent.
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
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/issue.out" 2>&1 ||
    tm_fail "issue on the mixed station: $(cat "$TM_TMP/issue.out")"
cat "$TM_TMP/issue.out"
tm_grepq 'issued (new certificate) *3' "$TM_TMP/issue.out" || tm_fail "not 3 certificates issued"
tm_grepq "^OK .* tpm0 .*issued" "$TM_TMP/issue.out" || tm_fail "the TPM token got no certificate"
"$T" verify --all --ca "$CA" >"$TM_TMP/verify.out" 2>&1 || tm_fail "verify: $(cat "$TM_TMP/verify.out")"
tm_grepq '^3 certificates verified, 0 bad' "$TM_TMP/verify.out" || tm_fail "verify: $(cat "$TM_TMP/verify.out")"
# the TPM's certificate certifies a key made on the TPM
pkcs11-tool --module "$TM_TPM_MODULE" --token-label tpm0 --login --pin "$TM_USER_PIN" -O \
    >"$TM_TMP/tpm.objs" 2>/dev/null
tm_grepq 'Private Key Object; EC' "$TM_TMP/tpm.objs" || tm_fail "no key pair on the TPM"
tm_grepq 'Certificate Object' "$TM_TMP/tpm.objs" || tm_fail "no certificate on the TPM"
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/again.out" 2>&1 ||
    tm_fail "re-run: $(cat "$TM_TMP/again.out")"
tm_grepq 'already done *3' "$TM_TMP/again.out" || tm_fail "re-run: $(cat "$TM_TMP/again.out")"
echo "PASS: issue and verify on SoftHSM2 and TPM tokens in one station"
