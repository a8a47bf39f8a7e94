#!/usr/bin/env bash
# Issue 13, decrypt and derive with token keys, through stock openssl in both
# load orders and the shipped snippet:
# - `pkeyutl -decrypt` with a token RSA key: PKCS#1 v1.5, OAEP (SHA-1) and no
#   padding, of data encrypted in software, and of data encrypted through the
#   provider with the token's public key; the plaintext must come back;
# - `pkeyutl -derive` with token EC keys (P-256, P-384): the secret must equal
#   the one plain openssl derives from the peer's private key;
# - `cms -decrypt -inkey pkcs11:` for RSA (PKCS#1 v1.5 and OAEP) and EC (ECDH
#   key agreement with the X9.63 KDF) recipients; `cms -sign` with token keys
#   (RSA PKCS#1 v1.5 and PSS, ECDSA) verified by plain openssl;
# - file keys in the same setup still decrypt and derive (forwarded);
# - refusals name the token, the key and the reason.
. "$(dirname "$0")/provider_lib.sh"
tm_make_tokens 1
S=${TM_SERIALS[0]}
cd "$TM_TMP"
# CKA_DECRYPT / CKA_DERIVE: pkcs11-tool sets them only when asked.
kp() { # ID KEYTYPE USAGE...
    local id=$1 kt=$2
    shift 2
    pkcs11-tool --module "$TM_P11_MODULE" --token-label tm-0001 --login --pin "$TM_USER_PIN" \
        --keypairgen --key-type "$kt" --id "$id" --label "key$id" "$@" >/dev/null 2>&1 ||
        tm_fail "pkcs11-tool keygen $kt"
}
kp 02 rsa:2048 --usage-decrypt --usage-sign
kp 03 EC:prime256v1 --usage-derive --usage-sign
kp 04 EC:secp384r1 --usage-derive --usage-sign
RSA=$(tm_uri "$S" 02)

openssl pkey "${PROV[@]}" -in "$RSA" -pubout -out rsa.pub || tm_fail "RSA public key"
for id in 03 04; do
    openssl pkey "${PROV[@]}" -in "$(tm_uri "$S" $id)" -pubout -out ec$id.pub ||
        tm_fail "EC public key $id"
done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out peer03.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out peer04.key
for id in 03 04; do openssl pkey -in peer$id.key -pubout -out peer$id.pub; done
head -c 32 /dev/urandom >msg
# raw RSA takes a message as long as the modulus, below it
{ printf '\0'; head -c 255 /dev/urandom; } >msg.raw

# certificates for CMS, self-signed by the token keys
openssl req -x509 -new "${PROV[@]}" -key "$RSA" -subj /CN=rsa -days 2 -out rsa.pem ||
    tm_fail "RSA certificate"
openssl req -x509 -new "${PROV[@]}" -key "$(tm_uri "$S" 03)" -subj /CN=ec -days 2 -out ec.pem ||
    tm_fail "EC certificate"
openssl cms -encrypt -binary -aes256 -in msg -out cms.rsa rsa.pem
openssl cms -encrypt -binary -aes256 -in msg -recip rsa.pem -keyopt rsa_padding_mode:oaep \
    -out cms.oaep
openssl cms -encrypt -binary -aes256 -in msg -out cms.ec ec.pem
# file keys
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out file.rsa 2>/dev/null
openssl pkeyutl -encrypt -inkey file.rsa -in msg -out file.ct

# same OUT A B: files A and B must be equal and not empty
same() {
    [ -s "$2" ] && cmp -s "$2" "$3" || tm_fail "$ORDER: $1: result differs from the software result"
}

