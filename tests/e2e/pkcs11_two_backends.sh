#!/usr/bin/env bash
# The module over two different backends at once (SoftHSM2 and NSS softokn),
# driven by stock clients: pkcs11-tool lists every token, makes key pairs and
# signs on both; the write policy stores a matching profile certificate under
# the key's CKA_ID and refuses one naming another serial, one for a key not on
# the token and a second one for the same key; p11tool sees the same tokens.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/e2e/pkcs11_lib.sh"

tm_make_tokens 2
NSSDB="$TM_TMP/nssdb"
mkdir -p "$NSSDB"
certutil -N --empty-password -d "sql:$NSSDB"

export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm, nss
audit_log = $TM_TMP/audit.jsonl

[backend_softhsm]
module = $TM_SOFTHSM_MODULE
uri = pkcs11:manufacturer=SoftHSM%20project

[backend_nss]
module = $TM_NSS_MODULE
# the key database token only, not "NSS Generic Crypto Services"
uri = pkcs11:token=NSS%20Certificate%20DB
init_args = "configdir='sql:$NSSDB' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
CONF

p11() { pkcs11-tool --module "$TM_MODULE" "$@"; }

# --- every token of both backends is listed, each in a slot of its own -------
listing=$(p11 -L)
for s in "${TM_SERIALS[@]}"; do
    grep -q "serial num *: $s" <<<"$listing" || tm_fail "token $s not listed"
done
grep -q "token label *: NSS Certificate DB" <<<"$listing" || tm_fail "NSS token not listed"
grep -q "NSS Generic Crypto Services" <<<"$listing" && tm_fail "the backend URI should hide NSS's crypto token"
# 2 tokens + SoftHSM's empty slot for a new token + the NSS key database
[ "$(grep -c '^Slot ' <<<"$listing")" -eq 4 ] || tm_fail "expected 4 slots: $listing"
[ "$(grep -o '^Slot [0-9]* (0x[0-9a-f]*)' <<<"$listing" | awk '{print $3}' | sort -u | wc -l)" -eq 4 ] ||
    tm_fail "slot IDs collide"

S1=${TM_SERIALS[0]}
SLOT1=$(tm_slot_of_serial "$S1")
SLOT_NSS=$(printf '%d' "$(p11 -L | awk '/^Slot /{id=$3; gsub(/[():]/,"",id)} /token label *: NSS Certificate DB/{print id}')")

# --- key pairs and signatures on both backends --------------------------------
p11 --slot "$SLOT1" -l --pin "$TM_USER_PIN" --keypairgen --key-type EC:prime256v1 --id 01 \
    --label k1 >/dev/null
p11 --slot "$SLOT_NSS" --keypairgen --key-type EC:prime256v1 --id 02 --label nk >/dev/null
echo "to be signed" >"$TM_TMP/data"
openssl dgst -sha256 -binary "$TM_TMP/data" >"$TM_TMP/data.sha"
for pair in "$SLOT1:01:-l" "$SLOT_NSS:02:"; do
    IFS=: read -r slot id login <<<"$pair"
    p11 --slot "$slot" $login ${login:+--pin "$TM_USER_PIN"} --sign -m ECDSA --id "$id" \
        -i "$TM_TMP/data.sha" -o "$TM_TMP/sig$id" --signature-format openssl 2>/dev/null
    p11 --slot "$slot" --read-object --type pubkey --id "$id" -o "$TM_TMP/pub$id.der" 2>/dev/null
    openssl pkey -pubin -inform DER -in "$TM_TMP/pub$id.der" -out "$TM_TMP/pub$id.pem"
    openssl dgst -sha256 -verify "$TM_TMP/pub$id.pem" -signature "$TM_TMP/sig$id" "$TM_TMP/data" \
        >/dev/null || tm_fail "signature by key $id on slot $slot does not verify"
done

# --- the write policy, through pkcs11-tool --write-object ---------------------
tm_test_ca "$TM_TMP/ca"
tm_profile_cert "$TM_TMP/ca" "$S1" "$TM_TMP/pub01.pem" "$TM_TMP/good.der"
# a second certificate for the key that is no renewal (it ends earlier): made
# in another second than good.der, a 30-day one would end later and renew it
tm_profile_cert "$TM_TMP/ca" "$S1" "$TM_TMP/pub01.pem" "$TM_TMP/second.der" 29
tm_profile_cert "$TM_TMP/ca" "${TM_SERIALS[1]}" "$TM_TMP/pub01.pem" "$TM_TMP/other-serial.der"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TM_TMP/stray.key"
openssl pkey -in "$TM_TMP/stray.key" -pubout -out "$TM_TMP/stray.pem"
tm_profile_cert "$TM_TMP/ca" "$S1" "$TM_TMP/stray.pem" "$TM_TMP/stray.der"

