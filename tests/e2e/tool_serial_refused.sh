#!/usr/bin/env bash
# Issue 13 item 1: a serial that names no one token binds no certificate.
# The same SoftHSM2 store behind two backends (a copy of libsofthsm2.so reads
# the same SOFTHSM2_CONF) shows every token twice with one serial:
# `tokenmint issue --all` fails both copies with the reason naming each
# (label, slot) and the other, before touching them (no key pair made, no
# PIN file read for them, refused in the tool's audit log), and exits 1;
# `csr` refuses them the same way.
# The module's write policy refuses a certificate naming that serial
# (CKR_ACTION_PROHIBITED, with the reason in its audit log).
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"
tm_make_tokens 1 >/dev/null
DUP=${TM_SERIALS[0]}
STORE1=$SOFTHSM2_CONF
cp "$TM_SOFTHSM_MODULE" "$TM_TMP/softhsm-copy.so"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
unset TOKENMINT_BACKEND
AUDIT="$TM_TMP/audit.jsonl"
TOOLCONF="$TM_TMP/tool.conf"
printf '[tokenmint]\naudit_log = %s\n' "$TM_TMP/tool-audit.jsonl" >"$TOOLCONF"
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = a, b
audit_log = $AUDIT
[backend_a]
module = $TM_SOFTHSM_MODULE
[backend_b]
module = $TM_TMP/softhsm-copy.so
uri = pkcs11:manufacturer=SoftHSM%20project
CONF
"$T" tokens >"$TM_TMP/tokens.out" 2>&1 || tm_fail "tokens: $(cat "$TM_TMP/tokens.out")"
[ "$(grep -c "^$DUP " "$TM_TMP/tokens.out")" -eq 2 ] ||
    tm_fail "the store is not shown twice: $(cat "$TM_TMP/tokens.out")"
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
# a per-token PIN source: the shared serial's file does not exist, and is
# never asked for
mkdir "$TM_TMP/pins"
set +e
TOKENMINT_TOOL_CONF=$TOOLCONF "$T" issue --all --ca "$CA" --pin-source "$TM_TMP/pins/%s" \
    >"$TM_TMP/issue.out" 2>&1
rc=$?
set -e
cat "$TM_TMP/issue.out"
[ "$rc" -eq 1 ] || tm_fail "issue exited $rc, not 1 (some tokens failed)"
[ "$(grep -c "^FAIL .*and so has token 'tm-0001' (slot [0-9]*)" "$TM_TMP/issue.out")" -eq 2 ] ||
    tm_fail "both copies of the token must fail naming the other"
tm_grepq "token 'tm-0001' (slot [0-9]*) has the serial $DUP" "$TM_TMP/issue.out" ||
    tm_fail "the reason does not name the token"
tm_grepq "pin-source\|PIN" "$TM_TMP/issue.out" && tm_fail "a PIN was looked for: $(cat "$TM_TMP/issue.out")"
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0001 --login --pin "$TM_USER_PIN" -O \
    >"$TM_TMP/objs" 2>&1 || true
tm_grepq "Private Key Object" "$TM_TMP/objs" && tm_fail "a key pair was made on the token"
[ "$(grep -c '"outcome":"refused".*and so has token' "$TM_TMP/tool-audit.jsonl")" -eq 2 ] ||
    tm_fail "the refusals are not in the tool's audit log: $(cat "$TM_TMP/tool-audit.jsonl")"
set +e
TOKENMINT_TOOL_CONF=$TOOLCONF "$T" csr --all --pin-source "$TM_TMP/pins/%s" >"$TM_TMP/csr.out" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || tm_fail "csr over the shared serial succeeded"
tm_grepq "and so has token" "$TM_TMP/csr.out" || tm_fail "csr: $(cat "$TM_TMP/csr.out")"
tm_grepq BEGIN "$TM_TMP/csr.out" && tm_fail "csr printed a request"
[ "$(grep -c '"op":"csr","outcome":"refused"' "$TM_TMP/tool-audit.jsonl")" -eq 2 ] ||
    tm_fail "csr refusals not audited: $(cat "$TM_TMP/tool-audit.jsonl")"

# the module's write policy: a key pair and a profile certificate naming the
# serial, written through the module, refused for the shared serial
p11() { pkcs11-tool --module "$TM_MODULE" "$@"; }
SLOT=$(printf '%d' "$(p11 -L | awk -v s="$DUP" '/^Slot /{id=$3; gsub(/[():]/,"",id)}
    $0 ~ "serial num *: "s"$" {print id; exit}')")
p11 --slot "$SLOT" -l --pin "$TM_USER_PIN" --keypairgen --key-type EC:prime256v1 --id 01 \
    --label k1 >/dev/null 2>&1 || tm_fail "key pair through the module"
p11 --slot "$SLOT" --read-object --type pubkey --id 01 -o "$TM_TMP/pub.der" 2>/dev/null
openssl pkey -pubin -inform DER -in "$TM_TMP/pub.der" -out "$TM_TMP/pub.pem"
tm_test_ca "$TM_TMP/wca"
tm_profile_cert "$TM_TMP/wca" "$DUP" "$TM_TMP/pub.pem" "$TM_TMP/cert.der"
if out=$(p11 --slot "$SLOT" -l --pin "$TM_USER_PIN" --write-object "$TM_TMP/cert.der" --type cert 2>&1); then
    tm_fail "the module wrote a certificate for a shared serial: $out"
fi
tm_grepq "CKR_ACTION_PROHIBITED\|(0x1b)" <<<"$out" || tm_fail "expected CKR_ACTION_PROHIBITED (0x1b): $out"
tm_grepq '"outcome":"refused".*and so has token' "$AUDIT" || tm_fail "module audit: $(cat "$AUDIT")"
# one backend alone: the serial is the token's own again, and the same
# certificate is written
printf '[tokenmint]\nbackends = a\naudit_log = %s\n[backend_a]\nmodule = %s\n' "$AUDIT" \
    "$TM_SOFTHSM_MODULE" >"$TOKENMINT_CONF"
SLOT=$(tm_slot_of_serial "$DUP")
out=$(p11 --slot "$SLOT" -l --pin "$TM_USER_PIN" --write-object "$TM_TMP/cert.der" --type cert 2>&1) ||
    tm_fail "the certificate is refused with the serial unshared: $out"
echo "PASS: a shared serial is refused by the tool (issue, csr) and the module, each naming the token"
