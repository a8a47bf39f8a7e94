#!/usr/bin/env bash
# The module leaves the host application's OpenSSL error queue alone (issue
# 10 item 14): an error the application put there is still there, alone,
# after C_Initialize (trusted roots read), a refused certificate write and
# C_Finalize.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"

tm_make_tokens 1
cd "$TM_TMP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -subj "/CN=root" -days 2 -out root.pem 2>/dev/null
# a root file with trailing text: reading it to the end queues a PEM error
echo "trailing comment" >>root.pem
# a certificate outside the serial-bound profile: the policy parses, refuses it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x.key \
    -subj "/CN=Alice" -days 2 -outform DER -out alice.der 2>/dev/null
cat >tokenmint.conf <<CONF
[tokenmint]
backends = $TM_TOKEN_BACKEND
trusted_roots = $TM_TMP/root.pem
$(tm_backend_section)
CONF
export TOKENMINT_CONF=$TM_TMP/tokenmint.conf
out=$("$TM_BUILD_DIR/tests/tm-pkcs11-errqueue" "$TM_MODULE" "${TM_SERIALS[0]}" "$TM_USER_PIN" \
    alice.der) || tm_fail "$out"
[ "$out" = kept ] || tm_fail "unexpected output: $out"
echo PASS
