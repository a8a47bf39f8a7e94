#!/usr/bin/env bash
# Issue 13, "key generation on a token through stock openssl, reused by
# tokenmint issue":
# - `openssl genpkey -algorithm EC -pkeyopt group:P-256 -pkeyopt
#   pkcs11_uri:pkcs11:serial=S;object=tokenmint:auth` makes the pair on the
#   token (tokenmint first, and last with -propquery provider=tokenmint); the
#   output file holds the key's pkcs11: URI (no PIN), which openssl loads
#   back; the token holds a sensitive, non-extractable key;
# - `tokenmint issue` then takes that pair as the token's free key pair: the
#   certificate certifies the generated public key and no second pair is made;
# - RSA with pkcs11_key_usage:sign,decrypt decrypts; Ed25519 and P-384 work;
# - refusals: an id already taken, a URI naming two tokens, an unknown usage,
#   an unknown curve, an encrypted output of a token key; each says why.
. "$(dirname "$0")/provider_lib.sh"
: "${TM_TOOL:?}"
tm_make_tokens 3
S=${TM_SERIALS[0]}
S2=${TM_SERIALS[1]}
S3=${TM_SERIALS[2]}
cd "$TM_TMP"
LAST=(-provider-path "$TM_PROVIDER_DIR" -provider default -provider tokenmint)
PIN_Q="pin-value=$TM_USER_PIN"
objects() { # LABEL-INDEX: the token's object list
    pkcs11-tool --module "$SOFTHSM" --token-label "$(printf 'tm-%04d' "$1")" --login \
        --pin "$TM_USER_PIN" -O 2>/dev/null
}

openssl genpkey "${PROV[@]}" -algorithm EC -pkeyopt group:P-256 \
    -pkeyopt "pkcs11_uri:pkcs11:serial=$S;object=tokenmint:auth;$PIN_Q" -out gen.uri 2>err ||
    tm_fail "genpkey on the token: $(cat err)"
cat gen.uri
tm_grepq "^pkcs11:.*serial=$S.*object=tokenmint%3Aauth.*type=private" gen.uri ||
    tm_fail "genpkey did not write the key's URI"
tm_grepq 'pin' gen.uri && tm_fail "the written URI holds the PIN"
objects 1 >objs1
[ "$(grep -c 'Private Key Object; EC' objs1)" -eq 1 ] || tm_fail "no EC private key on the token"
openssl pkey "${PROV[@]}" -in "$(cat gen.uri)?$PIN_Q" -pubout -out gen.pub ||
    tm_fail "the written URI does not load"
# the private key is sensitive and not extractable
grep -A8 'Private Key Object; EC' objs1 | tm_grepq 'Access: *sensitive.*never extractable' ||
    tm_fail "the generated private key is not sensitive and non-extractable: $(cat objs1)"

# tokenmint last: the key type goes to default unless the query names tokenmint
openssl genpkey "${LAST[@]}" -propquery provider=tokenmint -algorithm EC -pkeyopt group:P-384 \
    -pkeyopt "pkcs11_uri:pkcs11:serial=$S3;object=p384;$PIN_Q" -out p384.uri 2>err ||
    tm_fail "genpkey P-384, tokenmint last: $(cat err)"
openssl genpkey "${PROV[@]}" -algorithm ED25519 \
    -pkeyopt "pkcs11_uri:pkcs11:serial=$S3;object=ed;$PIN_Q" -out ed.uri 2>err ||
    tm_fail "genpkey Ed25519: $(cat err)"
openssl genpkey "${PROV[@]}" -algorithm RSA -pkeyopt bits:2048 -pkeyopt pkcs11_key_usage:sign,decrypt \
    -pkeyopt "pkcs11_uri:pkcs11:serial=$S3;object=rsa;id=%72;$PIN_Q" -out rsa.uri 2>err ||
    tm_fail "genpkey RSA: $(cat err)"
for k in p384 ed rsa; do
    openssl pkey "${PROV[@]}" -in "$(cat $k.uri)?$PIN_Q" -pubout -out $k.pub ||
        tm_fail "$k: the written URI does not load"
