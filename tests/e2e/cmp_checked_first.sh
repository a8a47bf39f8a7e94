#!/usr/bin/env bash
# issue --cmp checks its whole CMP configuration before any token is touched:
# each broken configuration below exits 2 with a message naming what is
# wrong, no key pair appears on any token, and the CMP server sees nothing.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
SRV=$CMP_PID
URL="http://127.0.0.1:$CMP_PORT/pkix/"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout a.key \
    -subj "/CN=a" -days 1 -out a.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out b.key 2>/dev/null

# keys_everywhere: private keys on all tokens together.
keys_everywhere() {
    local i n=0 k
    for i in "${!TM_SERIALS[@]}"; do
        k=$(pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label "$(printf 'tm-%04d' $((i + 1)))" \
            --login --pin "$TM_USER_PIN" -O 2>/dev/null | grep -c 'Private Key Object' || true)
        n=$((n + k))
    done
    echo "$n"
}

# refused WHY ARGS...: issue --all with ARGS exits 2 saying WHY, touching nothing.
refused() {
    local why=$1 rc=0
    shift
    "$T" issue --all --pin-source "$PIN" "$@" >out.txt 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || { cat out.txt; tm_fail "issue $*: exit $rc, want 2"; }
    grep -q -- "$why" out.txt || { cat out.txt; tm_fail "issue $*: message should say '$why'"; }
    [ "$(keys_everywhere)" -eq 0 ] || tm_fail "issue $*: a key pair was generated before the refusal"
    echo "refused: $(head -1 out.txt)"
}

[ "$(keys_everywhere)" -eq 0 ] || tm_fail "fresh tokens should hold no key"
refused "needs --cmp-ref REF" --cmp "$URL" --cmp-root "$CA/ca.pem" --cmp-secret-source "$SECRET"
refused "needs --cmp-secret-source FILE or --cmp-cert" --cmp "$URL" --cmp-root "$CA/ca.pem"
refused "needs --cmp-root FILE" --cmp "$URL" --cmp-secret-source "$SECRET" --cmp-ref station
refused "not an http://HOST:PORT/PATH URL" --cmp "127.0.0.1 port $CMP_PORT" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station
refused "https is not supported" --cmp "https://127.0.0.1:$CMP_PORT/" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station
refused "cmp-cert and --cmp-key go together" --cmp "$URL" --cmp-root "$CA/ca.pem" --cmp-cert a.pem
refused "cmp-key is not the key of --cmp-cert" --cmp "$URL" --cmp-root "$CA/ca.pem" \
    --cmp-cert a.pem --cmp-key b.key
refused "one CA, not both" --ca "$CA" --cmp "$URL" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station
refused "need --cmp URL" --cmp-ref station
[ "$(ca_view_lines "$CA" 0)" -eq 0 ] || tm_fail "the CMP CA must have issued nothing"

# The same configuration, complete, issues: the refusals above were about it.
"$T" issue --all --pin-source "$PIN" --cmp "$URL" --cmp-root "$CA/ca.pem" \
    --cmp-secret-source "$SECRET" --cmp-ref station >ok.out 2>&1 || { cat ok.out; tm_fail "complete config"; }
[ "$(ca_view_lines "$CA" 2)" -eq 2 ] || tm_fail "two certificates with the complete configuration"
cmp_stop "$SRV"
echo "PASS: issue --cmp refuses a broken CMP configuration before touching a token"
