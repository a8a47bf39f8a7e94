# Test helper: a TPM-backed PKCS#11 token (tpm2-pkcs11 on swtpm, loopback
# TCP TCTI), made per test in $TM_TMP and stopped when the calling shell
# exits. Source after tests/lib/tokens.sh.
#
#   tm_tpm_available || exit 77  # ctest skip (SKIP_RETURN_CODE 77) outside CI when absent
#   tm_make_tpm_token LABEL      # exports TM_TPM_MODULE, TPM2_PKCS11_TCTI,
#                                # TPM2_PKCS11_STORE, TM_TPM_SERIAL
#
# The token's user PIN is $TM_USER_PIN, its SO PIN $TM_SO_PIN, as for SoftHSM2.
# Without a resource manager swtpm holds 3 transient objects, so the store's
# primary key is made with tpm2_ptool and everything else through PKCS#11
# (tpm2-pkcs11 flushes what it loads).

TM_TPM_MODULE=${TM_TPM_MODULE:-/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so}

# tm_tpm_available: 0 when swtpm, tpm2_ptool and the module are there. Under
# CI=true their absence is a failure (CI installs them: .ci/setup.sh).
tm_tpm_available() {
    local missing=()
    command -v swtpm >/dev/null || missing+=(swtpm)
    command -v tpm2_ptool >/dev/null || missing+=(libtpm2-pkcs11-tools)
    command -v tpm2_flushcontext >/dev/null || missing+=(tpm2-tools)
    [ -e "$TM_TPM_MODULE" ] || missing+=(libtpm2-pkcs11-1)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${CI:-}" = true ]; then
        tm_fail "TPM backend: missing ${missing[*]} (CI installs them in .ci/setup.sh)"
    fi
    echo "SKIP: TPM backend: missing ${missing[*]} (apt-get install ${missing[*]})"
    return 1
}

# Runs at exit (with the temp dir's removal): stops every swtpm this shell started.
tm_tpm_stop_all() {
    local f
    for f in "$TM_TMP"/tpm*/swtpm.pid; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "$TM_TMP"
}

# tm_tpm_swtpm DIR: a swtpm on DIR/state (made when absent), loopback TCP on
# a random port; exports its TCTI for tpm2-pkcs11 and tpm2-tools once it answers.
tm_tpm_swtpm() {
    local dir=$1 port try i
    mkdir -p "$dir/state"
    for try in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        swtpm socket --tpm2 --tpmstate "dir=$dir/state" \
            --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
            --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
            --flags not-need-init,startup-clear --pid "file=$dir/swtpm.pid" \
            --log "file=$dir/swtpm.log" --daemon 2>"$dir/start.err" && break
        port=
    done
    [ -n "$port" ] || tm_fail "swtpm did not start: $(cat "$dir/start.err")"
    export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
    export TPM2_PKCS11_TCTI=$TPM2TOOLS_TCTI
    # ready when it answers a command (bounded poll)
    for i in $(seq 1 200); do
        tpm2_getcap properties-fixed >/dev/null 2>&1 && break
        sleep 0.05
    done
    tpm2_getcap properties-fixed >/dev/null 2>&1 || tm_fail "swtpm on port $port does not answer"
}

# tm_tpm_start: a fresh swtpm with an initialised tpm2-pkcs11 store (its
# primary key persistent in the TPM), its directory in $TM_TPM_DIR; exports
# the TCTI and the store for the module.
tm_tpm_start() {
    local dir
    [ -n "${TM_TMP:-}" ] || tm_tmpdir
    trap tm_tpm_stop_all EXIT
    dir=$(mktemp -d "$TM_TMP/tpm.XXXXXX")
    mkdir -p "$dir/store"
    tm_tpm_swtpm "$dir"
    export TPM2_PKCS11_STORE="$dir/store"
    tpm2_ptool init --path "$dir/store" >"$dir/init.log" 2>&1 ||
        tm_fail "tpm2_ptool init: $(cat "$dir/init.log")"
    tpm2_flushcontext -t >/dev/null 2>&1 || true
    TM_TPM_DIR=$dir
}

