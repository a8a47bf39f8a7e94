#!/usr/bin/env bash
# Issue 12, crash safety of renew: kill -9 at random points of
# `renew --within 10` over 16 tokens whose certificates expire in 5 days,
# then a clean re-run. After each re-run: every token has exactly one valid
# certificate for the purpose at the CA, that certificate is on the token
# and is the new one (not expiring soon), its old one is superseded, no key
# pair is left free, and CA and tokens agree (tool_check_invariants). A token
# done before a run (renewed) is never lost or changed by a later kill.
# Stores alternate between same-key renewal (the default) and --rekey.
#
# SoftHSM2 may lose a token's objects when killed inside its in-place
# token.object rewrite (every C_Login): such a token must be the empty file,
# is counted, and its certificates (old and new) may be in the CA only.
# Kill points come from $RANDOM seeded by TM_KILL9_SEED (printed).
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
N=16
WANT=${TM_KILL9_KILLS:-16}
SEED=${TM_KILL9_SEED:-$(($(date +%s) % 32768))}
echo "renew kill -9 test: seed $SEED (TM_KILL9_SEED=$SEED to replay)"
RANDOM=$SEED
CA="$TM_TMP/ca"

tm_make_tokens "$N" >/dev/null
ALL=("${TM_SERIALS[@]}")
sed 's/^validity_days = .*/validity_days = 5/' "$TM_SOURCE_DIR/conf/profile.cnf" >"$TM_TMP/short.cnf"
"$T" ca init "$CA" >/dev/null
"$T" issue --all --ca "$CA" --profile "$TM_TMP/short.cnf" --pin-source "$PIN" >"$TM_TMP/issue.out" ||
    { cat "$TM_TMP/issue.out"; tm_fail "issue (5-day profile) failed"; }
"$T" ca list "$CA" --status valid | cut -f1 | sort >"$TM_TMP/old_serials"
[ "$(wc -l <"$TM_TMP/old_serials")" -eq "$N" ] || tm_fail "want $N first certificates"
cp -a "$TM_TOKDIR" "$TM_TMP/template.tokens"
cp -a "$CA" "$TM_TMP/template.ca"
# stores alternate: renewal on the same key pair (the default), then --rekey
STORE_NO=0
new_station() {
    STORE_NO=$((STORE_NO + 1))
    if [ $((STORE_NO % 2)) -eq 0 ]; then MODE=(--rekey); else MODE=(); fi
    rm -rf "$TM_TOKDIR" "$CA"
    cp -a "$TM_TMP/template.tokens" "$TM_TOKDIR"
    cp -a "$TM_TMP/template.ca" "$CA"
    LOST=()
}
# With RENEW_EXEC set the function execs the tool: run in the background, $!
# is then the tool itself (otherwise it is a subshell that forks the tool, and
# kill -9 of that subshell left the renew running on, holding its tokens'
# locks into the next run).
renew() { ${RENEW_EXEC:+exec} "$T" renew --all --ca "$CA" --within 10 --pin-source "$PIN" "${MODE[@]}" "$@"; }

# state: serial and certificate count of every token present, in $TM_TMP/now
state() {
    "$T" tokens --json >"$TM_TMP/tokens.json" || tm_fail "tokens --json failed"
    paste <("$TJ" get serial <"$TM_TMP/tokens.json") \
        <("$TJ" get certificates <"$TM_TMP/tokens.json") | awk -F'\t' '$1 != ""' >"$TM_TMP/now"
    awk -F'\t' '$2 > 2 || $2 < 1 {bad = 1} END {exit bad}' "$TM_TMP/now" ||
        { cat "$TM_TMP/now"; tm_fail "a token holds no certificate or more than two (seed $SEED)"; }
}

after_kill() {
    local s
    cp "$TM_TMP/now" "$TM_TMP/before"
    state
    for s in $(awk -F'\t' '$2 == 2 {print $1}' "$TM_TMP/before"); do
        grep -q "^$s	2\$" "$TM_TMP/now" ||
            tm_fail "token $s was renewed before the run and is lost or changed after the kill (seed $SEED)"
    done
    for s in "${ALL[@]}"; do
        if ! grep -q "^$s	" "$TM_TMP/now" && ! [[ " ${LOST[*]} " == *" $s "* ]]; then
            LOST+=("$s")
            LOST_TOTAL=$((LOST_TOTAL + 1))
        fi
    done
    [ "$(find "$TM_TOKDIR" -name token.object -empty | wc -l)" -eq "${#LOST[@]}" ] ||
        { ls -lR "$TM_TOKDIR"; tm_fail "a token is missing without SoftHSM2's empty token.object"; }
}

