#!/usr/bin/env bash
# Issue 13, "store search": `openssl storeutl` with the criteria OSSL_STORE
# has, against certificates and keys on tokens:
# - -subject: the one certificate with that subject (compared as a name, so
#   a differently encoded CKA_SUBJECT does not matter), over all tokens the
#   URI selects; with -keys, the private key that shares its CKA_ID;
# - -issuer with -serial: the one certificate with that serial;
# - -fingerprint with -sha256 / -sha1: the certificate with that fingerprint;
# - -alias: the objects with that CKA_LABEL;
# - a search nothing meets finds nothing and says so.
# (storeutl -fingerprint without a digest option crashes inside OpenSSL 3.0's
# OSSL_STORE_find before any provider is asked: not tested.)
. "$(dirname "$0")/provider_lib.sh"
tm_make_tokens 2
S=${TM_SERIALS[0]}
S2=${TM_SERIALS[1]}
cd "$TM_TMP"
tm_keygen 1 EC:prime256v1 01
tm_keygen 1 rsa:2048 02
tm_keygen 2 EC:prime256v1 03
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -subj "/O=tokenmint test/CN=test ca" -days 2 -out ca.pem
put_cert() { # TOKEN-INDEX SERIAL ID SUBJECT
    openssl pkey "${PROV[@]}" -in "$(tm_uri "$2" "$3")" -pubout -out "$3.pub" ||
        tm_fail "public key $3"
    openssl req -new -key ca.key -subj "$4" -out "$3.csr" 2>/dev/null
    openssl x509 -req -in "$3.csr" -force_pubkey "$3.pub" -CA ca.pem -CAkey ca.key \
        -set_serial "0x$3$3" -days 2 -outform DER -out "$3.der" 2>/dev/null || tm_fail "cert $3"
    pkcs11-tool --module "$TM_P11_MODULE" --token-label "$(printf 'tm-%04d' "$1")" --login \
        --pin "$TM_USER_PIN" --write-object "$3.der" --type cert --id "$3" --label "key$3" \
        >/dev/null 2>&1 || tm_fail "write cert $3"
}
put_cert 1 "$S" 01 "/CN=dev one"
put_cert 1 "$S" 02 "/CN=dev two"
put_cert 2 "$S2" 03 "/O=elsewhere/CN=dev three"
ALL="pkcs11:?pin-value=$TM_USER_PIN"
ONE="pkcs11:serial=$S?pin-value=$TM_USER_PIN"

# find WHAT EXPECT-COUNT STOREUTL-ARGS...: the search must succeed and find
# exactly EXPECT-COUNT objects; the listing goes to find.out.
find() {
    local what=$1 want=$2
    shift 2
    openssl storeutl "${PROV[@]}" -noout -text "$@" >find.out 2>find.err ||
        tm_fail "$what: $(cat find.err)"
    tm_grepq "^Total found: $want\$" find.out ||
        tm_fail "$what: expected $want object(s): $(grep -E '^[0-9]+:|Subject:|Total' find.out)"
}
find "by subject" 1 -certs -subject "/CN=dev one" "$ONE"
tm_grepq 'Subject: CN *= *dev one' find.out || tm_fail "by subject: another certificate"
find "by subject, every token" 1 -certs -subject "/O=elsewhere/CN=dev three" "$ALL"
tm_grepq 'Subject: O *= *elsewhere, CN *= *dev three' find.out || tm_fail "subject on token 2"
find "by subject, its private key" 1 -keys -subject "/CN=dev two" "$ONE"
# written out, a token key is its URI
openssl storeutl "${PROV[@]}" -keys -subject "/CN=dev two" "$ONE" >key.out 2>&1 ||
    tm_fail "by subject, key: $(cat key.out)"
tm_grepq '^pkcs11:.*id=%02;.*type=private' key.out || tm_fail "by subject: not dev two's key: $(cat key.out)"
find "by issuer and serial" 1 -certs -issuer "/O=tokenmint test/CN=test ca" -serial 0x0202 "$ALL"
tm_grepq 'Subject: CN *= *dev two' find.out || tm_fail "by issuer and serial: another certificate"
fp=$(openssl x509 -inform DER -in 03.der -noout -fingerprint -sha256 | cut -d= -f2)
find "by SHA-256 fingerprint" 1 -certs -sha256 -fingerprint "$fp" "$ALL"
tm_grepq 'dev three' find.out || tm_fail "by fingerprint: another certificate"
fp=$(openssl x509 -inform DER -in 01.der -noout -fingerprint -sha1 | cut -d= -f2)
find "by SHA-1 fingerprint" 1 -certs -sha1 -fingerprint "$fp" "$ALL"
tm_grepq 'dev one' find.out || tm_fail "by SHA-1 fingerprint: another certificate"
find "by alias" 3 -alias key02 "$ONE"
tm_grepq 'dev two' find.out || tm_fail "by alias: not key02's certificate"
tm_grepq 'dev one' find.out && tm_fail "by alias: key01's certificate too"
find "by alias, certificates" 1 -certs -alias key03 "$ALL"

# nothing meets the search: nothing is found, and the message says so
for q in "-subject /CN=nobody" "-issuer /O=tokenmint\ test/CN=test\ ca -serial 0x0909"; do
    eval "set -- $q"
    openssl storeutl "${PROV[@]}" -noout "$@" "$ONE" >none.out 2>none.err || true
    tm_grepq '^Total found: 0$' none.out || tm_fail "search $q found something"
    tm_grepq 'no .* matches .* and the search criteria' none.err ||
        tm_fail "no message for an empty search $q: $(cat none.err)"
    tm_grepq "pin-value=$TM_USER_PIN" none.err && tm_fail "the message shows the PIN"
done
echo "PASS: provider store search"
