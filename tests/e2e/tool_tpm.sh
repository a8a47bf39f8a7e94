#!/usr/bin/env bash
# Issue 13, "the whole issue/verify pipeline on TPM tokens, and on SoftHSM2
# and TPM mixed in one station": tokenmint-pkcs11.so with two backends
# (SoftHSM2 with 2 tokens, tpm2-pkcs11 on a per-test swtpm with 1), one
# `tokenmint issue --all`. tpm2-pkcs11 reports the serial 0000000000000000
# for every token: the TPM token is failed with that reason before it is
# touched (no key pair made on it), the SoftHSM2 tokens get their
# certificates; `verify --all` passes for them; a re-run finds both done.
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
tm_grepq "^FAIL .* tpm0 .*step 6: token 'tpm0' (slot [0-9]*) reports the serial '0000000000000000' (all zeros)" \
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
echo "PASS: on a mixed station the TPM token's placeholder serial is refused, the others issued"
