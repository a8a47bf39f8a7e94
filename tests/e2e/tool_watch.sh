#!/usr/bin/env bash
# Station mode: `tokenmint watch` issues each token as it is plugged in (the
# shim hides tokens, then "inserts" them one by one), with an OK line per
# token, and stops cleanly on Ctrl-C (SIGINT) between tokens.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"
tm_make_tokens 3
tm_shim_setup w "$TM_SOFTHSM_MODULE" "$SOFTHSM2_CONF"
export TOKENMINT_BACKEND="$TM_SHIM_MODULE"
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
for s in "${TM_SERIALS[@]}"; do tm_shim_hide "$s"; done

"$T" watch --ca "$CA" --pin-source "$PIN" --count 3 >"$TM_TMP/watch.out" 2>"$TM_TMP/watch.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "watching for tokens" "$TM_TMP/watch.err" && break; sleep 0.1; done
sleep 0.3
[ ! -s "$CA/index.txt" ] || tm_fail "nothing is plugged in yet"
for i in 0 1 2; do
    tm_shim_show "${TM_SERIALS[$i]}"
    for _ in $(seq 1 100); do
        [ "$(grep -c '^OK' "$TM_TMP/watch.out" || true)" -gt "$i" ] && break
        sleep 0.1
    done
    grep -q "^OK *${TM_SERIALS[$i]}" "$TM_TMP/watch.out" ||
        { cat "$TM_TMP/watch.out" "$TM_TMP/watch.err"; tm_fail "token $i not issued on insertion"; }
done
wait "$pid" || { cat "$TM_TMP/watch.err"; tm_fail "watch should exit 0 after 3 tokens"; }
grep -q $'\a' "$TM_TMP/watch.err" || tm_fail "no terminal bell"
[ "$(wc -l <"$CA/index.txt")" -eq 3 ] || tm_fail "three certificates"

# Ctrl-C: stops between tokens with a clean exit and a closing line.
"$T" watch --ca "$CA" --pin-source "$PIN" >"$TM_TMP/w2.out" 2>"$TM_TMP/w2.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "watching for tokens" "$TM_TMP/w2.err" && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid" || tm_fail "watch should exit 0 on Ctrl-C"
grep -q "stopped after" "$TM_TMP/w2.err" || tm_fail "no closing line after Ctrl-C"
tool_check_invariants "$CA"
echo "PASS: watch"
