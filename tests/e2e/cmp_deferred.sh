# Deferred issuance, the patent's certificate server (claim 19): with
# --deferred, `ca serve` answers a request with PKIStatus "waiting"; the
# certificate is issued after approval and handed out on a later pollReq.
# Both stock openssl cmp and `tokenmint issue --cmp` must wait, poll,
# download, and (the station) write the certificate to its token.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 3
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET" --deferred --defer-ms 1500
SRV=$CMP_PID
URL="http://127.0.0.1:$CMP_PORT/pkix/"

# 1. Stock openssl cmp: waiting, then pollReq/pollRep until the certificate is there.
S0=${TM_SERIALS[0]}
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" >req0.pem || tm_fail "csr"
openssl cmp -cmd p10cr -csr req0.pem -server "127.0.0.1:$CMP_PORT/pkix/" -secret "file:$SECRET" \
    -ref station -certout c0.pem -verbosity 7 >poll.log 2>&1 ||
    { cat poll.log; tm_fail "openssl cmp against a deferring server"; }
grep -q "received CP" poll.log || tm_fail "no first answer"
grep -q "sending POLLREQ" poll.log || { cat poll.log; tm_fail "the client should have polled"; }
grep -q "received POLLREP" poll.log || { cat poll.log; tm_fail "the server should have said: not yet"; }
profile_check c0.pem
"$T" write --pin-source "$PIN" c0.pem >write.out || { cat write.out; tm_fail "write"; }
grep -q "^OK *$S0" write.out || tm_fail "write should put the certificate on $S0"

# 2. The station: both remaining tokens wait, poll, download and write.
TOKENMINT_DEBUG=1 "$T" issue --token "pkcs11:serial=${TM_SERIALS[1]}" \
    --token "pkcs11:serial=${TM_SERIALS[2]}" --cmp "$URL" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station --pin-source "$PIN" >issue.out 2>issue.err ||
    { cat issue.out issue.err; tm_fail "issue --cmp against a deferring server"; }
grep -q "sending POLLREQ" issue.err || { cat issue.err; tm_fail "the station should have polled"; }
[ "$(grep -c '^OK' issue.out)" -eq 2 ] || { cat issue.out; tm_fail "both tokens should be issued"; }
for s in "${TM_SERIALS[@]}"; do
    [ "$(cmp_certs_on "$s")" -eq 1 ] || tm_fail "token $s should hold its certificate"
done
[ "$(ca_view_lines "$CA" 3)" -eq 3 ] || tm_fail "the CA should record 3 certificates"
"$T" verify --all --ca "$CA" >/dev/null || tm_fail "verify --all"
cmp_stop "$SRV"
echo "PASS: deferred issuance: waiting, poll, download, write"
