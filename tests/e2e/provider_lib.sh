# Common setup for the provider's e2e tests (sourced).
#   TM_PROVIDER_ROUTE=direct  the provider talks to SoftHSM2 itself
#   TM_PROVIDER_ROUTE=module  the provider talks to build/pkcs11/tokenmint-pkcs11.so,
#                             which fronts SoftHSM2 (TOKENMINT_BACKEND)
set -euo pipefail
: "${TM_SOURCE_DIR:?}" "${TM_PROVIDER_DIR:?}"
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"

SOFTHSM=${TM_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
case ${TM_PROVIDER_ROUTE:-direct} in
direct) export TOKENMINT_MODULE=$SOFTHSM ;;
module)
    export TOKENMINT_MODULE=${TM_MODULE:?}
    export TOKENMINT_BACKEND=$SOFTHSM
    ;;
*) tm_fail "unknown TM_PROVIDER_ROUTE ${TM_PROVIDER_ROUTE}" ;;
esac
# The provider on the command line, as an admin would type it.
PROV=(-provider-path "$TM_PROVIDER_DIR" -provider tokenmint -provider default)
HW_TYPE=2.25.306879213863795936203097792690857128826.1

# tm_keygen LABEL-INDEX(1-based) KEYTYPE ID: a key pair on token tm-NNNN.
tm_keygen() {
    pkcs11-tool --module "$TM_P11_MODULE" --token-label "$(printf 'tm-%04d' "$1")" --login \
        --pin "$TM_USER_PIN" --keypairgen --key-type "$2" --id "$3" --label "key$3" \
        >/dev/null 2>&1 || tm_fail "pkcs11-tool keygen $2 on token $1"
}

# tm_uri SERIAL ID [extra]: the private key URI with the PIN inline.
tm_uri() {
    echo "pkcs11:serial=$1;id=%$2;type=private;pin-value=$TM_USER_PIN${3:-}"
}

# tm_run WHAT CMD...: runs a stock command, which must exit 0 (a crash at
# exit is a failure too).
tm_run() {
    local what=$1 rc=0
    shift
    "$@" || rc=$?
    [ "$rc" -eq 0 ] || tm_fail "$what: exit status $rc"
}

# tm_profile_req_cnf SERIAL OUT: an openssl req config whose -addext makes the
# hardwareModuleName SAN naming SERIAL.
tm_profile_req_cnf() {
    cat >"$2" <<CNF
[req]
distinguished_name = dn
[dn]
[hwmn]
hwType = OID:$HW_TYPE
hwSerialNum = FORMAT:ASCII,OCTETSTRING:$1
CNF
}
HWMN_SAN="subjectAltName=otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwmn"

# tm_tls WHERE NAME SERVER-ARGS -- CLIENT-ARGS: one TLS handshake between
# stock s_server and s_client (both with "${PFX[@]}" and -CAfile ca.pem in the
# current directory) on a random loopback port; fails on any handshake or
# server error, naming WHERE and NAME. Bounded waits, no fixed sleeps: the
# server's ACCEPT line is polled for.
tm_tls() {
    local where=$1 name=$2 port try srv=() cli=()
    shift 2
    while [ "$1" != -- ]; do srv+=("$1"); shift; done
    shift
    cli=("$@")
    for try in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        # An earlier handshake of the same name left its log: gone before the
        # server starts, or the poll below could read its ACCEPT before the
        # new server has truncated the file, and connect too early.
        rm -f "srv.$name.log" "cli.$name.log"
        # -www: the server answers without reading stdin, and -naccept 1 ends it
        timeout 60 openssl s_server "${PFX[@]}" -accept "127.0.0.1:$port" -naccept 1 -www \
            "${srv[@]}" </dev/null >"srv.$name.log" 2>&1 &
        local spid=$! i
        for i in $(seq 1 1200); do
            grep -q '^ACCEPT' "srv.$name.log" 2>/dev/null && break
            grep -qi 'bind\|address already' "srv.$name.log" 2>/dev/null && break
            kill -0 "$spid" 2>/dev/null || break
            sleep 0.05
        done
        if grep -qi 'address already\|bind' "srv.$name.log"; then
            wait "$spid" || true
            continue
        fi
        grep -q '^ACCEPT' "srv.$name.log" ||
            tm_fail "$where: TLS $name: the server did not start: $(head -c 1500 "srv.$name.log")"
        timeout 60 openssl s_client "${PFX[@]}" -connect "127.0.0.1:$port" -brief -CAfile ca.pem \
            -verify_return_error "${cli[@]}" </dev/null >"cli.$name.log" 2>&1 || true
        wait "$spid" || true
        grep -q 'CONNECTION ESTABLISHED' "cli.$name.log" ||
            tm_fail "$where: TLS $name: client: $(head -c 1500 "cli.$name.log"); server: $(head -c 1500 "srv.$name.log")"
        grep -qi ':error:' "srv.$name.log" &&
            tm_fail "$where: TLS $name: server error: $(grep -i error "srv.$name.log" | head -3)"
        return 0
    done
    tm_fail "$where: TLS $name: no free port"
}
