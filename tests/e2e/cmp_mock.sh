# The station against a CMP server that is not ours: stock `openssl cmp`'s
# mock server answers every request with one canned certificate. The CMP
# exchange must complete (p10cr, cp, certConf, pkiConf), and the station must
# refuse to write the canned certificate, since it names no token: it tells
# the server so in its certConf and leaves the token untouched.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 1
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"

# The canned certificate chains to the station's root and certifies the
# token's own (free) key pair, so the only thing wrong with it is that it
# names no token. `tokenmint csr` leaves the key pair that `issue` reuses.
S0=${TM_SERIALS[0]}
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" >tok.csr || tm_fail "csr"
openssl req -in tok.csr -pubkey -noout >tok.pub
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
    -subj "/CN=canned" -out canned.csr 2>/dev/null
openssl x509 -req -in canned.csr -force_pubkey tok.pub -CA "$CA/ca.pem" \
    -CAkey "$CA/private/ca.key" -days 1 -set_serial 4242 -out canned.pem 2>/dev/null ||
    tm_fail "canned certificate"
openssl verify -CAfile "$CA/ca.pem" canned.pem >/dev/null || tm_fail "canned certificate must chain"

# Stock openssl cmp -port needs a fixed port: try a few random ones.
MOCK=
for try in 1 2 3 4 5; do
    P=$((20000 + RANDOM % 20000))
    openssl cmp -port "$P" -srv_secret "file:$SECRET" -srv_ref mock -rsp_cert canned.pem -verbosity 7 \
        >mock.log 2>&1 &
    MOCK=$!
    CMP_PIDS+=($MOCK)
    for i in $(seq 40); do
        kill -0 "$MOCK" 2>/dev/null || break
        "$BC" post "http://127.0.0.1:$P/" /dev/null >/dev/null 2>&1 && break 2
        sleep 0.05
    done
    kill "$MOCK" 2>/dev/null || true
    MOCK=
done
[ -n "$MOCK" ] || { cat mock.log; tm_fail "the openssl cmp mock server did not start"; }

tm_expect_fail "the station must not accept a certificate that names no token" \
    "$T" issue --token "pkcs11:serial=$S0" --cmp "http://127.0.0.1:$P/" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station --pin-source "$PIN" >issue.out 2>&1
grep -q "names no token" issue.out || { cat issue.out; tm_fail "the refusal should say why"; }
echo "station said: $(grep -m1 'names no token' issue.out)"
# The whole exchange ran: the mock got the request and the station's certConf.
grep -q "received P10CR" mock.log || { cat mock.log; tm_fail "the mock server got no p10cr"; }
grep -q "received CERTCONF" mock.log || { cat mock.log; tm_fail "the station sent no certConf"; }
grep -q "sending PKICONF" mock.log || { cat mock.log; tm_fail "the exchange did not finish"; }
[ "$(cmp_certs_on "$S0")" -eq 0 ] || tm_fail "the canned certificate must not be on the token"
echo "PASS: issue --cmp against openssl cmp's mock server: exchange done, canned certificate refused"
