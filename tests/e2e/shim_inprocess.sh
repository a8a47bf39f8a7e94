#!/bin/bash
# The test shim inside one process: two copies over two SoftHSM2 stores, a
# token removed and re-inserted under an open session, Nth-call failures.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
. "$TM_SOURCE_DIR/tests/lib/shim.sh"

tm_make_tokens 2
store_a=$SOFTHSM2_CONF serial_a=${TM_SERIALS[0]}
tm_make_tokens 1 b
store_b=$SOFTHSM2_CONF serial_b=${TM_SERIALS[0]}
# neither store comes from the environment: each shim sets its own
unset SOFTHSM2_CONF

tm_shim_setup b "$TM_SOFTHSM_MODULE" "$store_b"
export TM_SHIM_B=$TM_SHIM_MODULE
tm_shim_setup a "$TM_SOFTHSM_MODULE" "$store_a"
export TM_SHIM_A=$TM_SHIM_MODULE

lib=". '$TM_SOURCE_DIR/tests/lib/tokens.sh'; . '$TM_SOURCE_DIR/tests/lib/shim.sh'; TM_TMP='$TM_TMP'; tm_shim_use a"
export TM_SERIAL_A=$serial_a TM_SERIAL_B=$serial_b
export TM_CMD_HIDE="bash -c \"$lib; tm_shim_hide $serial_a\""
export TM_CMD_SHOW="bash -c \"$lib; tm_shim_show $serial_a\""
export TM_CMD_FAIL3="bash -c \"$lib; tm_shim_fail C_GenerateRandom 3 CKR_DEVICE_ERROR\""
export TM_CMD_STICKY="bash -c \"$lib; tm_shim_fail C_GenerateRandom 2 0x30 sticky\""
export TM_CMD_CLEAR="bash -c \"$lib; tm_shim_clear\""

"$TM_BUILD_DIR/tests/shim/tokenmint-shim-check"