# tm_tpm_init_token LABEL: one more initialised token in $TM_TPM_DIR's store
# (tpm2-pkcs11 always offers one uninitialised slot for it).
tm_tpm_init_token() {
    local label=$1 dir=$TM_TPM_DIR slot
    # pkcs11-tool takes slot 0 by default, the first token once there is one
    slot=$(pkcs11-tool --module "$TM_TPM_MODULE" -L 2>/dev/null |
        awk '/^Slot [0-9]+/{s=$2} /uninitialized/{print s; exit}')
    [ -n "$slot" ] || tm_fail "tpm2-pkcs11 offers no uninitialised slot for $label"
    pkcs11-tool --module "$TM_TPM_MODULE" --slot-index "$slot" --init-token --label "$label" --so-pin "$TM_SO_PIN" \
        >>"$dir/token.log" 2>&1 || tm_fail "tpm2-pkcs11 C_InitToken: $(cat "$dir/token.log")"
    pkcs11-tool --module "$TM_TPM_MODULE" --token-label "$label" --login --login-type so \
        --so-pin "$TM_SO_PIN" --init-pin --pin "$TM_USER_PIN" >>"$dir/token.log" 2>&1 ||
        tm_fail "tpm2-pkcs11 C_InitPIN: $(cat "$dir/token.log")"
}

# tm_make_tpm_token LABEL: a fresh swtpm and one initialised tpm2-pkcs11 token.
tm_make_tpm_token() {
    local label=$1
    tm_tpm_start
    tm_tpm_init_token "$label"
    TM_TPM_SERIAL=$(pkcs11-tool --module "$TM_TPM_MODULE" -L 2>/dev/null |
        awk -F': *' -v l="$label" '/token label/{x=$2; sub(/ +$/,"",x)} /serial num/ && x==l {print $2}')
    export TM_TPM_SERIAL TM_TPM_MODULE
}

# tm_make_tpm_tokens N [PREFIX]: tm_make_tokens for TM_TOKEN_BACKEND=tpm. N
# tokens tm-<PREFIX>0001... in one tpm2-pkcs11 store, each on a swtpm of its
# own: clones of the first one's state (same seeds, same persistent primary
# key), the token's tcti in its store config. Tokens sharing one swtpm
# without a resource manager overrun its 3 transient object slots
# (TPM_RC_OBJECT_MEMORY) as soon as two are used at once. Reached through the
# tokenmint module (TOKENMINT_CONF from tm_module_conf): tpm2-pkcs11 reports
# the serial 0000000000000000 for every token, so the backend section's
# token_serials names each TPM<PREFIX>0001..., and TM_SERIALS holds those. A
# second call replaces the first store, as a second SoftHSM2 store replaces
# SOFTHSM2_CONF. Exits 77 (a ctest skip) outside CI without the packages.
tm_make_tpm_tokens() {
    local n=$1 prefix=${2:-} i label dir first first_tcti
    tm_tpm_available || exit 77
    tm_tpm_start
    first=$TM_TPM_DIR first_tcti=$TPM2_PKCS11_TCTI
    TM_SERIALS=()
    TM_TPM_SERIALS=
    for i in $(seq 1 "$n"); do
        label=$(printf 'tm-%s%04d' "$prefix" "$i")
        if [ "$i" -gt 1 ]; then
            dir=$(mktemp -d "$TM_TMP/tpm.XXXXXX")
            cp -r "$first/state" "$dir/state"
            rm -f "$dir/state/.lock"
            tm_tpm_swtpm "$dir"
            TM_TPM_DIR=$dir
        fi
        tm_tpm_init_token "$label"
        tpm2_ptool config --key tcti --value "$TPM2_PKCS11_TCTI" --label "$label" \
            --path "$TPM2_PKCS11_STORE" >>"$TM_TPM_DIR/token.log" 2>&1 ||
            tm_fail "tpm2_ptool config tcti: $(cat "$TM_TPM_DIR/token.log")"
        TM_SERIALS+=("$(printf 'TPM%s%04d' "$prefix" "$i" | tr '[:lower:]' '[:upper:]')")
        TM_TPM_SERIALS+="${TM_TPM_SERIALS:+, }$label:${TM_SERIALS[-1]}"
    done
    # the store's uninitialised slot and C_Initialize use the first swtpm
    TM_TPM_DIR=$first
    export TPM2_PKCS11_TCTI=$first_tcti TPM2TOOLS_TCTI=$first_tcti
    export TM_TOKDIR="$first/store" TM_TPM_SERIALS TM_TPM_MODULE
    TM_P11_MODULE=$TM_TPM_MODULE
    tm_module_conf
}
