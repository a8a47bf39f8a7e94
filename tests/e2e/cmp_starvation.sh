# Connection starvation (issue 10 item 10): `ca serve` and `relay` under
# 260 idle TCP connections and slow-header (slowloris) clients still answer a
# good request. The load comes from tests/e2e/conn_hold on other loopback
# source addresses (one hostile client, then many), bounded in count and time.
# The good request gets a generous 20 s; the latency is printed, not asserted.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
HOLD="$TM_BUILD_DIR/tests/conn_hold"
[ -x "$HOLD" ] || tm_fail "$HOLD is not built"
tm_make_tokens 4
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
for i in 0 1 2 3; do
    "$T" csr --token "pkcs11:serial=${TM_SERIALS[$i]}" --pin-source "$PIN" >"req$i.pem" ||
        tm_fail "csr $i"
done
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
SPORT=$CMP_PORT
cmp_start relay "$T" relay --upstream "http://127.0.0.1:$SPORT/pkix/" \
    --upstream-secret-source "$SECRET" --upstream-ref relay --secret-source "$SECRET" \
    --ref relay --serial-range 0-ffffffffffffffff
RPORT=$CMP_PORT

# good PORT REQ NAME: one p10cr from 127.0.0.1 that must be answered with a
# certificate within 20 s.
good() {
    local t0 t1
    t0=$(date +%s%N)
    openssl cmp -cmd p10cr -csr "$2" -server "127.0.0.1:$1/pkix/" -secret "file:$SECRET" \
        -ref station -msg_timeout 20 -total_timeout 20 -certout "$3.pem" >"$3.log" 2>&1 ||
        { cat "$3.log"; tm_fail "$3: the good request was not answered under load"; }
    t1=$(date +%s%N)
    [ -s "$3.pem" ] || tm_fail "$3: no certificate"
    echo "$3: answered in $(((t1 - t0) / 1000000)) ms"
}

# hold PORT FROM IDLE SLOW: the load in the background until it is on.
hold() {
    rm -f hold.ready
    "$HOLD" --to "127.0.0.1:$1" --from "$2" --idle "$3" --slow "$4" --seconds 40 \
        --ready hold.ready >hold.log 2>&1 &
    HOLD_PID=$!
    CMP_PIDS+=($HOLD_PID)
    for _ in $(seq 100); do [ -s hold.ready ] && break; sleep 0.05; done
    [ -s hold.ready ] || tm_fail "conn_hold did not start"
    cat hold.ready
}
unhold() { kill "$HOLD_PID" 2>/dev/null || true; wait "$HOLD_PID" 2>/dev/null || true; }

ALL=$(seq -s, -f '127.0.1.%g' 1 40)

# 1. ca serve: one client holds 260 idle connections and slow headers.
hold "$SPORT" 127.0.0.2 260 4
good "$SPORT" req0.pem serve-one
unhold
# 2. ca serve: 260 idle connections and slow headers spread over 40 clients.
hold "$SPORT" "$ALL" 260 8
good "$SPORT" req1.pem serve-many
# the held connections are dropped at the header deadline (5 s), and say so
for _ in $(seq 150); do grep -q "timed out" serve.log && break; sleep 0.1; done
unhold
# 3. the same for the relay
hold "$RPORT" 127.0.0.2 260 4
good "$RPORT" req2.pem relay-one
unhold
hold "$RPORT" "$ALL" 260 8
good "$RPORT" req3.pem relay-many
unhold

# The server said why it dropped the hostile connections.
grep -q "per-client connection limit (32) reached" serve.log || { cat serve.log; tm_fail "ca serve should log refused connections"; }
grep -q "from 127.0.1.*request headers not complete in time (timed out)" serve.log || { cat serve.log; tm_fail "ca serve should log the header timeouts"; }
grep -q "connection limit" relay.log || { cat relay.log; tm_fail "relay should log refused connections"; }
cmp_stop "${CMP_PIDS[0]}"
echo "cmp_starvation: OK"
