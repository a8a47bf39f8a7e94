# The patent's relay (claim 18) as a CMP RA between stations and the CA:
# `tokenmint issue --cmp` on 16 tokens goes through `tokenmint relay` to
# `tokenmint ca serve`. The relay refuses a request whose signature does not
# verify (badPOP) and one for a token outside its serial range (badRequest),
# each with a message saying why, and forwards nothing it refused. Stations
# talk to the relay with a shared secret (PBMAC); the relay talks to the CA
# with its own RA certificate (signature protection), so stations cannot
# reach the CA past the relay.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 17
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
# The relay's RA certificate (under an RA CA the CA trusts) and the CA's CMP signer.
cmp_signers ra "RA CA" "tokenmint relay"

# SoftHSM2 serials are 16 hex digits: sorted as text they are sorted as numbers.
mapfile -t SORTED < <(printf '%s\n' "${TM_SERIALS[@]}" | sort)
OUT=${SORTED[16]}              # the largest: outside the range
LO=${SORTED[0]} HI=${SORTED[15]}

cmp_start serve "$T" ca serve "$CA" --trusted raca.pem --srv-cert srv.pem --srv-key srv.key
CAURL="http://127.0.0.1:$CMP_PORT/pkix/"
cmp_start relay "$T" relay --upstream "$CAURL" --upstream-cert ra.pem --upstream-key ra.key \
    --upstream-srvcert srv.pem --secret-source "$SECRET" --ref relay --serial-range "$LO-$HI"
RELAY="http://127.0.0.1:$CMP_PORT/pkix/"
CMPARGS=(--cmp "$RELAY" --cmp-root "$CA/ca.pem" --cmp-secret-source "$SECRET" --cmp-ref station)

# 1. 16 tokens in range: all issued over CMP through the relay, in one batch.
TOK=()
for s in "${SORTED[@]:0:16}"; do TOK+=(--token "pkcs11:serial=$s"); done
"$T" issue "${TOK[@]}" "${CMPARGS[@]}" --pin-source "$PIN" >issue.out 2>&1 ||
    { cat issue.out; tm_fail "issue --cmp through the relay"; }
[ "$(grep -c '^OK' issue.out)" -eq 16 ] || { cat issue.out; tm_fail "16 tokens should be issued"; }
[ "$(ca_view_lines "$CA" 16)" -eq 16 ] || tm_fail "the CA should have issued 16 certificates"
for s in "${SORTED[@]:0:16}"; do
    [ "$(cmp_certs_on "$s")" -eq 1 ] || tm_fail "token $s should hold one certificate"
done
"$T" verify --all --ca "$CA" >verify.out || { cat verify.out; tm_fail "verify --all"; }

# 2. A token outside the range: refused by the relay, with the reason.
tm_expect_fail "a token outside the relay's serial range" \
    "$T" issue --token "pkcs11:serial=$OUT" "${CMPARGS[@]}" --pin-source "$PIN" >out.out 2>&1
grep -q "outside the serial range" out.out || { cat out.out; tm_fail "refusal should name the range"; }
grep -q "badRequest" out.out || { cat out.out; tm_fail "refusal should carry failInfo badRequest"; }
grep -q "rejection" out.out || { cat out.out; tm_fail "refusal should be PKIStatus rejection"; }
[ "$(cmp_certs_on "$OUT")" -eq 0 ] || tm_fail "the refused token must get no certificate"
echo "station saw: $(grep -m1 'outside' out.out)"
grep -q "refused a request: relay: token serial $OUT is outside" relay.log ||
    { cat relay.log; tm_fail "the relay should log the refusal for its operator"; }

# 3. A request whose signature does not verify (one bit of the signature
# flipped): stock openssl cmp sends it, the relay refuses it.
"$T" csr --token "pkcs11:serial=$OUT" --pin-source "$PIN" | openssl req -outform DER -out good.der ||
    tm_fail "csr"
len=$(stat -c %s good.der)
last=$(tail -c 1 good.der | od -An -tu1 | tr -d ' ')
{ head -c $((len - 1)) good.der; printf "\\$(printf '%03o' $((last ^ 1)))"; } >bad.der
cmp -s good.der bad.der && tm_fail "the tampered request should differ"
openssl req -inform DER -in bad.der -verify -noout 2>&1 | tm_grepq "verify OK" &&
    tm_fail "the tampered request must not verify"
openssl cmp -cmd p10cr -csr bad.der -server "127.0.0.1:${RELAY#http://127.0.0.1:}" \
    -secret "file:$SECRET" -ref station -certout bad.pem >bad.log 2>&1 &&
    tm_fail "the relay must refuse a request with a bad signature"
grep -q "badPOP" bad.log || { cat bad.log; tm_fail "refusal should carry failInfo badPOP"; }
grep -q "does not verify with the public key" bad.log || { cat bad.log; tm_fail "refusal should say the signature failed"; }
[ ! -e bad.pem ] || tm_fail "no certificate for a bad signature"
echo "openssl cmp saw: $(grep -m1 -i 'badPOP' bad.log)"

# 4. Stations cannot bypass the relay: the CA takes only signed requests.
openssl cmp -cmd p10cr -csr good.der -server "127.0.0.1:${CAURL#http://127.0.0.1:}" \
    -secret "file:$SECRET" -ref station -certout direct.pem >direct.log 2>&1 &&
    tm_fail "the CA must refuse a station's secret"
[ "$(ca_view_lines "$CA" 16)" -eq 16 ] || tm_fail "refused requests must not reach the CA database"
echo "PASS: 16 tokens through the relay; bad signature and out-of-range serial refused"
