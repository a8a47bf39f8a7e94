# Test helper for tokenmint-shim.so, the TEST-ONLY PKCS#11 module that wraps
# a backend and, on command, removes/inserts tokens, slows calls down or makes
# the Nth call of a function fail.
#
#   . "$TM_SOURCE_DIR/tests/lib/tokens.sh"
#   . "$TM_SOURCE_DIR/tests/lib/shim.sh"
#   tm_make_tokens 2
#   tm_shim_setup a /usr/lib/softhsm/libsofthsm2.so "$SOFTHSM2_CONF"
#   pkcs11-tool --module "$TM_SHIM_MODULE" -L     # or TOKENMINT_BACKEND=$TM_SHIM_MODULE
#   tm_shim_hide "${TM_SERIALS[0]}"                # token 1 is "removed"
#   tm_shim_show "${TM_SERIALS[0]}"                # ... and inserted again
#   tm_shim_latency C_GenerateKeyPair 300          # +300 ms per call (0 removes)
#   tm_shim_fail C_Sign 2 CKR_DEVICE_REMOVED       # the 2nd C_Sign from now fails
#   tm_shim_clear                                  # no hidden tokens, latency or failures
#
# tm_shim_setup NAME BACKEND [SOFTHSM2_CONF] makes $TM_TMP/shim-NAME/ holding
#   tokenmint-shim.so       a private copy of $TM_SHIM (one copy = one instance)
#   tokenmint-shim.so.conf  its config (the shim reads "<its own path>.conf")
#   ctl/                    the control directory (files hidden, latency, fail)
# and exports TM_SHIM_MODULE (the copy to load) and TM_SHIM_CTL (its control
# dir). Every shim gets its own copy, so several shims can wrap different
# backends inside one process (e.g. two backends of the tokenmint module).
# With SOFTHSM2_CONF given, the backend library is copied as well and that
# store is put into SOFTHSM2_CONF around the backend's C_Initialize: SoftHSM2
# keeps one global instance per loaded library, so a second store in the same
# process needs its own copy. Without it the backend is loaded in place and
# reads the process environment.
#
# tm_shim_use NAME makes an earlier shim the current one (TM_SHIM_MODULE,
# TM_SHIM_CTL) for the commands below.
#
# Control commands act on $TM_SHIM_CTL. They replace a control file atomically
# (write + rename); the shim notices the change at its next call in every
# process that loaded it, including processes already running.
#   tm_shim_hide SERIAL      the token leaves C_GetSlotList(CK_TRUE); its slot
#                            reports no token; slot calls give CKR_TOKEN_NOT_PRESENT;
#                            its open sessions are closed and give CKR_DEVICE_REMOVED
#   tm_shim_show SERIAL      the token is back (old sessions stay gone)
#   tm_shim_latency FUNC MS  MS milliseconds before each FUNC call (FUNC "*": all)
#   tm_shim_fail FUNC N CKR [sticky]
#                            the Nth FUNC call from now returns CKR (name such as
#                            CKR_DEVICE_REMOVED, or 0x32) without reaching the
#                            backend; with "sticky" every later call too. One
#                            rule per function (a new one replaces the old);
#                            every call rewrites the fail file, which restarts
#                            the count of all fail rules. N counts per process.
#   tm_shim_flags SERIAL FLAG...  C_GetTokenInfo of that token adds the flags
#                            (CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_COUNT_LOW, ...);
#                            no FLAG: back to what the backend says
#   tm_shim_clear            removes every control file
#
# Needs TM_SHIM (set by ctest) and TM_TMP (tm_tmpdir / tm_make_tokens).

