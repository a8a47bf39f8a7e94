#!/usr/bin/env bash
# Life cycle edges: the 3.0 interfaces offer exactly the 2.40 function list;
# C_Finalize from an exit handler that runs after libcrypto's cleanup does not
# crash; after fork() the child must initialise again and the parent carries on.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"

tm_make_tokens 2
[ "$TM_TOKEN_BACKEND" = tpm ] || export TOKENMINT_BACKEND="$TM_SOFTHSM_MODULE" # tpm: TOKENMINT_CONF
client() { "$TM_BUILD_DIR/tests/tm-pkcs11-client" "$TM_MODULE" "$@"; }

out=$(client interfaces) || tm_fail "interfaces: $out"
grep -qx "count 1" <<<"$out" || tm_fail "expected one interface: $out"
grep -qx "name PKCS 11 version 2.40 same-list yes" <<<"$out" || tm_fail "wrong interface: $out"
grep -qx "functions 68 null 0" <<<"$out" || tm_fail "not every 2.40 function is implemented: $out"
grep -qx "get-default ok" <<<"$out" || tm_fail "C_GetInterface(NULL) failed: $out"
grep -qx "get-2.40 ok" <<<"$out" || tm_fail "C_GetInterface(PKCS 11, 2.40) failed: $out"
grep -qx "get-3.0 refused" <<<"$out" || tm_fail "3.0 offered but not implemented: $out"
grep -qx "get-vendor refused" <<<"$out" || tm_fail "unknown interface offered: $out"

out=$(client atexit-finalize 2>&1) || tm_fail "C_Finalize at exit crashed: $out"
grep -q "finalize at exit: rv 0x0" <<<"$out" || tm_fail "C_Finalize at exit: $out"

out=$(client fork 2>&1) || tm_fail "fork: $out"
grep -qx "child before init: rv 0x190" <<<"$out" || tm_fail "child not told to initialise: $out"
grep -qx "child slots 3" <<<"$out" || tm_fail "child could not use the module: $out"
grep -qx "parent slots 3 3" <<<"$out" || tm_fail "parent lost its slots: $out"
echo PASS
