#!/usr/bin/env bash
# The README's demo (.ci/demo) without the package/build step: 16 tokens and
# a local CA in a fresh directory, issue --all, verify --all, in one go.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
tm_tmpdir
out=$(TM_DEMO_NO_SETUP=1 TM_BUILD_DIR="$TM_BUILD_DIR" TM_DEMO_DIR="$TM_TMP/demo" \
    bash "$TM_SOURCE_DIR/.ci/demo" 2>&1) || { echo "$out"; tm_fail "the demo failed"; }
grep -q "issued (new certificate) *16" <<<"$out" || { echo "$out"; tm_fail "16 tokens issued"; }
grep -q "16 certificates verified, 0 bad, 0 tokens without a certificate" <<<"$out" ||
    { echo "$out"; tm_fail "verify --all should pass 16"; }
grep -q ": OK$" <<<"$out" || tm_fail "stock openssl verify"
grep -q "hardwareModuleName" <<<"$out" || tm_fail "show should decode the binding"
[ "$(wc -l <"$TM_TMP/demo/ca/index.txt")" -eq 16 ] || tm_fail "the CA should hold 16 certificates"
echo "PASS: demo"
