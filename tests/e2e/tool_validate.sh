#!/usr/bin/env bash
# Usage errors are found before the first token is touched (issue 10,
# item 7): exit 2, one message, no key pair generated anywhere.
# - a purpose the profile cannot give a key type (--purpose encrypt
#   --key-type ed25519), for issue and csr;
# - a missing PIN file, and no terminal to ask for the PIN on: one error,
#   not exit 1 per token.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 3 >/dev/null
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null

untouched() {
    "$T" tokens --json >"$TM_TMP/tokens.json"
    [ "$("$TJ" get key_pairs <"$TM_TMP/tokens.json" | sort -u)" = 0 ] ||
        { "$T" tokens; tm_fail "$1: a key pair was generated"; }
}
# usage WHAT PATTERN CMD...: exit 2, PATTERN once on stderr, nothing on any token
usage() {
    local what=$1 want=$2 rc=0
    shift 2
    "$@" >"$TM_TMP/out" 2>"$TM_TMP/err" </dev/null || rc=$?
    [ "$rc" -eq 2 ] || { cat "$TM_TMP/out" "$TM_TMP/err"; tm_fail "$what: exit $rc, want 2"; }
    [ "$(grep -c -- "$want" "$TM_TMP/err")" -eq 1 ] ||
        tm_fail "$what: one message saying '$want', got: $(cat "$TM_TMP/err")"
    untouched "$what"
}

usage "issue encrypt/ed25519" "purpose encrypt is not defined for eddsa keys" \
    "$T" issue --all --ca "$CA" --pin-source "$PIN" --purpose encrypt --key-type ed25519
usage "csr encrypt/ed25519" "purpose encrypt is not defined for eddsa keys" \
    "$T" csr --all --pin-source "$PIN" --purpose encrypt --key-type ed25519
usage "missing PIN file" "$TM_TMP/nopin" \
    "$T" issue --all --ca "$CA" --pin-source "$TM_TMP/nopin"
# setsid: no controlling terminal, so no prompt is possible
usage "no terminal" "no PIN: a token needs its user PIN and there is no terminal" \
    setsid -w "$T" issue --all --ca "$CA"
# A key type the profile allows for the purpose goes ahead.
"$T" issue --all --ca "$CA" --pin-source "$PIN" --purpose encrypt --key-type rsa:2048 >/dev/null ||
    tm_fail "encrypt with rsa:2048 should be issued"
echo "PASS: usage errors before any token is touched"
