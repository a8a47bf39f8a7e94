#!/usr/bin/env bash
# The provider's pin-source files (in the URI and the provider's own
# pin-source option) follow the client layer's rules (issue 10, item 12): a
# FIFO is refused at once, a directory is named as such, a file group or
# others may read is refused unless the provider's config says
# allow-open-secrets = on, an empty one is refused. A refused file costs no
# C_Login (TOKENMINT_DEBUG logs each one).
. "$(dirname "$0")/provider_lib.sh"
tm_make_tokens 1
S=${TM_SERIALS[0]}
cd "$TM_TMP"
tm_keygen 1 EC:prime256v1 01
echo hi >data
key="pkcs11:serial=$S;id=%01;type=private"

# refused WHAT WANT SOURCE [CONF]: signing with the key fails within the
# timeout, the message names the file and WANT, and no C_Login was made.
refused() {
    local what=$1 want=$2 src=$3 rc=0
    OPENSSL_CONF=${4:-/dev/null} TOKENMINT_DEBUG=1 timeout 30 openssl dgst "${PROV[@]}" -sha256 \
        -sign "$key?pin-source=file:$src" -out x.sig data </dev/null 2>err.txt || rc=$?
    [ "$rc" -ne 124 ] || tm_fail "$what: openssl still waiting after 30 s (a blocking read)"
    [ "$rc" -ne 0 ] || tm_fail "$what: signed although the PIN file is refused"
    grep -q -- "$want" err.txt || { cat err.txt; tm_fail "$what: no message saying '$want'"; }
    if grep -q 'C_Login token' err.txt; then tm_fail "$what: a login was attempted"; fi
    if grep tokenmint err.txt | grep -q -- "$TM_USER_PIN"; then tm_fail "$what: PIN in a message"; fi
}

mkfifo -m 600 fifo
refused "FIFO" "PIN file $TM_TMP/fifo is a FIFO" "$TM_TMP/fifo"
mkdir -m 700 pindir
refused "directory" "PIN file $TM_TMP/pindir is a directory" "$TM_TMP/pindir"
: >empty.pin
chmod 600 empty.pin
refused "empty" "PIN file $TM_TMP/empty.pin is empty" "$TM_TMP/empty.pin"
echo "$TM_USER_PIN" >open.pin
chmod 644 open.pin
refused "0644" "PIN file $TM_TMP/open.pin has mode 0644" "$TM_TMP/open.pin"

# The provider's option lets the open file through, and nothing else.
cat >open.cnf <<CNF
openssl_conf = init
[init]
providers = provs
[provs]
tokenmint = tm
default = dflt
[tm]
module = $TM_PROVIDER_DIR/tokenmint.so
pkcs11-module = $TOKENMINT_MODULE
allow-open-secrets = on
activate = 1
[dflt]
activate = 1
CNF
OPENSSL_CONF=open.cnf tm_run "sign with a 0644 PIN file and allow-open-secrets = on" \
    openssl dgst -sha256 -sign "$key?pin-source=file:$TM_TMP/open.pin" -out ok.sig data
refused "FIFO with the option" "is a FIFO" "$TM_TMP/fifo" open.cnf

# The provider's own pin-source (for URIs without a PIN) is judged the same.
sed -e '/^allow-open-secrets/d' -e "s|^activate = 1|pin-source = $TM_TMP/open.pin\nactivate = 1|" \
    open.cnf >own.cnf
OPENSSL_CONF=own.cnf TOKENMINT_DEBUG=1 openssl dgst -sha256 -sign "$key" -out y.sig data \
    </dev/null 2>err.txt && tm_fail "the provider's 0644 pin-source was accepted"
grep -q "provider pin-source: PIN file $TM_TMP/open.pin has mode 0644" err.txt ||
    { cat err.txt; tm_fail "provider pin-source: no message naming the mode"; }
if grep -q 'C_Login token' err.txt; then tm_fail "provider pin-source: a login was attempted"; fi
chmod 600 open.pin
OPENSSL_CONF=own.cnf tm_run "sign with the provider's 0600 pin-source" \
    openssl dgst -sha256 -sign "$key" -out z.sig data
echo PASS
