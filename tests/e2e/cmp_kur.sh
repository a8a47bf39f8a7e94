#!/usr/bin/env bash
# Issue 12: CMP kur and genm against `ca serve`, with stock `openssl cmp`.
#   kur: a new key pair on the same token (made with pkcs11-tool), the
#   request signed with the old certificate's key (on the token, through the
#   tokenmint provider): the new certificate names the same token, certifies
#   the new key, and the old one is superseded at the CA. A kur signed with
#   another token's certificate, one for a revoked certificate, and a kur of
#   the superseded certificate to yet another key are refused; the same kur
#   again (its answer lost) gets the certificate already issued, nothing new.
#   A kur to the same key (a renewal): the new certificate certifies the old
#   key, the old one is superseded in the same transaction, one stays valid.
#   genm: the CA certificate (id-it-caCerts, RFC 9483 4.3.1).
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
S0=${TM_SERIALS[0]} S1=${TM_SERIALS[1]} S2=${TM_SERIALS[2]}
"$T" issue --all --ca "$CA" --pin-source "$PIN" --json >issue.json || { cat issue.json; tm_fail "issue"; }
paste <("$TJ" get serial <issue.json) <("$TJ" get certificate_serial <issue.json) \
    <("$TJ" get key_id <issue.json) >tok.tsv
cert_sn() { awk -F'\t' -v s="$1" '$1 == s {print $2}' tok.tsv; }
uri() { echo "pkcs11:serial=$1;id=$(sed 's/../%&/g' <<<"$2");type=private;pin-value=$TM_USER_PIN"; }
old_uri() { uri "$1" "$(awk -F'\t' -v s="$1" '$1 == s {print $3}' tok.tsv)"; }
C0=$(cert_sn "$S0") C1=$(cert_sn "$S1") C2=$(cert_sn "$S2")
cp "$CA/newcerts/$C0.pem" c0.pem
cp "$CA/newcerts/$C1.pem" c1.pem
cp "$CA/newcerts/$C2.pem" c2.pem
status_of() { "$T" ca show "$CA" "$1" | awk -F': *' '/^status/ {print $2}'; }

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
    -subj "/CN=tokenmint CMP" -out srv.csr 2>/dev/null
KEY=$(awk -F' *= *' '/^private_key/ {print $2}' "$CA/ca.cnf")
openssl x509 -req -in srv.csr -CA "$CA/ca.pem" -CAkey "$KEY" -CAcreateserial -days 2 \
    -extfile <(printf 'keyUsage=critical,digitalSignature\n') -out srv.pem 2>/dev/null ||
    tm_fail "cannot make the CMP signer"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET" --trusted "$CA/ca.pem" \
    --srv-cert srv.pem --srv-key srv.key

# the new key pair on token 0, next to the old one
NEWID=5e5e5e5e5e5e5e01
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0001 --login --pin "$TM_USER_PIN" \
    --keypairgen --key-type EC:prime256v1 --id "$NEWID" --label tokenmint:auth >/dev/null 2>&1 ||
    tm_fail "pkcs11-tool keygen"
printf '[kur_exts]\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' >kur.cnf
kur() { # signer-cert signer-key-uri new-key-uri out log [openssl cmp args]
    openssl cmp -provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default \
        -config kur.cnf -reqexts kur_exts -cmd kur -server "127.0.0.1:$CMP_PORT/pkix/" \
        -trusted "$CA/ca.pem" -cert "$1" -key "$2" -newkey "$3" -certout "$4" "${@:6}" >"$5" 2>&1
}

# an update of token 0's certificate signed with token 1's: refused
kur c1.pem "$(old_uri "$S1")" "$(uri "$S0" "$NEWID")" x.pem bad.log -oldcert c0.pem &&
    { cat bad.log; tm_fail "a kur signed with another certificate must be refused"; }
grep -q "signed with another certificate than the one its oldCertID names" serve.log ||
    { cat serve.log; tm_fail "the refusal should say why"; }
[ "$(status_of "$C0")" = valid ] && [ "$(status_of "$C1")" = valid ] || tm_fail "c0 and c1 stay valid"

kur c0.pem "$(old_uri "$S0")" "$(uri "$S0" "$NEWID")" new0.pem kur.log ||
    { cat kur.log; cat serve.log; tm_fail "openssl cmp -cmd kur"; }
openssl verify -CAfile "$CA/ca.pem" new0.pem >/dev/null || tm_fail "the new certificate does not verify"
profile_check new0.pem
openssl x509 -in new0.pem -noout -subject | tm_grepq "serialNumber *= *$S0" || tm_fail "the new certificate names token $S0"
[ "$(openssl x509 -in new0.pem -noout -pubkey)" != "$(openssl x509 -in c0.pem -noout -pubkey)" ] ||
    tm_fail "the new certificate certifies the old key"
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0001 --read-object --type pubkey \
    --id "$NEWID" -o newpub.der >/dev/null 2>&1 || tm_fail "cannot read the new public key"
