# issue --cmp has no CA directory to keep its per-token locks in, so it takes
# the same flock in a station-local directory: --cmp-lock-dir DIR, else
# $XDG_RUNTIME_DIR/tokenmint/locks. A token another process holds is refused
# with a message naming that, and two `issue --cmp` runs on the same tokens
# never work on one token at once: every token ends with one certificate.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 8
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
SRV=$CMP_PID
CMPARGS=(--cmp "http://127.0.0.1:$CMP_PORT/pkix/" --cmp-root "$CA/ca.pem"
    --cmp-secret-source "$SECRET" --cmp-ref station)
LOCKED="another tokenmint process is issuing to this token"

# lockname SERIAL: the lock file's name, the serial's bytes in hex.
lockname() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# hold FILE: another process holds the flock on FILE until released.
HOLD_PIDS=()
hold() {
    mkdir -p "$(dirname "$1")"
    # the subshell becomes the sleep that holds the lock: killing it frees the lock
    (
        exec 9>"$1"
        flock 9 || exit 1
        exec sleep 60
    ) &
    HOLD_PIDS+=($!)
    CMP_PIDS+=($!)
    local i
    for i in $(seq 100); do
        flock -n "$1" true 2>/dev/null || return 0
        sleep 0.05
    done
    tm_fail "could not take the lock on $1 for the test"
}
release() {
    local p
    for p in "${HOLD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${HOLD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    HOLD_PIDS=()
}

# 1. The default directory: a token whose lock is held is refused, untouched.
S0=${TM_SERIALS[0]}
hold "$XDG_RUNTIME_DIR/tokenmint/locks/$(lockname "$S0")"
"$T" issue --token "pkcs11:serial=$S0" "${CMPARGS[@]}" --pin-source "$PIN" >held.out 2>&1 &&
    { cat held.out; tm_fail "issue --cmp should refuse a token another process holds"; }
grep -q "^FAIL *$S0 .*$LOCKED" held.out || { cat held.out; tm_fail "the refusal should name the lock"; }
[ "$(cmp_certs_on "$S0")" -eq 0 ] || tm_fail "a locked token must not get a certificate"
[ ! -s "$CA/index.txt" ] || tm_fail "the CA must issue nothing for a locked token"
release

# 2. --cmp-lock-dir: the lock is looked for there, not in the default.
S1=${TM_SERIALS[1]}
hold "$TM_TMP/station-locks/$(lockname "$S1")"
"$T" issue --token "pkcs11:serial=$S1" "${CMPARGS[@]}" --cmp-lock-dir "$TM_TMP/station-locks" \
    --pin-source "$PIN" >held2.out 2>&1 &&
    { cat held2.out; tm_fail "issue --cmp --cmp-lock-dir should refuse a held token"; }
grep -q "^FAIL *$S1 .*$LOCKED" held2.out || { cat held2.out; tm_fail "the refusal should name the lock"; }
[ "$(cmp_certs_on "$S1")" -eq 0 ] || tm_fail "a locked token must not get a certificate"
release
# --cmp-lock-dir belongs to --cmp
"$T" issue --all --ca "$CA" --cmp-lock-dir "$TM_TMP/x" --pin-source "$PIN" >nocmp.out 2>&1 &&
    tm_fail "--cmp-lock-dir without --cmp should be a usage error"
grep -q "need --cmp URL" nocmp.out || { cat nocmp.out; tm_fail "the usage error should say why"; }

# 3. Two processes on all 8 tokens at once.
"$T" issue --all "${CMPARGS[@]}" --pin-source "$PIN" --jobs 2 >a.out 2>&1 &
pa=$!
"$T" issue --all "${CMPARGS[@]}" --pin-source "$PIN" --jobs 2 >b.out 2>&1 &
pb=$!
wait "$pa" || true
wait "$pb" || true
for s in "${TM_SERIALS[@]}"; do
    [ "$(cmp_certs_on "$s")" -eq 1 ] || { cat a.out b.out; tm_fail "token $s should hold one certificate"; }
done
[ "$(ca_view_lines "$CA" 8)" -eq 8 ] || { cat a.out b.out; tm_fail "a token was issued twice"; }
# Each token was issued by one process; the other lost it to the lock or found it done.
[ "$(cat a.out b.out | grep -c '^OK .* issued ')" -eq 8 ] ||
    { cat a.out b.out; tm_fail "8 issues between the two processes"; }
if grep '^FAIL' a.out b.out | grep -v "$LOCKED"; then
    tm_fail "a process failed on a token for a reason other than the other's lock"
fi
echo "tokens lost to the other process's lock in the race: $(cat a.out b.out | grep -c "^FAIL.*$LOCKED")"
cmp_stop "$SRV"
echo "PASS: issue --cmp takes a per-token lock in a station-local directory"
