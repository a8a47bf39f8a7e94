#!/usr/bin/env bash
# Station mode against a CMP server: `tokenmint watch --cmp URL` issues each
# token as it is plugged in, through `ca serve`, the same way `watch --ca DIR`
# does through a local CA directory (both are CA backends behind one
# interface).
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
SRV=$CMP_PID
tm_shim_setup cw "$TM_SOFTHSM_MODULE" "$SOFTHSM2_CONF"
export TOKENMINT_BACKEND="$TM_SHIM_MODULE"
for s in "${TM_SERIALS[@]}"; do tm_shim_hide "$s"; done

"$T" watch --cmp "http://127.0.0.1:$CMP_PORT/pkix/" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station --pin-source "$PIN" --count 2 \
    >watch.out 2>watch.err &
pid=$!
for _ in $(seq 1 100); do grep -q "watching for tokens" watch.err && break; sleep 0.1; done
grep -q "watching for tokens" watch.err || { cat watch.err; tm_fail "watch --cmp did not start"; }
[ ! -s "$CA/index.txt" ] || tm_fail "nothing is plugged in yet"
for i in 0 1; do
    tm_shim_show "${TM_SERIALS[$i]}"
    for _ in $(seq 1 150); do
        [ "$(grep -c '^OK' watch.out || true)" -gt "$i" ] && break
        sleep 0.1
    done
    grep -q "^OK *${TM_SERIALS[$i]} .*issued" watch.out ||
        { cat watch.out watch.err serve.log; tm_fail "token $i not issued over CMP on insertion"; }
done
wait "$pid" || { cat watch.err; tm_fail "watch --cmp should exit 0 after 2 tokens"; }
# The certificates came from the CMP server's CA, one per token, on the tokens.
[ "$(ca_view_lines "$CA" 2)" -eq 2 ] || tm_fail "the CMP CA should have issued two certificates"
for s in "${TM_SERIALS[@]}"; do
    [ "$(cmp_certs_on "$s")" -eq 1 ] || tm_fail "token $s should hold one certificate"
done
"$T" verify --all --ca "$CA" >verify.out || { cat verify.out; tm_fail "verify after watch --cmp"; }
cmp_stop "$SRV"
echo "PASS: watch --cmp issues each token as it arrives, through a CMP server"