check() {
    ORDER=$1
    local d="out.$ORDER" pad
    mkdir -p "$d"
    for pad in pkcs1 oaep; do
        openssl pkeyutl -encrypt -pubin -inkey rsa.pub -pkeyopt rsa_padding_mode:$pad -in msg \
            -out "$d/ct.$pad"
        openssl pkeyutl -decrypt "${PFX[@]}" -inkey "$RSA" -pkeyopt rsa_padding_mode:$pad \
            -in "$d/ct.$pad" -out "$d/pt.$pad" 2>"$d/err" ||
            tm_fail "$ORDER: decrypt $pad: $(cat "$d/err")"
        same "decrypt $pad" msg "$d/pt.$pad"
    done
    openssl pkeyutl -encrypt -pubin -inkey rsa.pub -pkeyopt rsa_padding_mode:none -in msg.raw \
        -out "$d/ct.raw"
    openssl pkeyutl -decrypt "${PFX[@]}" -inkey "$RSA" -pkeyopt rsa_padding_mode:none \
        -in "$d/ct.raw" -out "$d/pt.raw" 2>"$d/err" || tm_fail "$ORDER: raw decrypt: $(cat "$d/err")"
    same "raw decrypt" msg.raw "$d/pt.raw"
    # encryption with the token's public key object, through the provider
    openssl pkeyutl -encrypt "${PFX[@]}" -pubin -inkey "pkcs11:serial=$S;id=%02;type=public" \
        -in msg -out "$d/ct.tok" 2>"$d/err" || tm_fail "$ORDER: encrypt to token key: $(cat "$d/err")"
    openssl pkeyutl -decrypt "${PFX[@]}" -inkey "$RSA" -in "$d/ct.tok" -out "$d/pt.tok" ||
        tm_fail "$ORDER: decrypt of the provider's encryption"
    same "provider encrypt + decrypt" msg "$d/pt.tok"

    for id in 03 04; do
        openssl pkeyutl -derive "${PFX[@]}" -inkey "$(tm_uri "$S" $id)" -peerkey peer$id.pub \
            -out "$d/z$id" 2>"$d/err" || tm_fail "$ORDER: derive $id: $(cat "$d/err")"
        openssl pkeyutl -derive -inkey peer$id.key -peerkey ec$id.pub -out "$d/z$id.soft"
        same "ECDH key $id" "$d/z$id.soft" "$d/z$id"
    done
    # a peer on another curve is refused with a reason
    if openssl pkeyutl -derive "${PFX[@]}" -inkey "$(tm_uri "$S" 03)" -peerkey peer04.pub \
        -out "$d/zbad" 2>"$d/err"; then
        tm_fail "$ORDER: ECDH with a P-384 peer for a P-256 key succeeded"
    fi
    tm_grepq -i 'curve\|different\|mismatch' "$d/err" || tm_fail "$ORDER: curve mismatch: $(cat "$d/err")"

    local c
    for c in rsa oaep ec; do
        local key=$RSA cert=rsa.pem
        [ $c = ec ] && key=$(tm_uri "$S" 03) cert=ec.pem
        openssl cms -decrypt "${PFX[@]}" -binary -in "cms.$c" -inkey "$key" -recip "$cert" \
            -out "$d/cms.$c" 2>"$d/err" || tm_fail "$ORDER: cms -decrypt $c: $(cat "$d/err")"
        same "cms -decrypt $c" msg "$d/cms.$c"
    done

    for c in rsa pss ec; do
        local key=$RSA cert=rsa.pem opt=()
        [ $c = ec ] && key=$(tm_uri "$S" 03) cert=ec.pem
        [ $c = pss ] && opt=(-keyopt rsa_padding_mode:pss)
        openssl cms -sign "${PFX[@]}" -nodetach -binary -in msg -signer "$cert" -inkey "$key" "${opt[@]}" \
            -outform DER -out "$d/signed.$c" 2>"$d/err" || tm_fail "$ORDER: cms -sign $c: $(cat "$d/err")"
        openssl cms -verify -binary -inform DER -in "$d/signed.$c" -CAfile "$cert" -purpose any \
            -out "$d/verified.$c" 2>"$d/err" || tm_fail "$ORDER: cms -verify $c: $(cat "$d/err")"
        same "cms -sign $c" msg "$d/verified.$c"
    done
    openssl cms -cmsout -print -inform DER -in "$d/signed.pss" | tm_grepq 'rsassaPss' ||
        tm_fail "$ORDER: cms -sign pss: not a PSS signature"

    # file keys beside the provider
    openssl pkeyutl -decrypt "${PFX[@]}" -inkey file.rsa -in file.ct -out "$d/file.pt" ||
        tm_fail "$ORDER: file RSA key decrypt"
    same "file RSA key decrypt" msg "$d/file.pt"
    openssl pkeyutl -derive "${PFX[@]}" -inkey peer03.key -peerkey ec03.pub -out "$d/file.z" ||
        tm_fail "$ORDER: file EC key derive"
    same "file EC key derive" "$d/z03" "$d/file.z"
    echo "ok: $ORDER"
}

PFX=(-provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default)
check tokenmint-first
PFX=(-provider-path "$TM_PROVIDER_DIR" -provider default -provider tokenmint)
check tokenmint-last
sed -e "s|^#module = .*|module = $TM_PROVIDER_DIR/tokenmint.so|" \
    "$TM_SOURCE_DIR/conf/openssl-tokenmint.cnf" >snippet.cnf
PFX=()
OPENSSL_CONF=$TM_TMP/snippet.cnf check shipped-snippet

# Refusals: a key without CKA_DERIVE, and a token that lacks OAEP with SHA-256
# (SoftHSM2 has OAEP with SHA-1 only) either decrypts or says what it lacks.
kp 05 EC:prime256v1 --usage-sign
if openssl pkeyutl -derive "${PROV[@]}" -inkey "$(tm_uri "$S" 05)" -peerkey peer03.pub \
    -out z05 2>err05; then
    tm_fail "ECDH with a key whose CKA_DERIVE is false succeeded"
fi
tm_grepq "token $S could not derive .*key05.*CKR_" err05 || tm_fail "derive refusal: $(cat err05)"
openssl pkeyutl -encrypt -pubin -inkey rsa.pub -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -in msg -out ct.256
if openssl pkeyutl -decrypt "${PROV[@]}" -inkey "$RSA" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -in ct.256 -out pt.256 2>err256; then
    same "OAEP SHA-256" msg pt.256
else
    tm_grepq "token $S refused RSA OAEP with SHA256.*key02" err256 ||
        tm_fail "OAEP SHA-256 refusal does not say what the token lacks: $(cat err256)"
fi
# a pin-value never shows up in messages
cat err256 err05 | tm_grepq "pin-value=$TM_USER_PIN" && tm_fail "a message shows the PIN"
echo "PASS: provider decrypt and derive"