write() { p11 --slot "$SLOT1" -l --pin "$TM_USER_PIN" --write-object "$1" --type cert 2>&1; }

# written without an ID: the module gives it the key's
out=$(write "$TM_TMP/good.der") || tm_fail "matching certificate refused: $out"
objects=$(p11 --slot "$SLOT1" -O --type cert)
grep -q "ID: *01" <<<"$objects" || tm_fail "certificate did not get the key's CKA_ID: $objects"
grep -q "label: *k1" <<<"$objects" || tm_fail "certificate did not get the key's label: $objects"

expect_refusal() { # file CKR
    local out
    if out=$(write "$1"); then tm_fail "$1 was written: $out"; fi
    grep -q "$2" <<<"$out" || tm_fail "$1: expected $2, got: $out"
}
expect_refusal "$TM_TMP/other-serial.der" CKR_ATTRIBUTE_VALUE_INVALID
expect_refusal "$TM_TMP/stray.der" CKR_KEY_HANDLE_INVALID
expect_refusal "$TM_TMP/second.der" CKR_DATA_INVALID
[ "$(p11 --slot "$SLOT1" -O --type cert | grep -c 'Certificate Object')" -eq 1 ] ||
    tm_fail "a refused certificate reached the token"

# no side doors: a stored certificate cannot be copied, nor its value or
# CKA_ID changed (its label can)
out=$("$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" cert-doors "$S1" "$TM_USER_PIN") ||
    tm_fail "cert-doors: $out"
grep -qx "copy rv 0x1b" <<<"$out" || tm_fail "C_CopyObject of a certificate not refused: $out"
grep -qx "set-id rv 0x10" <<<"$out" || tm_fail "CKA_ID of a certificate changed: $out"
grep -qx "set-value rv 0x10" <<<"$out" || tm_fail "CKA_VALUE of a certificate changed: $out"
grep -qx "set-label rv 0x0" <<<"$out" || tm_fail "CKA_LABEL of a certificate could not change: $out"
p11 --slot "$SLOT1" -O --type cert | tm_grepq "ID: *01" || tm_fail "certificate ID changed"

# each decision is in the audit log, with the token's serial and the reason
audit="$TM_TMP/audit.jsonl"
grep -q "\"serial\":\"$S1\",\"op\":\"certificate\",\"outcome\":\"written\"" "$audit" ||
    tm_fail "no audit record of the written certificate"
[ "$(grep -c '"op":"certificate","outcome":"refused"' "$audit")" -eq 6 ] ||
    tm_fail "expected 6 refusals (3 writes, copy, 2 changes) in the audit log"
grep -q "${TM_SERIALS[1]}" <(grep refused "$audit") || tm_fail "refusal reason lacks the other serial"
grep -q '"op":"keypair","outcome":"generated"' "$audit" || tm_fail "key generation not audited"
grep -qF "\"$TM_USER_PIN\"" "$audit" && tm_fail "a PIN reached the audit log"

# --- a second client library: GnuTLS p11tool ----------------------------------
# Not in the sanitizer build: there p11tool (and p11-kit list-modules) never
# exit, with no module of ours loaded too: p11-kit's destructor waits in
# freelocale for glibc's setlocale lock under the ASan runtime. The listing
# is checked in every other build.
if [ -n "${TM_SANITIZER_PRELOAD:-}" ]; then
    echo "p11tool listing skipped under the sanitizer runtime (p11-kit hangs at exit)"
    echo "PASS"
    exit 0
fi
tokens=$(p11tool --provider "$TM_MODULE" --list-tokens 2>/dev/null)
for s in "${TM_SERIALS[@]}"; do
    grep -q "serial=$s" <<<"$tokens" || tm_fail "p11tool does not list $s"
done
grep -q "token=NSS%20Certificate%20DB" <<<"$tokens" || tm_fail "p11tool does not list the NSS token"
echo "PASS"
