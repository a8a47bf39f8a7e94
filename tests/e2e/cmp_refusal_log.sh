# Every refusal is logged with its reason, and every issued certificate with
# a one-line access log (issue 10 item 11), by `ca serve` and by `relay`:
# a wrong shared secret, an unprotected request and a stray certConf each
# leave a "refused a request" line naming the reason and the client; a good
# request leaves one "issued serial ..." line naming the certificate's
# serial and the token; the shared secret appears in no log line.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
for i in 0 1; do
    "$T" csr --token "pkcs11:serial=${TM_SERIALS[$i]}" --pin-source "$PIN" >"req$i.pem" ||
        tm_fail "csr $i"
done
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
SPORT=$CMP_PORT
cmp_start relay "$T" relay --upstream "http://127.0.0.1:$SPORT/pkix/" \
    --upstream-secret-source "$SECRET" --upstream-ref relay --secret-source "$SECRET" \
    --ref relay --serial-range 0-ffffffffffffffff
RPORT=$CMP_PORT
echo "not-the-secret" >wrong

for srv in serve relay; do
    port=$SPORT
    [ $srv = relay ] && port=$RPORT
    n=0
    [ $srv = relay ] && n=1
    # refused: a wrong secret, no protection at all
    openssl cmp -cmd p10cr -csr req$n.pem -server "127.0.0.1:$port/pkix/" -secret file:wrong \
        -ref station -certout w.pem >w.log 2>&1 && tm_fail "$srv: a wrong secret must be refused"
    openssl cmp -cmd p10cr -csr req$n.pem -server "127.0.0.1:$port/pkix/" -unprotected_requests \
        -ref station -unprotected_errors -certout u.pem >u.log 2>&1 &&
        tm_fail "$srv: an unprotected request must be refused"
    # issued
    openssl cmp -cmd p10cr -csr req$n.pem -server "127.0.0.1:$port/pkix/" -secret "file:$SECRET" \
        -ref station -certout good$n.pem >g.log 2>&1 || { cat g.log; tm_fail "$srv: good request"; }
    sn=$(openssl x509 -in good$n.pem -noout -serial | cut -d= -f2)
    log=$srv.log
    for _ in $(seq 50); do grep -q "issued serial" $log && break; sleep 0.1; done
    grep "refused a request" $log >refused.$srv || true
    [ "$(wc -l <refused.$srv)" -ge 2 ] || { cat $log; tm_fail "$srv: both refusals should be logged"; }
    grep -qi "protection" refused.$srv || { cat $log; tm_fail "$srv: the log should give the reason"; }
    grep -q "(from 127.0.0.1)" refused.$srv || { cat $log; tm_fail "$srv: the log should name the client"; }
    grep -q "issued serial $sn token ${TM_SERIALS[$n]} .* to 127.0.0.1 (p10cr)" $log ||
        { cat $log; tm_fail "$srv: one access-log line for the issued certificate"; }
    [ "$(grep -c "issued serial" $log)" -eq 1 ] || { cat $log; tm_fail "$srv: exactly one access-log line"; }
    grep -qF "$(cat "$SECRET")" $log && tm_fail "$srv: the shared secret must never be logged"
    grep -qF "not-the-secret" $log && tm_fail "$srv: a wrong secret must never be logged"
done
cat refused.serve refused.relay
echo "cmp_refusal_log: OK"
