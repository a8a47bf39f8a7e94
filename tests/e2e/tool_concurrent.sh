#!/usr/bin/env bash
# Two `tokenmint issue` processes on one CA directory at once: unique serials,
# a consistent index (every line has its certificate file and record), and
# no token issued twice even when both processes are told to take it.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 16
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null

# Disjoint halves, several workers each: the CA database is shared.
a=() b=()
for i in $(seq 0 7); do a+=(--token "pkcs11:serial=${TM_SERIALS[$i]}"); done
for i in $(seq 8 15); do b+=(--token "pkcs11:serial=${TM_SERIALS[$i]}"); done
"$T" issue "${a[@]}" --ca "$CA" --pin-source "$PIN" --jobs 4 >"$TM_TMP/a.out" &
pa=$!
"$T" issue "${b[@]}" --ca "$CA" --pin-source "$PIN" --jobs 4 >"$TM_TMP/b.out" &
pb=$!
wait "$pa" || { cat "$TM_TMP/a.out"; tm_fail "first process failed"; }
wait "$pb" || { cat "$TM_TMP/b.out"; tm_fail "second process failed"; }

[ "$(wc -l <"$CA/index.txt")" -eq 16 ] || tm_fail "index.txt should have 16 lines"
[ "$(cut -f4 "$CA/index.txt" | sort -u | wc -l)" -eq 16 ] || tm_fail "serials are not unique"
"$T" ca list "$CA" >"$TM_TMP/records" || tm_fail "ca list"
[ "$(wc -l <"$TM_TMP/records")" -eq 16 ] || tm_fail "the CA database should have 16 records"
[ "$(cut -f1 "$CA/index.txt" | sort -u)" = V ] || tm_fail "every index line must be valid (V)"
for serial in $(cut -f4 "$CA/index.txt"); do
    [ -s "$CA/newcerts/$serial.pem" ] || tm_fail "index names $serial but newcerts/ lacks it"
    grep -q "^$serial	valid	" "$TM_TMP/records" || tm_fail "no tool record for $serial"
done
# stock openssl still reads the database
# (openssl ca -status exits 1 even when it found the serial)
{ openssl ca -config "$CA/ca.cnf" -status "$(head -1 "$CA/index.txt" | cut -f4)" 2>&1 || true; } |
    tm_grepq "=Valid" || tm_fail "openssl ca -status does not read the index"

# Both processes on every token at once: each token is taken by one of them.
# RSA-3072 key generation keeps the first process on its tokens for seconds;
# the second starts once the first holds a token's lock, so they do meet.
tm_make_tokens 8 x
CA2="$TM_TMP/ca2"
"$T" ca init "$CA2" >/dev/null
"$T" issue --all --ca "$CA2" --pin-source "$PIN" --jobs 1 --key-type rsa:3072 >"$TM_TMP/c.out" 2>&1 &
pc=$!
held=
for _ in $(seq 1 300); do
    for f in "$CA2"/locks/*; do
        [ -f "$f" ] && ! flock -n "$f" true 2>/dev/null && { held=$f; break 2; }
    done
    sleep 0.05
done
[ -n "$held" ] || { cat "$TM_TMP/c.out"; tm_fail "the first process never took a token's lock"; }
"$T" issue --all --ca "$CA2" --pin-source "$PIN" --jobs 2 --key-type rsa:3072 >"$TM_TMP/d.out" 2>&1 &
pd=$!
rc_c=0 rc_d=0
wait "$pc" || rc_c=$?
wait "$pd" || rc_d=$?
# Losing a token to the other process is a per-token failure (exit 1), never
# a usage error or a crash.
[ "$rc_c" -le 1 ] && [ "$rc_d" -le 1 ] ||
    { cat "$TM_TMP/c.out" "$TM_TMP/d.out"; tm_fail "exit codes $rc_c and $rc_d: want 0 or 1 each"; }
LOCKED="another tokenmint process is issuing to this token"
lost=$(cat "$TM_TMP/c.out" "$TM_TMP/d.out" | grep -c "^FAIL.*$LOCKED" || true)
[ "$lost" -ge 1 ] || { cat "$TM_TMP/c.out" "$TM_TMP/d.out"; tm_fail "the two processes never met on a token"; }
if cat "$TM_TMP/c.out" "$TM_TMP/d.out" | grep '^FAIL' | grep -v "$LOCKED"; then
    tm_fail "a token failed for a reason other than the other process's lock"
fi
[ "$(cat "$TM_TMP/c.out" "$TM_TMP/d.out" | grep -c '^OK .* issued ')" -eq 8 ] ||
    { cat "$TM_TMP/c.out" "$TM_TMP/d.out"; tm_fail "8 issues between the two processes"; }
echo "tokens lost to the other process's lock: $lost"
# A re-run finds every token done and issues nothing.
"$T" issue --all --ca "$CA2" --pin-source "$PIN" >"$TM_TMP/e.out" ||
    { cat "$TM_TMP/c.out" "$TM_TMP/d.out" "$TM_TMP/e.out"; tm_fail "re-run after the race failed"; }
grep -q "already done *8" "$TM_TMP/e.out" || { cat "$TM_TMP/e.out"; tm_fail "all 8 should be done"; }
[ "$(wc -l <"$CA2/index.txt")" -eq 8 ] || { cat "$CA2/index.txt"; tm_fail "a token was issued twice"; }
tool_check_invariants "$CA2"
echo "PASS: concurrent issue processes share one CA safely"