[ "$(openssl pkey -pubin -inform DER -in newpub.der -outform PEM)" = "$(openssl x509 -in new0.pem -noout -pubkey)" ] ||
    tm_fail "the new certificate does not certify the new key on the token"
N0=$(openssl x509 -in new0.pem -noout -serial | cut -d= -f2)
[ "$(status_of "$C0")" = superseded ] || { "$T" ca show "$CA" "$C0"; tm_fail "the old certificate should be superseded"; }
[ "$(status_of "$N0")" = valid ] || tm_fail "the new certificate is valid at the CA"
grep -q "(kur)" serve.log || { cat serve.log; tm_fail "the kur should be in the access log"; }
# the new certificate goes onto the token; verify finds both, the CA has one valid
"$T" write --ca "$CA" --pin-source "$PIN" new0.pem >write.out || { cat write.out; tm_fail "write the kur certificate"; }
[ "$("$T" ca list "$CA" --token "pkcs11:serial=$S0" --status valid | wc -l)" -eq 1 ] || tm_fail "one valid certificate for token 0"

# the same kur again (as after a lost answer): the certificate issued for it
NREC=$("$T" ca list "$CA" | wc -l)
kur c0.pem "$(old_uri "$S0")" "$(uri "$S0" "$NEWID")" again.pem again.log ||
    { cat again.log; tm_fail "the same kur again should get the certificate issued for it"; }
[ "$(openssl x509 -in again.pem -noout -serial | cut -d= -f2)" = "$N0" ] ||
    tm_fail "the repeated kur got another certificate than $N0"
[ "$("$T" ca list "$CA" | wc -l)" -eq "$NREC" ] || tm_fail "the repeated kur made a new record"
# the superseded certificate is not updated to yet another key; a revoked one neither
OTHERID=5e5e5e5e5e5e5e02
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0001 --login --pin "$TM_USER_PIN" \
    --keypairgen --key-type EC:prime256v1 --id "$OTHERID" --label tokenmint:auth >/dev/null 2>&1 ||
    tm_fail "pkcs11-tool keygen (third key)"
kur c0.pem "$(old_uri "$S0")" "$(uri "$S0" "$OTHERID")" x.pem super.log &&
    { cat super.log; tm_fail "a kur of a superseded certificate to another key must be refused"; }
grep -q "superseded is not updated again" serve.log || { cat serve.log; tm_fail "say it was superseded"; }
[ "$("$T" ca list "$CA" | wc -l)" -eq "$NREC" ] || tm_fail "the refused kur made a record"
"$T" revoke --serial "$S1" --ca "$CA" --reason keyCompromise >/dev/null || tm_fail "revoke"
pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label tm-0002 --login --pin "$TM_USER_PIN" \
    --keypairgen --key-type EC:prime256v1 --id "$NEWID" --label tokenmint:auth >/dev/null 2>&1 ||
    tm_fail "pkcs11-tool keygen (token 1)"
kur c1.pem "$(old_uri "$S1")" "$(uri "$S1" "$NEWID")" x.pem rev.log &&
    { cat rev.log; tm_fail "a kur of a revoked certificate must be refused"; }
grep -q "is revoked" serve.log || { cat serve.log; tm_fail "say it is revoked"; }

# a kur to the same key (renewal): the old certificate's key, superseded in
# the insert's transaction
kur c2.pem "$(old_uri "$S2")" "$(old_uri "$S2")" same2.pem same.log ||
    { cat same.log; cat serve.log; tm_fail "a same-key kur should be answered"; }
openssl verify -CAfile "$CA/ca.pem" same2.pem >/dev/null || tm_fail "the renewal does not verify"
[ "$(openssl x509 -in same2.pem -noout -pubkey)" = "$(openssl x509 -in c2.pem -noout -pubkey)" ] ||
    tm_fail "the same-key kur certifies another key"
M2=$(openssl x509 -in same2.pem -noout -serial | cut -d= -f2)
[ "$M2" != "$C2" ] || tm_fail "the renewal has the old serial"
[ "$(status_of "$C2")" = superseded ] || { "$T" ca show "$CA" "$C2"; tm_fail "the renewed certificate should be superseded"; }
[ "$(status_of "$M2")" = valid ] || tm_fail "the renewal is valid at the CA"
[ "$("$T" ca list "$CA" --token "pkcs11:serial=$S2" --status valid | wc -l)" -eq 1 ] ||
    tm_fail "one valid certificate for token 2"

# genm: the CA certificate
openssl cmp -cmd genm -server "127.0.0.1:$CMP_PORT/pkix/" -secret "file:$SECRET" -ref station \
    -trusted "$CA/ca.pem" >genm.log 2>&1 || { cat genm.log; tm_fail "openssl cmp -cmd genm"; }
grep -q "1.3.6.1.5.5.7.4.17\|caCerts" genm.log || { cat genm.log; tm_fail "genp should carry caCerts"; }
cmp_stop "$CMP_PID"
echo "PASS: kur (new key on the same token, signed with the old certificate), refusals, genm caCerts"
