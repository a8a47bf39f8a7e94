#!/usr/bin/env bash
# A bad config or backend fails C_Initialize with a message naming file, line
# and problem: on stderr with TOKENMINT_DEBUG, and in the audit log.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"

tm_make_tokens 1
audit="$TM_TMP/audit.jsonl"
conf="$TM_TMP/tokenmint.conf"
export TOKENMINT_CONF="$conf"

init_fails() { # EXPECTED-MESSAGE
    local out
    if out=$(TOKENMINT_DEBUG=1 pkcs11-tool --module "$TM_MODULE" -L 2>&1); then
        tm_fail "C_Initialize succeeded with a bad config: $(cat "$conf")"
    fi
    grep -qF "$1" <<<"$out" || tm_fail "stderr lacks '$1': $out"
    # without TOKENMINT_DEBUG the module prints nothing itself, but syslog
    # has the reason (issue 10 item 9: a person must find it)
    : >"$TM_SYSLOG_FILE"
    out=$(LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$TM_SYSLOG_CAPTURE" \
        pkcs11-tool --module "$TM_MODULE" -L 2>&1 || true)
    grep -qF "$1" <<<"$out" && tm_fail "message printed without TOKENMINT_DEBUG"
    grep -F "tokenmint-pkcs11: C_Initialize failed: " "$TM_SYSLOG_FILE" | tm_grepq -F "$1" ||
        tm_fail "syslog lacks '$1': $(cat "$TM_SYSLOG_FILE")"
    return 0
}
export TM_SYSLOG_FILE="$TM_TMP/syslog.txt"

cat >"$conf" <<CONF
[tokenmint]
backends = softhsm
audit_log = $audit
audit_lgo = /tmp/typo
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
init_fails "$conf:4: unknown key 'audit_lgo' in [tokenmint]"
tail -1 "$audit" | tm_grepq -F "\"op\":\"config\",\"outcome\":\"error\",\"detail\":\"$conf:4: unknown key" ||
    tm_fail "config error not in the audit log: $(cat "$audit")"

# issue 10 item 1: unknown section, missing include, audit log it cannot write
cat >"$conf" <<CONF
[tokenmint]
backends = softhsm
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
[tokenmnt]
station_secret = /tmp/x
CONF
init_fails "$conf:5: unknown section [tokenmnt]"

cat >"$conf" <<CONF
.include $TM_TMP/station.d/secret.cnf
[tokenmint]
backends = softhsm
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
init_fails "$conf:1: .include $TM_TMP/station.d/secret.cnf: No such file or directory"
mkdir "$TM_TMP/station.d"
printf '[tokenmint]\naudit_log = %s\n' "$audit" >"$TM_TMP/station.d/secret.cnf"
pkcs11-tool --module "$TM_MODULE" -L >/dev/null || tm_fail "an include that exists was refused"
# includedir sends a relative .include elsewhere than the file checked
cat >"$conf" <<CONF
.pragma includedir:$TM_TMP/elsewhere
.include secret.cnf
[tokenmint]
backends = softhsm
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
init_fails "$conf:1: .pragma includedir is refused"

# The include check reads what NCONF reads (issue 10, found by fuzz_toolconf
# in the tool's twin of this check). A directory's x.CNF is read by OpenSSL
# (the suffix in any case): a FIFO by that name blocked C_Initialize.
mkdir "$TM_TMP/conf.d"
mkfifo "$TM_TMP/conf.d/held.CNF"
cat >"$conf" <<CONF
.include $TM_TMP/conf.d
[tokenmint]
backends = softhsm
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
timeout 20 pkcs11-tool --module "$TM_MODULE" -L >/dev/null 2>&1 && tm_fail "a FIFO x.CNF include was accepted"
[ $? -eq 124 ] && tm_fail "a FIFO named x.CNF in an included directory hung C_Initialize"
init_fails "$TM_TMP/conf.d/held.CNF: included file is not a regular file"
rm "$TM_TMP/conf.d/held.CNF"
# A relative include is read under OPENSSL_CONF_INCLUDE whenever that is set,
# even empty ("secret.cnf" is then "/secret.cnf"): the file checked must be
# that one, not the one in the working directory.
(
    cd "$TM_TMP/station.d"
    printf '.include secret.cnf\n[tokenmint]\nbackends = softhsm\n[backend_softhsm]\nmodule = %s\n' \
        "$TM_SOFTHSM_MODULE" >"$conf"
    OPENSSL_CONF_INCLUDE= init_fails "$conf:1: .include /secret.cnf: No such file or directory"
    OPENSSL_CONF_INCLUDE=$TM_TMP/station.d/ pkcs11-tool --module "$TM_MODULE" -L >/dev/null ||
        tm_fail "an include found under OPENSSL_CONF_INCLUDE was refused"
)
# A NUL or control character: NCONF reads the line otherwise than the check.
printf '.include %s\0x\n[tokenmint]\nbackends = softhsm\n[backend_softhsm]\nmodule = %s\n' \
    "$TM_TMP/station.d/secret.cnf" "$TM_SOFTHSM_MODULE" >"$conf"
init_fails "$conf:1: control character 0x00"
printf '[tokenmint]\nbackends = softhsm\n[backend_softhsm]\nmodule = %s\v\n' "$TM_SOFTHSM_MODULE" >"$conf"
init_fails "$conf:4: control character 0x0b"

for bad in /dev/full "$TM_TMP" "$TM_TMP/no-such-dir/audit.jsonl"; do
    cat >"$conf" <<CONF
[tokenmint]
backends = softhsm
audit_log = $bad
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
    init_fails "audit_log: audit log $bad: "
done
mkfifo "$TM_TMP/fifo"
sed -i "s|^audit_log = .*|audit_log = $TM_TMP/fifo|" "$conf"
timeout 20 pkcs11-tool --module "$TM_MODULE" -L >/dev/null 2>&1 && tm_fail "a FIFO audit log was accepted"
[ $? -eq 124 ] && tm_fail "a FIFO audit log hung C_Initialize"
init_fails "audit_log: audit log $TM_TMP/fifo: "

cat >"$conf" <<CONF
[tokenmint]
backends = softhsm
audit_log = $audit
[backend_softhsm]
module = $TM_TMP/no-such-module.so
CONF
init_fails "backend 'softhsm': cannot load $TM_TMP/no-such-module.so"
tail -1 "$audit" | tm_grepq "no-such-module.so" || tm_fail "missing backend not audited"

cat >"$conf" <<CONF
[tokenmint]
backends = me
[backend_me]
module = $TM_MODULE
CONF
init_fails "is tokenmint itself"

cat >"$conf" <<CONF
[tokenmint]
backends = softhsm
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
uri = pkcs11:token=%ZZ
CONF
init_fails "$conf:5: uri 'pkcs11:token=%ZZ' is not a valid PKCS#11 URI"

# a backend by its p11-kit registered name (Debian's softhsm2 package registers "softhsm2")
cat >"$conf" <<CONF
[tokenmint]
backends = reg
[backend_reg]
p11kit_module = softhsm2
CONF
pkcs11-tool --module "$TM_MODULE" -L | tm_grepq "serial num *: ${TM_SERIALS[0]}" ||
    tm_fail "backend by p11-kit name did not load"
sed -i 's/= softhsm2/= no-such-name/' "$conf"
init_fails "backend 'reg': cannot load no-such-name: no module named 'no-such-name' is registered with p11-kit"

unset TOKENMINT_CONF
out=$(env -u TOKENMINT_BACKEND TOKENMINT_DEBUG=1 pkcs11-tool --module "$TM_MODULE" -L 2>&1) &&
    [ -n "$(ls /etc/tokenmint/tokenmint.conf /usr/local/etc/tokenmint/tokenmint.conf 2>/dev/null)" ] ||
    tm_grepq "no configuration: TOKENMINT_CONF and TOKENMINT_BACKEND are not set" <<<"$out" ||
    tm_fail "no config gave: $out"

# TOKENMINT_BACKEND stands in for a config file
TOKENMINT_BACKEND="$TM_SOFTHSM_MODULE" pkcs11-tool --module "$TM_MODULE" -L |
    tm_grepq "serial num *: ${TM_SERIALS[0]}" || tm_fail "TOKENMINT_BACKEND did not work"
echo PASS
