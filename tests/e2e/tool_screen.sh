#!/usr/bin/env bash
# What a person sees during a long run (issue 14), on a real terminal: the
# tool runs inside tmux, over tokens whose key generation the shim holds for
# 3 s each (a sleep, no CPU), and the pane is read while it runs.
# - `tokens`: sorted by label, no blank spare slot in the list or the count;
# - progress from the first second: a status line, drawn before any token has
#   finished a phase, whose run clock reads 0 s, and which keeps ticking;
# - a line per token as it finishes each phase;
# - the results sorted by label, each failure said once, whole milliseconds
#   in --json.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"
command -v tmux >/dev/null || tm_fail "tmux is not installed (.ci/setup.sh installs it)"
n=6
tm_make_tokens $n
tm_shim_setup s "$TM_SOFTHSM_MODULE" "$SOFTHSM2_CONF"
export TOKENMINT_BACKEND="$TM_SHIM_MODULE"
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null

# The token list: sorted by label, SoftHSM2's blank spare slot (no serial)
# neither listed nor counted.
"$T" tokens >"$TM_TMP/tokens.out"
listed=$(awk 'NR > 1 && $2 ~ /^tm-/ {print $2}' "$TM_TMP/tokens.out")
[ "$(wc -l <<<"$listed")" -eq $n ] || { cat "$TM_TMP/tokens.out"; tm_fail "expected $n tokens listed"; }
[ "$listed" = "$(sort <<<"$listed")" ] || { cat "$TM_TMP/tokens.out"; tm_fail "tokens not sorted by label"; }
[ "$(tail -1 "$TM_TMP/tokens.out")" = "$n tokens" ] ||
    { cat "$TM_TMP/tokens.out"; tm_fail "the spare slot is counted: $(tail -1 "$TM_TMP/tokens.out")"; }
grep -q "not initialised" "$TM_TMP/tokens.out" && tm_fail "the spare slot is listed"

tm_shim_latency C_GenerateKeyPair 3000

sock="$TM_TMP/tmux.sock"
tmx() { tmux -S "$sock" "$@"; }
trap 'tmx kill-server 2>/dev/null || true; rm -rf "$TM_TMP"' EXIT
cat >"$TM_TMP/run.sh" <<RUN
export SOFTHSM2_CONF='$SOFTHSM2_CONF' TOKENMINT_MODULE='$TOKENMINT_MODULE'
export TOKENMINT_PROVIDER_DIR='$TOKENMINT_PROVIDER_DIR' TOKENMINT_BACKEND='$TOKENMINT_BACKEND'
'$T' issue --all --ca '$CA' --pin-source '$PIN' --key-type EC:prime256v1
echo "EXIT=\$?"
sleep 60
RUN
tmx -f /dev/null new-session -d -x 160 -y 50 "bash $TM_TMP/run.sh"
pane() { tmx capture-pane -p -J -S - 2>/dev/null || true; }

# The first screen with anything on it: before any key pair is done (they
# take 3 s), it must already say where the run is.
first=""
for _ in $(seq 1 100); do
    first=$(pane | grep -v '^$' || true)
    [ -n "$first" ] && break
    sleep 0.05
done
grep -q "0/$n signed, 0/$n done" <<<"$first" ||
    tm_fail "the first screen shows no progress: '$first'"
grep -Eq ' 0s *$' <<<"$first" || tm_fail "the progress line was not drawn in the first second: '$first'"
grep -q "request signed" <<<"$first" && tm_fail "a request was signed before the first screen"
# ... and it stays alive while every token waits for its key pair.
sleep 1.3
later=$(pane)
grep -q "request signed" <<<"$later" ||
    grep -Eq "0/$n signed.* [1-9]s *$" <<<"$later" ||
    tm_fail "the status line stopped ticking: '$later'"

for _ in $(seq 1 300); do pane | tm_grepq '^EXIT=' && break; sleep 0.1; done
screen=$(pane)
grep -q '^EXIT=0' <<<"$screen" || { echo "$screen"; tm_fail "issue did not finish with 0"; }
for i in $(seq 1 $n); do
    label=$(printf 'tm-%04d' "$i")
    for phase in "key pair generated, request signed" "certificate issued" \
        "verified, written to the token"; do
        grep -Eq "^ *[0-9]+\.[0-9]s  $label .* $phase" <<<"$screen" ||
            { echo "$screen"; tm_fail "no '$phase' line for $label"; }
    done
done
ok=$(grep '^OK ' <<<"$screen" | awk '{print $3}')
[ "$(wc -l <<<"$ok")" -eq $n ] || { echo "$screen"; tm_fail "expected $n OK lines"; }
[ "$ok" = "$(sort <<<"$ok")" ] || { echo "$screen"; tm_fail "results not sorted by label: $ok"; }
tm_shim_clear

# One line per failure: a token that fails is named once, with its reason.
tm_make_tokens 2 f
export TOKENMINT_BACKEND="$TM_SOFTHSM_MODULE"
echo 9999 >"$TM_TMP/badpin"
chmod 600 "$TM_TMP/badpin"
set +e
"$T" issue --all --ca "$CA" --pin-source "$TM_TMP/badpin" >"$TM_TMP/fail.out" 2>"$TM_TMP/fail.err"
rc=$?
set -e
[ $rc -eq 1 ] || { cat "$TM_TMP/fail.out" "$TM_TMP/fail.err"; tm_fail "wrong PIN: exit $rc, not 1"; }
for s in "${TM_SERIALS[@]}"; do
    # (another token's reason may name this one: count the lines about it)
    c=$(awk -v s="$s" '$1 == s || $2 == s' "$TM_TMP/fail.out" | wc -l)
    [ "$c" -eq 1 ] || { cat "$TM_TMP/fail.out"; tm_fail "token $s named $c times, not once"; }
done

# --json: whole milliseconds, one object per token, sorted by label.
tm_make_tokens 3 j
"$T" issue --all --ca "$CA" --pin-source "$PIN" --key-type rsa:2048 --json >"$TM_TMP/j.json"
grep -Eq '"ms":[0-9]+[,}]' "$TM_TMP/j.json" || tm_fail "ms is not a whole number: $(head -1 "$TM_TMP/j.json")"
grep -Eq '"ms":[0-9]+\.' "$TM_TMP/j.json" && tm_fail "ms has a fraction: $(head -1 "$TM_TMP/j.json")"
labels=$("$TJ" get label <"$TM_TMP/j.json")
[ "$(wc -l <<<"$labels")" -eq 3 ] || tm_fail "expected 3 JSON objects"
[ "$labels" = "$(sort <<<"$labels")" ] || tm_fail "JSON not sorted by label: $labels"
echo PASS
