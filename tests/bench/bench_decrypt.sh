#!/bin/bash
# Decryptions and derivations per second through the provider against direct
# PKCS#11 on the same SoftHSM2 token (bench_decrypt.c). Not run by ctest;
# figures are noisy on a shared machine: compare the ratios.
#   TM_SOURCE_DIR=. TM_PROVIDER_DIR=build/provider TM_BUILD_DIR=build \
#       bash tests/bench/bench_decrypt.sh [SECONDS]
set -euo pipefail
SECS=${1:-6}
. "$TM_SOURCE_DIR/tests/e2e/provider_lib.sh"
tm_make_tokens 1
pkcs11-tool --module "$SOFTHSM" --token-label tm-0001 --login --pin "$TM_USER_PIN" --keypairgen \
    --key-type rsa:2048 --id 02 --label key02 --usage-decrypt >/dev/null 2>&1
pkcs11-tool --module "$SOFTHSM" --token-label tm-0001 --login --pin "$TM_USER_PIN" --keypairgen \
    --key-type EC:prime256v1 --id 03 --label key03 --usage-derive >/dev/null 2>&1
echo "route ${TM_PROVIDER_ROUTE:-direct} (module $TOKENMINT_MODULE)"
"$TM_BUILD_DIR/tests/bench_decrypt" "$TM_PROVIDER_DIR" "$TOKENMINT_MODULE" "${TM_SERIALS[0]}" \
    02 03 "$TM_USER_PIN" "$SECS"
