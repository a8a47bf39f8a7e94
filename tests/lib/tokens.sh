# Test helper: a SoftHSM2 token store of N initialised tokens in a fresh
# temporary directory, removed when the calling shell exits.
#
#   . tests/lib/tokens.sh
#   tm_make_tokens 8            # exports SOFTHSM2_CONF, TM_TOKDIR, TM_SERIALS (array)
#   tm_make_tokens 4 b          # a second, separate store (labels tm-b0001...)
#
# Labels are tm-0001 ... tm-NNNN: all the same width, so none is a prefix of
# another (pkcs11-tool --token-label matches by prefix). User PIN 1234,
# SO PIN 12345678 unless TM_USER_PIN / TM_SO_PIN say otherwise.
#
# TM_TOKEN_BACKEND=tpm (the <test>_tpm variants, tests/tool.cmake): the same
# tokens on tpm2-pkcs11 over a per-test swtpm instead (tests/lib/tpm.sh
# tm_make_tpm_tokens), reached through the tokenmint module, whose config
# (TOKENMINT_CONF, tm_module_conf) names each token's serial in
# token_serials. $TM_P11_MODULE is the module that holds the test's tokens
# (for pkcs11-tool --token-label past tokenmint) on either backend.

TM_SOFTHSM_MODULE=${TM_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
TM_USER_PIN=${TM_USER_PIN:-1234}
TM_SO_PIN=${TM_SO_PIN:-12345678}
TM_TOKEN_BACKEND=${TM_TOKEN_BACKEND:-softhsm}
TM_P11_MODULE=$TM_SOFTHSM_MODULE

# tm_grepq [GREP-OPTIONS] PATTERN: `grep -q` for the end of a pipeline. grep -q
# stops at the first match; under `set -o pipefail` the writer then dies of
# SIGPIPE and the pipeline fails although the line was there (a flake that
# shows when the writer's output spans more than one write). This reads all
# of its input.
tm_grepq() {
    local n
    n=$(grep -c "$@") || true
    [ "${n:-0}" -gt 0 ]
}

tm_tmpdir() {
    TM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokenmint-test.XXXXXX")
    trap 'rm -rf "$TM_TMP"' EXIT
    export TM_TMP
}

# tm_make_tokens N [PREFIX]: N tokens in $TM_TMP/<PREFIX>tokens with their own SOFTHSM2_CONF.
tm_make_tokens() {
    local n=$1 prefix=${2:-} i
    [ -n "${TM_TMP:-}" ] || tm_tmpdir
    if [ "$TM_TOKEN_BACKEND" = tpm ]; then
        tm_make_tpm_tokens "$n" "$prefix"
        return
    fi
    local dir="$TM_TMP/${prefix}tokens"
    mkdir -p "$dir"
    export SOFTHSM2_CONF="$TM_TMP/${prefix}softhsm2.conf"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$dir" >"$SOFTHSM2_CONF"
    for i in $(seq 1 "$n"); do
        softhsm2-util --init-token --free --label "$(printf 'tm-%s%04d' "$prefix" "$i")" \
            --so-pin "$TM_SO_PIN" --pin "$TM_USER_PIN" >/dev/null || return 1
    done
    TM_SERIALS=()
    local s
    while read -r s; do TM_SERIALS+=("$s"); done < <(tm_list_serials)
    export TM_TOKDIR="$dir"
}

# Serials of the initialised tokens of $SOFTHSM2_CONF, one per line, sorted by label.
tm_list_serials() {
    pkcs11-tool --module "$TM_SOFTHSM_MODULE" -L 2>/dev/null |
        awk -F': *' '/token label/{l=$2; sub(/ +$/,"",l)} /serial num/{print l, $2}' |
        sort | awk '{print $2}'
}

# tm_station_secret: a fresh 32-byte station secret (0600) in $secret.
tm_station_secret() {
    secret="$TM_TMP/station.secret"
    head -c 32 /dev/urandom >"$secret"
    chmod 600 "$secret"
}

# tm_module_conf ["KEY = VALUE"...]: the module's config over the test's
# SoftHSM2 (or TPM) tokens as TOKENMINT_CONF ($TM_TMP/tokenmint.conf), its audit log in
# $audit ($TM_TMP/audit.jsonl), with the extra [tokenmint] lines given.
tm_module_conf() {
    local line
    audit="$TM_TMP/audit.jsonl"
    export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
    unset TOKENMINT_BACKEND
    {
        printf '[tokenmint]\nbackends = %s\naudit_log = %s\n' "$TM_TOKEN_BACKEND" "$audit"
        for line in "$@"; do printf '%s\n' "$line"; done
        tm_backend_section
    } >"$TOKENMINT_CONF"
}

# tm_backend_section: the module config's section for the test's tokens,
# [backend_$TM_TOKEN_BACKEND] (a test's own config says `backends =
# $TM_TOKEN_BACKEND`); on the TPM with token_serials naming each token.
tm_backend_section() {
    if [ "$TM_TOKEN_BACKEND" = tpm ]; then
        printf '[backend_tpm]\nmodule = %s\ntoken_serials = %s\n' "$TM_TPM_MODULE" "$TM_TPM_SERIALS"
    else
        printf '[backend_softhsm]\nmodule = %s\n' "$TM_SOFTHSM_MODULE"
    fi
}

tm_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# tm_expect_fail DESCRIPTION CMD...: the command must exit non-zero.
tm_expect_fail() {
    local what=$1
    shift
    if "$@"; then tm_fail "$what: expected failure, command succeeded"; fi
}

case $TM_TOKEN_BACKEND in
softhsm) ;;
tpm) . "${BASH_SOURCE[0]%/*}/tpm.sh" ;;
*) tm_fail "TM_TOKEN_BACKEND=$TM_TOKEN_BACKEND: softhsm or tpm" ;;
esac
