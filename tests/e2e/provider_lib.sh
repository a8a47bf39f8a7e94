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
    pkcs11-tool --module "$SOFTHSM" --token-label "$(printf 'tm-%04d' "$1")" --login \
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
