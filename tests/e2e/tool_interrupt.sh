#!/usr/bin/env bash
# Interruption at each step, then a re-run: every token ends with exactly one
# certificate per key, nothing is issued twice, and the CA database holds no
# certificate that is on no token. Faults come from the test shim between the
# tokenmint module and SoftHSM2: CKR_DEVICE_ERROR on the Nth call, a token
# pulled out mid-run, and the process killed with kill -9.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"
N=6

# fresh_station NAME: N new tokens behind a new shim, a new CA.
fresh_station() {
    tm_make_tokens "$N" "$1" >/dev/null
    tm_shim_setup "$1" "$TM_SOFTHSM_MODULE" "$SOFTHSM2_CONF"
    export TOKENMINT_BACKEND="$TM_SHIM_MODULE"
    CA="$TM_TMP/ca-$1"
    "$T" ca init "$CA" >/dev/null
}

# shellcheck disable=SC2120 # (called with arguments through tm_expect_fail)
issue() {
    "$T" issue --all --ca "$CA" --pin-source "$PIN" --json "$@"
}

# rerun_clean: with the faults gone, a re-run completes every token, issues
# nothing twice and leaves the invariants.
rerun_clean() {
    tm_shim_clear
    issue >"$TM_TMP/rerun.json" || { cat "$TM_TMP/rerun.json"; tm_fail "$1: re-run failed"; }
    [ "$(wc -l <"$CA/index.txt")" -eq "$N" ] ||
        { cat "$CA/index.txt"; tm_fail "$1: the CA should hold exactly $N certificates"; }
    tool_check_invariants "$CA"
}

count_result() { grep -c "\"result\":\"$1\"" "$2" || true; }