check_store() {
    local s new
    renew --json >"$TM_TMP/rerun.json" ||
        { cat "$TM_TMP/rerun.json"; "$T" tokens; tm_fail "renew re-run after the kills failed: a token is stuck (seed $SEED)"; }
    renew >"$TM_TMP/rerun2.txt" || tm_fail "a second re-run failed (seed $SEED)"
    grep -q "already done *$((N - ${#LOST[@]}))\$" "$TM_TMP/rerun2.txt" ||
        { cat "$TM_TMP/rerun2.txt"; tm_fail "after the re-run every token left should be done (seed $SEED)"; }
    state
    [ "$(awk -F'\t' '$2 == 2' "$TM_TMP/now" | wc -l)" -eq $((N - ${#LOST[@]})) ] ||
        { "$T" tokens; tm_fail "every token should hold its old and its new certificate (seed $SEED)"; }
    "$T" ca list "$CA" --status valid >"$TM_TMP/valid.tsv"
    for s in "${ALL[@]}"; do
        [[ " ${LOST[*]} " == *" $s "* ]] && continue
        [ "$(awk -F'\t' -v t="$s" '$3 == t' "$TM_TMP/valid.tsv" | wc -l)" -eq 1 ] ||
            { "$T" ca list "$CA"; tm_fail "token $s: want exactly one valid certificate at the CA (seed $SEED)"; }
        new=$(awk -F'\t' -v t="$s" '$3 == t {print $1}' "$TM_TMP/valid.tsv")
        grep -qx "$new" "$TM_TMP/old_serials" && tm_fail "token $s: its valid certificate is still the old one (seed $SEED)"
        openssl x509 -in "$CA/newcerts/$new.pem" -noout -checkend $((400 * 86400)) >/dev/null ||
            tm_fail "token $s: its valid certificate expires soon (seed $SEED)"
    done
    "$T" ca list "$CA" --status superseded | cut -f1 | sort >"$TM_TMP/sup"
    [ "$(comm -23 "$TM_TMP/sup" "$TM_TMP/old_serials")" = "" ] || tm_fail "a new certificate was superseded (seed $SEED)"
    [ "$(wc -l <"$TM_TMP/sup")" -ge $((N - ${#LOST[@]})) ] || tm_fail "every old certificate of a token left should be superseded (seed $SEED)"
    tool_check_invariants "$CA" 2
}

# How long a full renew takes here: the kill points are spread over 1.2 times that.
new_station
t0=$(date +%s%N)
renew >"$TM_TMP/probe.out" 2>&1 || { cat "$TM_TMP/probe.out"; tm_fail "the probe run failed"; }
span=$((($(date +%s%N) - t0) * 12 / 10000000))
echo "kill points spread over 0..${span} ms"

landed=0 tries=0 LOST_TOTAL=0 stores=0 here=0 runs=0 after_ca=0 mid_write=0
new_station
state
while [ "$landed" -lt "$WANT" ] && [ "$tries" -lt $((WANT * 4)) ]; do
    tries=$((tries + 1))
    # after 4 kills or 6 runs in a store: the clean re-run and the checks,
    # then a fresh store
    if [ "$here" -ge 4 ] || [ "$runs" -ge 6 ]; then
        check_store
        stores=$((stores + 1))
        new_station
        state
        here=0 runs=0
    fi
    runs=$((runs + 1))
    # a run with tokens to renew: anywhere in it (the writes come last, for
    # all tokens together); one with none: in its no-op pass, which must
    # never cost a renewed token
    rem=$(awk -F'\t' '$2 == 1' "$TM_TMP/now" | wc -l)
    if [ "$rem" -gt 0 ]; then ms=$((RANDOM % (30 + span))); else ms=$((RANDOM % 120)); fi
    RENEW_EXEC=1 renew >"$TM_TMP/run.out" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    if kill -9 "$pid" 2>/dev/null; then
        landed=$((landed + 1))
        here=$((here + 1))
        killed=1
    else
        killed=0
    fi
    wait "$pid" 2>/dev/null || true
    after_kill
    # where the kill came: after the CA issued (more records than first
    # certificates), with some tokens written and some not
    if [ "$killed" -eq 1 ]; then
        [ "$(wc -l <"$CA/index.txt")" -gt "$N" ] && after_ca=$((after_ca + 1))
        [ "$(awk -F'\t' '$2 == 1' "$TM_TMP/now" | wc -l)" -gt 0 ] &&
            [ "$(awk -F'\t' '$2 == 2' "$TM_TMP/now" | wc -l)" -gt 0 ] && mid_write=$((mid_write + 1))
    fi
done
check_store
stores=$((stores + 1))
echo "$landed kills landed in $tries runs over $stores stores ($after_ca after the CA issued, $mid_write amid the writes); $LOST_TOTAL token(s) lost to SoftHSM2's token.object rewrite"
[ "$landed" -ge "$WANT" ] || tm_fail "only $landed kills landed (want $WANT)"
echo "PASS: $landed kill -9s during renew; every token left has one valid certificate, the new one, on the token"
