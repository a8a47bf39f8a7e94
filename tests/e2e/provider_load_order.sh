#!/bin/bash
# Issue 13, "safe in any load order": with tokenmint loaded before default,
# after it, and through the shipped config snippet, ordinary OpenSSL work
# with file keys (key generation, requests, signatures, TLS 1.2 and 1.3 with
# every EC group, mutual TLS) behaves as without tokenmint, and a token key
# serves TLS in each order. Loopback only, random ports, bounded waits.
. "$(dirname "$0")/provider_lib.sh"

tm_make_tokens 1
SERIAL=${TM_SERIALS[0]}
tm_keygen 1 EC:prime256v1 01
KEY_URI=$(tm_uri "$SERIAL" 01)
cd "$TM_TMP"

# Plain openssl (no tokenmint) makes the file-key material.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -subj /CN=ca -days 2 -out ca.pem 2>/dev/null
mkcert() { # NAME KEYFILE: a localhost certificate signed by ca.key
    openssl req -new -key "$2" -subj /CN=localhost -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -out "$1.pem" 2>/dev/null || tm_fail "certificate for $1"
}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.key 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
for k in p256 p384 rsa; do mkcert "$k" "$k.key"; done
# The token key's certificate: its public half, certified by the file CA.
openssl pkey -provider-path "$TM_PROVIDER_DIR" -provider default -provider tokenmint \
    -in "$KEY_URI" -pubout -out tok.pub || tm_fail "token public key"
openssl x509 -new -subj /CN=localhost -force_pubkey tok.pub -CA ca.pem -CAkey ca.key \
    -days 2 -out tok.pem 2>/dev/null ||
    openssl x509 -req -in p256.csr -force_pubkey tok.pub -CA ca.pem -CAkey ca.key \
        -CAcreateserial -days 2 -out tok.pem 2>/dev/null || tm_fail "token certificate"

FIRST=(-provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default)
LAST=(-provider-path "$TM_PROVIDER_DIR" -provider default -provider tokenmint)
# The shipped snippet, pointing at the build's provider.
sed -e "s|^#module = .*|module = $TM_PROVIDER_DIR/tokenmint.so|" \
    "$TM_SOURCE_DIR/conf/openssl-tokenmint.cnf" >snippet.cnf
grep -q '^module = ' snippet.cnf || tm_fail "snippet: no module line to point at the build"

# tls NAME SERVER-ARGS -- CLIENT-ARGS: one handshake (provider_lib.sh)
tls() {
    tm_tls "$ORDER" "$@"
}

check_order() {
    ORDER=$1
    local d="out.$ORDER"
    mkdir -p "$d"
    # key generation and requests with file keys
    for alg in "EC -pkeyopt ec_paramgen_curve:P-256" "EC -pkeyopt ec_paramgen_curve:P-384" \
        "RSA -pkeyopt rsa_keygen_bits:1024" "ED25519" "X25519" "RSA-PSS -pkeyopt rsa_keygen_bits:1024"; do
        # shellcheck disable=SC2086
        openssl genpkey "${PFX[@]}" -algorithm $alg -out "$d/gen.key" 2>"$d/err" ||
            tm_fail "$ORDER: genpkey $alg: $(head -2 "$d/err")"
        openssl pkey -in "$d/gen.key" -noout -check 2>/dev/null ||
            openssl pkey -in "$d/gen.key" -noout || tm_fail "$ORDER: genpkey $alg made no usable key"
    done
    openssl req "${PFX[@]}" -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/req.key" -subj /CN=x -out "$d/req.pem" 2>"$d/err" ||
        tm_fail "$ORDER: req -newkey ec: $(head -2 "$d/err")"
    openssl req -in "$d/req.pem" -verify -noout 2>/dev/null || tm_fail "$ORDER: req signature"
    openssl req "${PFX[@]}" -new -newkey rsa:1024 -nodes -keyout "$d/reqr.key" -subj /CN=x \
        -out "$d/reqr.pem" 2>"$d/err" || tm_fail "$ORDER: req -newkey rsa: $(head -2 "$d/err")"
    # file-key signatures, checked by plain openssl
    for k in p256 rsa; do
        openssl dgst "${PFX[@]}" -sha256 -sign "$k.key" -out "$d/$k.sig" ca.pem 2>"$d/err" ||
            tm_fail "$ORDER: dgst -sign $k: $(head -2 "$d/err")"
        openssl dgst -sha256 -verify <(openssl pkey -in "$k.key" -pubout) -signature "$d/$k.sig" \
            ca.pem >/dev/null || tm_fail "$ORDER: $k signature does not verify"
    done
    # file-key TLS
    tls p256-12 -cert p256.pem -key p256.key -tls1_2 -- -tls1_2
    tls p384-12 -cert p384.pem -key p384.key -tls1_2 -- -tls1_2
    tls rsa-12 -cert rsa.pem -key rsa.key -tls1_2 -- -tls1_2
    for g in P-256 P-384 P-521 X25519 ffdhe2048; do
        tls "p256-13-$g" -cert p256.pem -key p256.key -tls1_3 -- -tls1_3 -groups "$g"
    done
    tls mutual-12 -cert p256.pem -key p256.key -tls1_2 -Verify 1 -CAfile ca.pem -- \
        -tls1_2 -cert p256.pem -key p256.key
    tls mutual-13 -cert rsa.pem -key rsa.key -tls1_3 -Verify 1 -CAfile ca.pem -- \
        -tls1_3 -cert p384.pem -key p384.key
    # a token key serves TLS, with a file-key client in the same provider setup
    tls token-12 -cert tok.pem -key "$KEY_URI" -tls1_2 -- -tls1_2 -groups P-256
    tls token-13 -cert tok.pem -key "$KEY_URI" -tls1_3 -Verify 1 -CAfile ca.pem -- \
        -tls1_3 -cert p256.pem -key p256.key
    echo "ok: $ORDER"
}

PFX=("${FIRST[@]}")
check_order tokenmint-first
PFX=("${LAST[@]}")
check_order tokenmint-last
PFX=()
OPENSSL_CONF=$TM_TMP/snippet.cnf
export OPENSSL_CONF
check_order shipped-snippet
echo "PASS: provider load order"
