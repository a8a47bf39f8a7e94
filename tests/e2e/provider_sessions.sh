#!/usr/bin/env bash
# Issue 13, "the session pool is bounded by the token's ulMaxSessionCount and
# retries on CKR_SESSION_COUNT". SoftHSM2 has no session limit, so the
# provider talks to it through the test shim, which lets 2 sessions be open
# per token (tests/shim: max_sessions). tm-provider-threads runs 8 threads
# that sign, decrypt and derive through one provider at once, each result
# checked against the software result:
# - the token reports the limit (ulMaxSessionCount = 2): every operation
#   succeeds (the shim refuses a third session, so an unbounded pool fails);
# - the token reports no limit: the provider learns it from
#   CKR_SESSION_COUNT, waits for a session and retries; every operation
#   succeeds;
# - another holder takes every session the token still allows: 4 signatures
#   wait, and succeed once the sessions come back.
. "$(dirname "$0")/provider_lib.sh"
: "${TM_SHIM:?}" "${TM_BUILD_DIR:?}"
CLIENT="$TM_BUILD_DIR/tests/tm-provider-threads"
[ -x "$CLIENT" ] || tm_fail "$CLIENT is not built"
tm_make_tokens 1
S=${TM_SERIALS[0]}
cd "$TM_TMP"
for k in "01 EC:prime256v1 --usage-derive" "02 rsa:2048 --usage-decrypt"; do
    set -- $k
    pkcs11-tool --module "$SOFTHSM" --token-label tm-0001 --login --pin "$TM_USER_PIN" \
        --keypairgen --key-type "$2" --id "$1" --label "key$1" --usage-sign "$3" \
        >/dev/null 2>&1 || tm_fail "keygen $2"
done

# the shim: a copy per test, its config beside it
cp "$TM_SHIM" shim.so
mkdir ctl
shim_conf() { # REPORT(yes|no)
    printf 'module = %s\nsofthsm2_conf = %s\ncontrol = ctl\nmax_sessions = 2\nreport_max_sessions = %s\n' \
        "$SOFTHSM" "$SOFTHSM2_CONF" "$1" >shim.so.conf
}
export TOKENMINT_MODULE=$TM_TMP/shim.so
unset TOKENMINT_BACKEND

ops() { # WHAT
    "$CLIENT" ops "$TM_PROVIDER_DIR" "$S" "$TM_USER_PIN" 8 10 >"ops.$1.out" 2>&1 ||
        tm_fail "$1: $(head -c 2000 "ops.$1.out")"
    cat "ops.$1.out"
    tm_grepq '^ok: 240 operations, 0 failed' "ops.$1.out" || tm_fail "$1: not every operation succeeded"
}
shim_conf yes
ops reported
shim_conf no
ops learned

shim_conf yes
"$CLIENT" hold "$TM_PROVIDER_DIR" "$S" "$TM_USER_PIN" "$TM_TMP/shim.so" 16 >hold.out 2>&1 ||
    tm_fail "hold: $(head -c 2000 hold.out)"
cat hold.out
tm_grepq 'token full' hold.out || tm_fail "the holder did not fill the token"
tm_grepq '^ok: 4 signatures' hold.out || tm_fail "signatures did not wait for the sessions"
echo "PASS: provider session pool"