# wait_for WHAT CMD...: polls CMD (up to 20 s) so that faults land at the
# intended step however slow the machine is.
wait_for() {
    local what=$1 i
    shift
    for i in $(seq 1 200); do
        "$@" && return 0
        sleep 0.1
    done
    "$T" tokens >&2 || true
    cat "$TM_TMP/run.out" "$TM_TMP/4.json" >&2 2>/dev/null || true
    tm_fail "timed out waiting for $what"
}
# Every token directory of the SoftHSM2 store holds its key pair (two object
# files besides token.object); C_Sign then sleeps 1.5 s in the shim. Counted
# from the file system, not with a second PKCS#11 process: SoftHSM2 reloads
# a token's objects when another process touches them, and a poller doing so
# during key generation has made the generating process fail to read its own
# new public key.
all_have_keys() {
    local d n=0
    for d in "$TM_TOKDIR"/*/; do
        [ "$(find "$d" -maxdepth 1 -name '*.object' ! -name token.object | wc -l)" -ge 2 ] &&
            n=$((n + 1))
    done
    [ "$n" -eq "$N" ] && sleep 0.5
}
ca_holds() { [ "$(wc -l <"$CA/index.txt")" -eq "$1" ]; }

# 0. A token fails the login (step 4): the others go on.
fresh_station l
tm_shim_fail C_Login 2 CKR_DEVICE_ERROR
tm_expect_fail "a token failed, so exit 1" issue >"$TM_TMP/0.json"
grep -q '"step":4' "$TM_TMP/0.json" || { cat "$TM_TMP/0.json"; tm_fail "login failure at step 4"; }
[ "$(count_result issued "$TM_TMP/0.json")" -eq $((N - 1)) ] || tm_fail "login: the others go on"
rerun_clean login

# 1. Key generation fails on the 2nd token (step 5): the others go on.
fresh_station a
tm_shim_fail C_GenerateKeyPair 2 CKR_DEVICE_ERROR
tm_expect_fail "a token failed, so exit 1" issue >"$TM_TMP/1.json"
[ "$(count_result failed "$TM_TMP/1.json")" -eq 1 ] || tm_fail "keygen: one token should fail"
[ "$(count_result issued "$TM_TMP/1.json")" -eq $((N - 1)) ] || tm_fail "keygen: the others go on"
grep -q '"step":5' "$TM_TMP/1.json" || tm_fail "keygen failure should be reported at step 5"
rerun_clean keygen

# 1b. Key generation fails without a cause (CKR_GENERAL_ERROR, as SoftHSM2
#     2.6.1 does now and then under concurrent object creation) and leaves
#     nothing: the token is asked once more and issued. Failing again, the
#     token fails after two tries, never a third.
fresh_station ag
tm_shim_fail C_GenerateKeyPair 2 CKR_GENERAL_ERROR
issue >"$TM_TMP/1b.json" || { cat "$TM_TMP/1b.json"; tm_fail "a causeless keygen failure should be retried"; }
[ "$(count_result issued "$TM_TMP/1b.json")" -eq "$N" ] || tm_fail "keygen retry: all issued"
[ "$(grep -c '"key_retried":true' "$TM_TMP/1b.json")" -eq 1 ] || tm_fail "keygen retry: one token retried"
tool_check_invariants "$CA"
fresh_station ah
tm_shim_fail C_GenerateKeyPair 1 CKR_GENERAL_ERROR sticky
tm_expect_fail "keygen fails twice" issue --jobs 1 >"$TM_TMP/1c.json"
[ "$(count_result failed "$TM_TMP/1c.json")" -eq "$N" ] || tm_fail "sticky keygen failure: all fail"
[ "$(grep -c 'CKR_GENERAL_ERROR (twice' "$TM_TMP/1c.json")" -eq "$N" ] ||
    { cat "$TM_TMP/1c.json"; tm_fail "each token should say it was tried twice"; }
rerun_clean keygen-twice

# 2. The token refuses the certificate (step 12, CKR_DEVICE_ERROR): the CA
#    issued it, so the re-run writes that certificate, never issues a second.
fresh_station b
tm_shim_fail C_CreateObject 3 CKR_DEVICE_ERROR
tm_expect_fail "a token failed, so exit 1" issue --jobs 1 >"$TM_TMP/2.json"
grep -q '"step":12' "$TM_TMP/2.json" || tm_fail "write failure should be reported at step 12"
rerun_clean write
[ "$(count_result written "$TM_TMP/rerun.json")" -eq 1 ] ||
    { cat "$TM_TMP/rerun.json"; tm_fail "write: the re-run should write the CA's certificate"; }

# 3. The request signature fails on the token (step 7): the key pair stays
#    free and is reused by the re-run (no second key pair).
fresh_station c
tm_shim_fail C_Sign 1 CKR_DEVICE_ERROR
tm_expect_fail "a token failed, so exit 1" issue --jobs 1 >"$TM_TMP/3.json"
grep -q '"step":7' "$TM_TMP/3.json" || { cat "$TM_TMP/3.json"; tm_fail "sign failure at step 7"; }
rerun_clean sign
grep -q '"key_reused":true' "$TM_TMP/rerun.json" || tm_fail "sign: the free key pair should be reused"

# 4. A token is pulled out mid-run (while the tokens sign their requests; it
#    fails at step 7 or, if its signature got through, at step 12).
fresh_station d
tm_shim_latency C_Sign 1500
"$T" issue --all --ca "$CA" --pin-source "$PIN" --json >"$TM_TMP/4.json" &
pid=$!
wait_for "key pairs on every token" all_have_keys
tm_shim_hide "${TM_SERIALS[1]}"
if wait "$pid"; then tm_fail "pulled token: the run should report a failure"; fi
grep -q "\"serial\":\"${TM_SERIALS[1]}\".*\"ok\":false" "$TM_TMP/4.json" ||
    { cat "$TM_TMP/4.json"; tm_fail "pulled token should fail"; }
[ "$(count_result issued "$TM_TMP/4.json")" -eq $((N - 1)) ] || tm_fail "pulled token: the others go on"
tm_shim_show "${TM_SERIALS[1]}"
rerun_clean pulled

# 5. kill -9 while the certificates are being written: all were issued, none
#    written. The re-run writes the CA's certificates and issues nothing new.
fresh_station e
tm_shim_latency C_CreateObject 1500
# exec'd directly (not through a shell function) so that $! is tokenmint itself
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/run.out" 2>&1 &
pid=$!
wait_for "the CA batch" ca_holds "$N"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ "$(wc -l <"$CA/index.txt")" -le "$("$T" ca list "$CA" | grep -c . || true)" ] ||
    tm_fail "after kill -9 every index line has its record" 
rerun_clean kill-write
[ "$(count_result written "$TM_TMP/rerun.json")" -eq "$N" ] ||
    { cat "$TM_TMP/rerun.json"; tm_fail "kill -9: every certificate should come from the CA"; }

# 6. kill -9 while the tokens sign their requests: key pairs exist, nothing
#    issued. The re-run reuses the key pairs.
fresh_station f
tm_shim_latency C_Sign 1500
# exec'd directly (not through a shell function) so that $! is tokenmint itself
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/run.out" 2>&1 &
pid=$!
wait_for "key pairs on every token" all_have_keys
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ "$(wc -l <"$CA/index.txt")" -le "$("$T" ca list "$CA" | grep -c . || true)" ] ||
    tm_fail "after kill -9 every index line has its record" 
rerun_clean kill-sign
[ "$(grep -c '"key_reused":true' "$TM_TMP/rerun.json")" -eq "$N" ] ||
    { cat "$TM_TMP/rerun.json"; tm_fail "kill -9: the re-run should reuse every key pair"; }
echo "PASS: interrupted runs resume without loss or double issuance"
