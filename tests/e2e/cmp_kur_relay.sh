#!/usr/bin/env bash
# Issue 12: CMP kur through `tokenmint relay`, with stock `openssl cmp -cmd
# kur` (the old key on the token, through the tokenmint provider). The relay
# cannot sign a kur with the token's old key, so it checks the request (the
# same checks as for p10cr and rr: signed by the token's current certificate,
# which oldCertID names and which chains to --trusted; that token in
# --serial-range; the new certificate's template naming the same token) and
# forwards its DER unchanged to `ca serve`, and the CA's answer (kup, then
# the pkiConf for the certConf) back unchanged. Refused by the relay, with
# the reason in its log, and never seen by the CA: a kur signed with another
# token's certificate, and one for a token outside the range. On the old
# code the relay refused every kur ("p10cr only").
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]}
"$T" issue --all --ca "$CA" --pin-source "$PIN" --json >issue.json || { cat issue.json; tm_fail "issue"; }
paste <("$TJ" get serial <issue.json) <("$TJ" get certificate_serial <issue.json) \
    <("$TJ" get key_id <issue.json) >tok.tsv
cert_sn() { awk -F'\t' -v s="$1" '$1 == s {print $2}' tok.tsv; }
uri() { echo "pkcs11:serial=$1;id=$(sed 's/../%&/g' <<<"$2");type=private;pin-value=$TM_USER_PIN"; }
old_uri() { uri "$1" "$(awk -F'\t' -v s="$1" '$1 == s {print $3}' tok.tsv)"; }
C0=$(cert_sn "$S0") C1=$(cert_sn "$S1")
cp "$CA/newcerts/$C0.pem" c0.pem
cp "$CA/newcerts/$C1.pem" c1.pem
status_of() { "$T" ca show "$CA" "$1" | awk -F': *' '/^status/ {print $2}'; }

KEY=$(awk -F' *= *' '/^private_key/ {print $2}' "$CA/ca.cnf")
for n in srv ra; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key \
        -subj "/CN=tokenmint $n" -out $n.csr 2>/dev/null
    openssl x509 -req -in $n.csr -CA "$CA/ca.pem" -CAkey "$KEY" -CAcreateserial -days 2 \
        -extfile <(printf 'keyUsage=critical,digitalSignature\n') -out $n.pem 2>/dev/null ||
        tm_fail "cannot make the $n certificate"
done
cmp_start serve "$T" ca serve "$CA" --trusted "$CA/ca.pem" --srv-cert srv.pem --srv-key srv.key
SERVE_PID=$CMP_PID
CAURL="http://127.0.0.1:$CMP_PORT/pkix/"
# the relay serves token 0 only
cmp_start relay "$T" relay --upstream "$CAURL" --upstream-cert ra.pem --upstream-key ra.key \
    --upstream-srvcert srv.pem --trusted "$CA/ca.pem" --srv-cert ra.pem --srv-key ra.key \
    --serial-range "$S0-$S0"
RELAY_PID=$CMP_PID

NEWID=5e5e5e5e5e5e5e01
for l in tm-0001 tm-0002; do
    pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label $l --login --pin "$TM_USER_PIN" \
        --keypairgen --key-type EC:prime256v1 --id "$NEWID" --label tokenmint:auth >/dev/null 2>&1 ||
        tm_fail "pkcs11-tool keygen on $l"
done
printf '[kur_exts]\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' >kur.cnf
kur() { # signer-cert signer-key-uri new-key-uri out log [openssl cmp args]
    openssl cmp -provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default \
        -config kur.cnf -reqexts kur_exts -cmd kur -server "127.0.0.1:$CMP_PORT/pkix/" \
        -trusted "$CA/ca.pem" -cert "$1" -key "$2" -newkey "$3" -certout "$4" "${@:6}" >"$5" 2>&1
}
lines() { wc -l <"$CA/index.txt"; }
before=$(lines)

# token 0's certificate updated with token 1's signature: refused by the relay
kur c1.pem "$(old_uri "$S1")" "$(uri "$S0" "$NEWID")" x.pem other.log -oldcert c0.pem &&
    { cat other.log; tm_fail "the relay must refuse a kur signed with another token's certificate"; }
grep -q "refused a request: .*signed with another certificate than the one its oldCertID names" relay.log ||
    { cat relay.log; tm_fail "the relay should log why (another certificate)"; }
# token 1 is outside the relay's range
kur c1.pem "$(old_uri "$S1")" "$(uri "$S1" "$NEWID")" x.pem out.log &&
    { cat out.log; tm_fail "the relay must refuse a kur for a token outside its range"; }
grep -q "refused a request: relay: token serial $S1 is outside the serial range" relay.log ||
    { cat relay.log; tm_fail "the relay should log why (serial range)"; }
[ "$(lines)" -eq "$before" ] || tm_fail "refused kurs must not reach the CA"
grep -q "(kur)" serve.log && { cat serve.log; tm_fail "the CA must not have seen a refused kur"; }
[ "$(status_of "$C0")" = valid ] && [ "$(status_of "$C1")" = valid ] || tm_fail "c0 and c1 stay valid"

# token 0's own kur through the relay: forwarded, issued by the CA
kur c0.pem "$(old_uri "$S0")" "$(uri "$S0" "$NEWID")" new0.pem kur.log -rspout kup.der,conf.der ||
    { cat kur.log relay.log serve.log; tm_fail "openssl cmp -cmd kur through the relay"; }
openssl verify -CAfile "$CA/ca.pem" new0.pem >/dev/null || tm_fail "the new certificate does not verify"
profile_check new0.pem
openssl x509 -in new0.pem -noout -subject | tm_grepq "serialNumber *= *$S0" || tm_fail "the new certificate names token $S0"
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0001 --read-object --type pubkey \
    --id "$NEWID" -o newpub.der >/dev/null 2>&1 || tm_fail "cannot read the new public key"
[ "$(openssl pkey -pubin -inform DER -in newpub.der -outform PEM)" = "$(openssl x509 -in new0.pem -noout -pubkey)" ] ||
    tm_fail "the new certificate does not certify the new key on the token"
grep -q "(kur)" serve.log || { cat serve.log; tm_fail "the CA should log the kur it issued"; }
[ "$(status_of "$C0")" = superseded ] || { "$T" ca show "$CA" "$C0"; tm_fail "the old certificate should be superseded"; }
N0=$(openssl x509 -in new0.pem -noout -serial | cut -d= -f2)
[ "$(status_of "$N0")" = valid ] || tm_fail "the new certificate is valid at the CA"
# the answer is the CA's own, unchanged: signed by the CA's CMP signer, not the relay's
# (a relay's own kup would carry the relay's name, "tokenmint ra")
[ -s kup.der ] && [ -s conf.der ] || tm_fail "openssl cmp saved no kup and pkiConf"
for m in kup conf; do
    tm_grepq -a "tokenmint srv" <$m.der || tm_fail "the $m answer should be the CA's (signed by its CMP signer)"
    tm_grepq -a "tokenmint ra" <$m.der && tm_fail "the $m answer must not be the relay's own"
done
cmp_stop "$RELAY_PID"
cmp_stop "$SERVE_PID"
echo "PASS: openssl cmp -cmd kur through the relay (forwarded unchanged); another token's signature and an out-of-range token refused by the relay"