tm_shim_setup() {
    local name=$1 backend=$2 store=${3:-}
    local dir
    [ -n "$name" ] && [ -n "$backend" ] || {
        echo "usage: tm_shim_setup NAME BACKEND [SOFTHSM2_CONF]" >&2
        return 1
    }
    [ -f "${TM_SHIM:-}" ] || {
        echo "tm_shim_setup: TM_SHIM (${TM_SHIM:-unset}) is not a file" >&2
        return 1
    }
    [ -f "$backend" ] || {
        echo "tm_shim_setup: backend $backend does not exist" >&2
        return 1
    }
    [ -n "${TM_TMP:-}" ] || tm_tmpdir
    dir="$TM_TMP/shim-$name"
    mkdir -p "$dir/ctl" || return 1
    # copy + rename: a process may still have an earlier copy mapped
    _tm_shim_install "$TM_SHIM" "$dir/tokenmint-shim.so" || return 1
    {
        echo "# written by tests/lib/shim.sh"
        if [ -n "$store" ]; then
            _tm_shim_install "$backend" "$dir/backend-$(basename "$backend")" || return 1
            echo "module = $dir/backend-$(basename "$backend")"
            echo "softhsm2_conf = $store"
        else
            echo "module = $backend"
        fi
        echo "control = $dir/ctl"
    } >"$dir/tokenmint-shim.so.conf"
    tm_shim_use "$name"
}

_tm_shim_install() {
    cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
}

tm_shim_use() {
    local dir="$TM_TMP/shim-$1"
    [ -f "$dir/tokenmint-shim.so.conf" ] || {
        echo "tm_shim_use: no shim named $1" >&2
        return 1
    }
    export TM_SHIM_MODULE="$dir/tokenmint-shim.so"
    export TM_SHIM_CTL="$dir/ctl"
}

# _tm_shim_rewrite FILE: stdin becomes the new content of control file FILE.
_tm_shim_rewrite() {
    local file="$TM_SHIM_CTL/$1" tmp
    [ -d "${TM_SHIM_CTL:-}" ] || {
        echo "shim.sh: no current shim (run tm_shim_setup first)" >&2
        return 1
    }
    tmp=$(mktemp "$TM_SHIM_CTL/.$1.XXXXXX") || return 1
    cat >"$tmp" && mv -f "$tmp" "$file"
}

# Lines of control FILE whose first field is not KEY.
_tm_shim_others() {
    [ -f "$TM_SHIM_CTL/$1" ] || return 0
    awk -v k="$2" '$1 != k' "$TM_SHIM_CTL/$1"
}

tm_shim_hide() {
    [ -n "${1:-}" ] || {
        echo "usage: tm_shim_hide SERIAL" >&2
        return 1
    }
    { _tm_shim_others hidden "$1"; echo "$1"; } | _tm_shim_rewrite hidden
}

tm_shim_flags() {
    local serial=${1:-}
    [ -n "$serial" ] || {
        echo "usage: tm_shim_flags SERIAL [FLAG...]" >&2
        return 1
    }
    shift
    { _tm_shim_others flags "$serial"; [ $# -eq 0 ] || echo "$serial $*"; } | _tm_shim_rewrite flags
}

tm_shim_show() {
    [ -n "${1:-}" ] || {
        echo "usage: tm_shim_show SERIAL" >&2
        return 1
    }
    _tm_shim_others hidden "$1" | _tm_shim_rewrite hidden
}

tm_shim_latency() {
    local func=${1:-} ms=${2:-}
    case "$ms" in '' | *[!0-9]*)
        echo "usage: tm_shim_latency FUNC MS" >&2
        return 1
        ;;
    esac
    {
        _tm_shim_others latency "$func"
        [ "$ms" -eq 0 ] || echo "$func $ms"
    } | _tm_shim_rewrite latency
}

tm_shim_fail() {
    local func=${1:-} n=${2:-} ckr=${3:-} sticky=${4:-}
    case "$n" in '' | *[!0-9]*)
        echo "usage: tm_shim_fail FUNC N CKR [sticky]" >&2
        return 1
        ;;
    esac
    [ -n "$ckr" ] || {
        echo "usage: tm_shim_fail FUNC N CKR [sticky]" >&2
        return 1
    }
    {
        _tm_shim_others fail "$func"
        echo "$func $n $ckr $sticky"
    } | _tm_shim_rewrite fail
}

tm_shim_clear() {
    [ -d "${TM_SHIM_CTL:-}" ] || return 1
    rm -f "$TM_SHIM_CTL/hidden" "$TM_SHIM_CTL/latency" "$TM_SHIM_CTL/fail" "$TM_SHIM_CTL/flags"
}