done
head -c 32 /dev/urandom >msg
openssl pkeyutl -encrypt -pubin -inkey rsa.pub -in msg -out msg.ct
openssl pkeyutl -decrypt "${PROV[@]}" -inkey "$(cat rsa.uri)?$PIN_Q" -in msg.ct -out msg.pt ||
    tm_fail "the generated RSA key does not decrypt"
cmp -s msg msg.pt || tm_fail "decryption with the generated key differs"
echo "ok: generated P-256, P-384, Ed25519, RSA"

# refusals
refuse() { # WHAT PATTERN GENPKEY-ARGS...
    local what=$1 pat=$2
    shift 2
    if openssl genpkey "$@" -out refused.out 2>err; then tm_fail "$what: succeeded"; fi
    tm_grepq "$pat" err || tm_fail "$what: no reason given: $(cat err)"
}
refuse "id taken" "already has an object with this id" "${PROV[@]}" -algorithm RSA \
    -pkeyopt "pkcs11_uri:pkcs11:serial=$S3;id=%72;$PIN_Q"
refuse "two tokens" "matches [2-9] tokens" "${PROV[@]}" -algorithm EC -pkeyopt group:P-256 \
    -pkeyopt "pkcs11_uri:pkcs11:model=SoftHSM%20v2;$PIN_Q"
refuse "unknown usage" "pkcs11_key_usage 'wrap'" "${PROV[@]}" -algorithm EC -pkeyopt group:P-256 \
    -pkeyopt pkcs11_key_usage:sign,wrap -pkeyopt "pkcs11_uri:pkcs11:serial=$S2;$PIN_Q"
refuse "unknown curve" "curve 'secp256k1'" "${PROV[@]}" -algorithm EC -pkeyopt group:secp256k1 \
    -pkeyopt "pkcs11_uri:pkcs11:serial=$S2;$PIN_Q"
refuse "encrypted token key" "cannot be written encrypted" "${PROV[@]}" -algorithm EC \
    -pkeyopt group:P-256 -aes-256-cbc -pass pass:x -pkeyopt "pkcs11_uri:pkcs11:serial=$S2;$PIN_Q"
cat err | tm_grepq "$TM_USER_PIN" && tm_fail "a message shows the PIN"
# nothing was made by the refused runs but the encrypted one's key (made, then not written)
[ "$(objects 2 | grep -c 'Private Key Object')" -le 1 ] || tm_fail "refused runs made keys"
echo "ok: refusals"

# tokenmint issue takes the generated pair as the free key pair
export TOKENMINT_MODULE=$TM_MODULE TOKENMINT_BACKEND=$SOFTHSM TOKENMINT_PROVIDER_DIR=$TM_PROVIDER_DIR
export TOKENMINT_STATE_DIR=$TM_TMP/state
unset TOKENMINT_CONF TOKENMINT_TOOL_CONF
echo "$TM_USER_PIN" >pin
chmod 600 pin
"$TM_TOOL" ca init ca >/dev/null || tm_fail "ca init"
"$TM_TOOL" issue --token "pkcs11:serial=$S" --ca ca --pin-source pin --json >issue.json 2>issue.err ||
    tm_fail "issue: $(cat issue.json issue.err)"
tm_grepq '"key_reused":true' issue.json || tm_fail "issue did not reuse the generated key: $(cat issue.json)"
tm_grepq '"key_generated":true' issue.json && tm_fail "issue made a second key pair"
objects 1 >objs1b
[ "$(grep -c 'Private Key Object' objs1b)" -eq 1 ] || tm_fail "the token holds more than one key now"
pkcs11-tool --module "$SOFTHSM" --token-label tm-0001 --read-object --type cert \
    --label tokenmint:auth -o cert.der >/dev/null 2>&1 ||
    pkcs11-tool --module "$SOFTHSM" --token-label tm-0001 --read-object --type cert -o cert.der \
        >/dev/null 2>&1 || tm_fail "no certificate on the token"
openssl x509 -inform DER -in cert.der -pubkey -noout >cert.pub
cmp -s cert.pub gen.pub || tm_fail "the certificate does not certify the generated key"
echo "PASS: provider keygen"
