# Shared setup for the CMP tests (sourced, not a test itself): the tool's
# test setup plus servers started in the background on a kernel-chosen port
# and stopped when the test exits.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
BC="$TM_BUILD_DIR/tests/bench_cmp"
[ -x "$BC" ] || tm_fail "$BC is not built (cmake --build)"
# issue --cmp keeps its per-token locks under the runtime directory: the
# test's own, never the machine's /run.
export XDG_RUNTIME_DIR="$TM_TMP/run"
mkdir -p "$XDG_RUNTIME_DIR"
SECRET="$TM_TMP/cmp-secret"
echo "cmp-test-shared-secret-$$" >"$SECRET"
chmod 600 "$SECRET"
CMP_PIDS=()
cmp_cleanup() {
    local p
    for p in "${CMP_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${CMP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TM_TMP"
}
trap cmp_cleanup EXIT

# cmp_start NAME CMD...: runs CMD --listen 127.0.0.1:0 --port-file ... in the
# background (output in $TM_TMP/NAME.log); sets CMP_PORT and CMP_PID.
cmp_start() {
    local name=$1 i
    shift
    "$@" --listen 127.0.0.1:0 --port-file "$TM_TMP/$name.port" >"$TM_TMP/$name.log" 2>&1 &
    CMP_PID=$!
    CMP_PIDS+=($CMP_PID)
    for i in $(seq 200); do
        [ -s "$TM_TMP/$name.port" ] && { CMP_PORT=$(cat "$TM_TMP/$name.port"); return 0; }
        kill -0 $! 2>/dev/null || { cat "$TM_TMP/$name.log" >&2; tm_fail "$name did not start"; }
        sleep 0.05
    done
    tm_fail "$name did not report its port"
}

# cmp_stop PID: SIGTERM, which must end the server cleanly (exit 0).
cmp_stop() {
    kill "$1"
    wait "$1" || tm_fail "server $1 did not stop cleanly on SIGTERM"
}

# profile_check FILE...: the profile library's verdict on certificates.
PC="$TM_BUILD_DIR/tests/profile-check"
profile_check() {
    [ -x "$PC" ] || tm_fail "$PC is not built"
    "$PC" "$@" || tm_fail "profile-check refused $*"
}

# cmp_certs_on SERIAL: certificates on that token (labels follow TM_SERIALS order).
cmp_certs_on() {
    local i label=
    for i in "${!TM_SERIALS[@]}"; do
        [ "${TM_SERIALS[$i]}" = "$1" ] && label=$(printf 'tm-%04d' $((i + 1)))
    done
    [ -n "$label" ] || tm_fail "no token with serial $1"
    pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label "$label" -O 2>/dev/null |
        grep -c 'Certificate Object' || true
}

# cmp_signers PREFIX "CA CN" "CLIENT CN": signature protection material in the
# current directory: PREFIXca.{key,pem} a CA the server trusts, PREFIX.{key,pem}
# a client certificate under it, and srv.{key,pem} the server's own CMP
# signer certificate that clients pin.
cmp_signers() {
    local p=$1
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "${p}ca.key" \
        -subj "/CN=$2" -days 2 -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign" -out "${p}ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$p.key" \
        -subj "/CN=$3" -out "$p.csr" 2>/dev/null
    openssl x509 -req -in "$p.csr" -CA "${p}ca.pem" -CAkey "${p}ca.key" -CAcreateserial -days 2 \
        -extfile <(printf 'keyUsage=critical,digitalSignature\n') -out "$p.pem" 2>/dev/null
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
        -subj "/CN=tokenmint CMP signer" -days 2 -addext "keyUsage=critical,digitalSignature" \
        -out srv.pem 2>/dev/null
    [ -s "$p.pem" ] && [ -s srv.pem ] || tm_fail "cmp_signers: openssl could not make the certificates"
}

# `ca serve` rewrites index.txt from its database at most every ~250 ms under
# load (the database is durable before each answer; the view follows): waits
# up to 3 s for the view to hold exactly N lines, then prints the count.
ca_view_lines() { # CA N
    local i n
    for i in $(seq 30); do
        n=$(wc -l <"$1/index.txt")
        [ "$n" -eq "$2" ] && break
        sleep 0.1
    done
    echo "$n"
}
