#!/usr/bin/env bash
# Calls on different tokens run in parallel: while one thread sits in a slow
# backend C_Login on token A (the shim delays it by 3 s), another thread
# opens a session, reads token info, draws random bytes and refreshes the
# slot list on token B, and is done before A's login returns. (An ordering
# check with a wide margin, not a timing measurement.)
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"

tm_make_tokens 2
tm_shim_setup a "$TM_SOFTHSM_MODULE"
tm_shim_latency C_Login 3000
export TOKENMINT_BACKEND="$TM_SHIM_MODULE"

out=$("$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" parallel "${TM_SERIALS[0]}" \
    "${TM_SERIALS[1]}" "$TM_USER_PIN") || tm_fail "client: $out"
grep -qx "parallel yes" <<<"$out" || tm_fail "token B waited for token A's C_Login: $out"
echo PASS
