#!/bin/bash
# The write policy against key pairs a real SoftHSM2 token generated (its own
# attribute encodings), without the module in between.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
tm_make_tokens 1
export TM_SERIAL=${TM_SERIALS[0]} TM_USER_PIN TM_SOFTHSM_MODULE
"$TM_BUILD_DIR/tests/tm-policy-softhsm"
