# shellcheck shell=bash
# Shared setup for the tool's end-to-end tests (sourced, not a test itself).
# Tokens are reached through the tokenmint module over SoftHSM2; the token
# keys through the tokenmint provider.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
tm_tmpdir
export TOKENMINT_MODULE="$TM_MODULE"
export TOKENMINT_PROVIDER_DIR="$TM_PROVIDER_DIR"
export TOKENMINT_BACKEND="${TOKENMINT_BACKEND:-$TM_SOFTHSM_MODULE}"
unset TOKENMINT_CONF TOKENMINT_TOOL_CONF
# the station's state (the record of refused PINs) per test, not in /var/lib
export TOKENMINT_STATE_DIR="$TM_TMP/state"
T="$TM_TOOL"
PIN="$TM_TMP/pin"
echo "$TM_USER_PIN" >"$PIN"
chmod 600 "$PIN"


TJ="$TM_BUILD_DIR/tests/tool_json"
[ -x "$TJ" ] || tm_fail "$TJ is not built (cmake --build)"

# The invariants after any run: every certificate on a token certifies its
# own key pair (never two on one key), every certificate in the CA database
# is on a token, and every certificate on a token is in the CA database.
# PER_LOST (default 1): how many CA-only certificates a token lost to
# SoftHSM2 may leave (a renewal: its old one and its new one).
tool_check_invariants() {
    local ca=$1 per_lost=${2:-1} s
    "$T" verify --all --ca "$ca" >"$TM_TMP/verify.out" ||
        { cat "$TM_TMP/verify.out"; tm_fail "verify found a bad certificate"; }
    "$T" tokens --json >"$TM_TMP/tokens.json" || tm_fail "tokens --json failed"
    # every certificate certifies a key pair of its own token, and every
    # certified key pair has one (a same-key renewal leaves two on one key)
    paste <("$TJ" get certificates <"$TM_TMP/tokens.json") \
        <("$TJ" get key_pairs <"$TM_TMP/tokens.json") \
        <("$TJ" get free_key_pairs <"$TM_TMP/tokens.json") \
        <("$TJ" get keyless_certificates <"$TM_TMP/tokens.json") |
        awk -F'\t' '$4 != 0 || $1 < $2 - $3 {bad = 1} END {exit bad}' ||
        tm_fail "a token holds a certificate that certifies no key pair of its own"
    # never two valid certificates for one key and purpose at the CA
    "$T" ca list "$ca" --status valid --json >"$TM_TMP/valid.json" || tm_fail "ca list --json failed"
    [ "$(paste <("$TJ" get spki_sha256 <"$TM_TMP/valid.json") <("$TJ" get purpose <"$TM_TMP/valid.json") |
        sort | uniq -d)" = "" ] ||
        tm_fail "the CA holds two valid certificates for one key"
    awk '/^OK/ {print $5}' "$TM_TMP/verify.out" | sort >"$TM_TMP/on_tokens"
    cut -f4 "$ca/index.txt" | sort >"$TM_TMP/in_ca"
    [ "$(uniq -d "$TM_TMP/in_ca")" = "" ] || tm_fail "duplicate serial in index.txt"
    for s in $(cat "$TM_TMP/in_ca"); do
        [ -s "$ca/newcerts/$s.pem" ] || tm_fail "index names $s without its certificate file"
    done
    # A kill -9 inside SoftHSM2's in-place rewrite of token.object (every
    # C_Login) empties the file: that token is gone, and the certificate the CA
    # issued to it can be on no token. Such certificates are allowed only one
    # per lost token; nothing may be on a token without being in the CA.
    local lost only_ca only_tok
    lost=$(find "$TM_TOKDIR" -name token.object -empty | wc -l)
    only_ca=$(comm -23 "$TM_TMP/in_ca" "$TM_TMP/on_tokens" | wc -l)
    only_tok=$(comm -13 "$TM_TMP/in_ca" "$TM_TMP/on_tokens" | wc -l)
    if [ "$only_tok" -ne 0 ] || [ "$only_ca" -gt $((lost * per_lost)) ]; then
        diff "$TM_TMP/in_ca" "$TM_TMP/on_tokens" || true
        tm_fail "the CA database and the tokens disagree (< only in the CA, > only on a token; $lost token(s) lost to SoftHSM2)"
    fi
    TM_CA_ONLY=$only_ca
    [ "$lost" -eq 0 ] || echo "invariants: $lost token(s) lost to SoftHSM2's token.object rewrite; $only_ca certificate(s) only in the CA for them"
    echo "invariants: $(wc -l <"$TM_TMP/in_ca") certificates, each on its token and in the CA"
}
