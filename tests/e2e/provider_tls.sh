#!/usr/bin/env bash
# Issue 13, "TLS with token keys": stock s_server/s_client with keys on a
# token, in both load orders and through the shipped snippet:
# - ECDSA P-384 server, TLS 1.2 and 1.3;
# - RSA server: TLS 1.2 with PKCS#1 v1.5 and with PSS signatures, TLS 1.3
#   (PSS), and the TLS 1.2 RSA key exchange (AES128-SHA256: the token
#   decrypts the premaster secret);
# - Ed25519 server, TLS 1.3 and 1.2;
# - mutual TLS with a token client key (P-384) against a file-key server.
# (P-256 token keys serve TLS in provider_load_order.sh.)
. "$(dirname "$0")/provider_lib.sh"
tm_make_tokens 1
S=${TM_SERIALS[0]}
cd "$TM_TMP"
kp() { # ID KEYTYPE USAGE...
    local id=$1 kt=$2
    shift 2
    pkcs11-tool --module "$SOFTHSM" --token-label tm-0001 --login --pin "$TM_USER_PIN" \
        --keypairgen --key-type "$kt" --id "$id" --label "key$id" "$@" >/dev/null 2>&1 ||
        tm_fail "pkcs11-tool keygen $kt"
}
kp 02 EC:secp384r1 --usage-sign
kp 03 rsa:2048 --usage-sign --usage-decrypt
kp 04 EC:edwards25519 --usage-sign

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -subj /CN=ca -days 2 -out ca.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out file.key 2>/dev/null
openssl req -new -key file.key -subj /CN=localhost -out file.csr 2>/dev/null
openssl x509 -req -in file.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out file.pem \
    2>/dev/null || tm_fail "file certificate"
# a certificate for each token key: its public half, certified by the file CA
for id in 02 03 04; do
    openssl pkey "${PROV[@]}" -in "$(tm_uri "$S" $id)" -pubout -out tok$id.pub ||
        tm_fail "token public key $id"
    openssl x509 -req -in file.csr -force_pubkey tok$id.pub -CA ca.pem -CAkey ca.key \
        -CAcreateserial -days 2 -out tok$id.pem 2>/dev/null || tm_fail "token certificate $id"
done
P384=$(tm_uri "$S" 02)
RSA=$(tm_uri "$S" 03)
ED=$(tm_uri "$S" 04)

check() {
    local o=$1
    tm_tls "$o" p384-12 -cert tok02.pem -key "$P384" -tls1_2 -- -tls1_2
    tm_tls "$o" p384-13 -cert tok02.pem -key "$P384" -tls1_3 -- -tls1_3
    tm_tls "$o" rsa-12-pkcs1 -cert tok03.pem -key "$RSA" -tls1_2 -- -tls1_2 \
        -sigalgs rsa_pkcs1_sha256
    tm_tls "$o" rsa-12-pss -cert tok03.pem -key "$RSA" -tls1_2 -- -tls1_2 \
        -sigalgs rsa_pss_rsae_sha256
    tm_tls "$o" rsa-13 -cert tok03.pem -key "$RSA" -tls1_3 -- -tls1_3
    tm_tls "$o" rsa-kex -cert tok03.pem -key "$RSA" -tls1_2 -cipher AES128-SHA256 -- -tls1_2 \
        -cipher AES128-SHA256
    tm_grepq 'AES128-SHA256' cli.rsa-kex.log || tm_fail "$o: RSA key exchange: another cipher"
    tm_tls "$o" ed25519-13 -cert tok04.pem -key "$ED" -tls1_3 -- -tls1_3
    tm_tls "$o" ed25519-12 -cert tok04.pem -key "$ED" -tls1_2 -- -tls1_2
    tm_tls "$o" mutual-13 -cert file.pem -key file.key -tls1_3 -Verify 1 -CAfile ca.pem -- \
        -tls1_3 -cert tok02.pem -key "$P384"
    tm_tls "$o" mutual-12 -cert file.pem -key file.key -tls1_2 -Verify 1 -CAfile ca.pem -- \
        -tls1_2 -cert tok03.pem -key "$RSA"
    echo "ok: $o"
}

PFX=(-provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default)
check tokenmint-first
PFX=(-provider-path "$TM_PROVIDER_DIR" -provider default -provider tokenmint)
check tokenmint-last
sed -e "s|^#module = .*|module = $TM_PROVIDER_DIR/tokenmint.so|" \
    "$TM_SOURCE_DIR/conf/openssl-tokenmint.cnf" >snippet.cnf
PFX=()
OPENSSL_CONF=$TM_TMP/snippet.cnf check shipped-snippet
echo "PASS: provider TLS with token keys"
