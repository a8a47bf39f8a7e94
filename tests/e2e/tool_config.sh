#!/usr/bin/env bash
# The tool config fails closed (issue 10, item 1): a misspelt section, an
# unknown key, a missing include, an audit destination that cannot be
# written, and a config that is not a regular file (/dev/zero, a directory,
# a FIFO) are each refused with exit 2, a message naming the file, line and
# problem, and nothing done to any token.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 2 >/dev/null
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null

# refused CONFIG PATTERN: issue with that config exits 2, says PATTERN, touches nothing
refused() {
    local conf=$1 want=$2 rc=0
    timeout 20 "$T" issue --all --ca "$CA" --pin-source "$PIN" --config "$conf" \
        >"$TM_TMP/out" 2>"$TM_TMP/err" || rc=$?
    [ "$rc" -eq 2 ] || { cat "$TM_TMP/out" "$TM_TMP/err"; tm_fail "config $conf: exit $rc, want 2 ($want)"; }
    grep -q -- "$want" "$TM_TMP/err" || tm_fail "config $conf: message should say '$want': $(cat "$TM_TMP/err")"
    "$T" tokens --json >"$TM_TMP/tokens.json"
    [ "$("$TJ" get key_pairs <"$TM_TMP/tokens.json" | sort -u)" = 0 ] ||
        tm_fail "config $conf: a token was touched"
}

c="$TM_TMP/typo.conf"
printf '[tokenmint]\nprofile = %s\n\n[operatr]\nrequire = yes\n' "$TM_SOURCE_DIR/conf/profile.cnf" >"$c"
refused "$c" "$c line 4: unknown section \[ operatr \]"

c="$TM_TMP/key.conf"
printf '[tokenmint]\nadit = /tmp/x\n' >"$c"
refused "$c" "$c line 2: unknown key \"adit\" in \[ tokenmint \]"

c="$TM_TMP/inc.conf"
printf '.include %s/missing.cnf\n[tokenmint]\n' "$TM_TMP" >"$c"
refused "$c" "$c line 1: .include $TM_TMP/missing.cnf: No such file"

c="$TM_TMP/inc2.conf"
printf '[operator]\nrequire = no\n' >"$TM_TMP/part.cnf"
printf '.include %s/part.cnf\n[operatr]\n' "$TM_TMP" >"$c"
refused "$c" "$c line 2: unknown section"
printf '[operater]\n' >"$TM_TMP/part.cnf"
printf '.include %s/part.cnf\n' "$TM_TMP" >"$c"
refused "$c" "$TM_TMP/part.cnf line 1: unknown section \[ operater \]"

c="$TM_TMP/audit.conf"
printf '[tokenmint]\n\naudit = %s/no/such/dir/audit.jsonl\n' "$TM_TMP" >"$c"
refused "$c" "$c line 3: audit = $TM_TMP/no/such/dir/audit.jsonl: cannot write"

c="$TM_TMP/audit_log.conf"
printf '[tokenmint]\naudit_log = %s/no/such/dir/audit.jsonl\n' "$TM_TMP" >"$c"
refused "$c" "$c line 2: audit_log = $TM_TMP/no/such/dir/audit.jsonl: cannot write"

# Issue 14: the key has the module's name; the old name and the new one
# together are ambiguous and refused, naming both places.
c="$TM_TMP/both.conf"
printf '[tokenmint]\naudit_log = %s/a.jsonl\naudit = %s/b.jsonl\n' "$TM_TMP" "$TM_TMP" >"$c"
refused "$c" "$c line 3: both \"audit_log\" and the old name \"audit\" are set (the other at $c line 2)"

refused /dev/zero "/dev/zero: not a regular file"
refused "$TM_TMP" "$TM_TMP: not a regular file"
mkfifo "$TM_TMP/fifo.conf"
refused "$TM_TMP/fifo.conf" "fifo.conf: not a regular file"

# A directory include: OpenSSL reads each *.cnf / *.conf in it, so each is
# checked like an included file (the loader alone ignored a misspelt section
# there, and NCONF blocked on a FIFO).
mkdir "$TM_TMP/conf.d" "$TM_TMP/fifo.d"
printf '[operatr]\nrequire = yes\n' >"$TM_TMP/conf.d/10-operator.cnf"
c="$TM_TMP/dir.conf"
printf '[tokenmint]\n.include %s/conf.d\n' "$TM_TMP" >"$c"
refused "$c" "$TM_TMP/conf.d/10-operator.cnf line 1: unknown section \[ operatr \]"
mkfifo "$TM_TMP/fifo.d/x.conf"
printf '.include %s/fifo.d\n' "$TM_TMP" >"$c"
refused "$c" "$c line 1: $TM_TMP/fifo.d/x.conf: not a regular file"

# .pragma includedir sends a relative include elsewhere than the file the
# check read: refused (a harmless part.cnf here, a misspelt section there).
mkdir "$TM_TMP/incdir" "$TM_TMP/cwd"
printf '[operatr]\nrequire = yes\n' >"$TM_TMP/incdir/part.cnf"
printf '[operator]\nrequire = no\n' >"$TM_TMP/cwd/part.cnf"
c="$TM_TMP/pragma.conf"
printf '.pragma includedir:%s/incdir\n.include part.cnf\n' "$TM_TMP" >"$c"
(cd "$TM_TMP/cwd" && refused "$c" "$c line 1: .pragma includedir is refused")

# What NCONF reads otherwise than the line check did (found writing the
# fuzz_toolconf target); each passed with exit 0 on the old code:
# a directory's *.CNF (OpenSSL takes the suffix in any case) ...
mkdir "$TM_TMP/upper.d"
printf '[operatr]\nrequire = yes\n' >"$TM_TMP/upper.d/20-operator.CNF"
c="$TM_TMP/upper.conf"
printf '.include %s/upper.d\n' "$TM_TMP" >"$c"
refused "$c" "$TM_TMP/upper.d/20-operator.CNF line 1: unknown section \[ operatr \]"
# ... a relative include under OPENSSL_CONF_INCLUDE (NCONF reads it there) ...
c="$TM_TMP/envinc.conf"
printf '.include part.cnf\n' >"$c"
(cd "$TM_TMP/cwd" && export OPENSSL_CONF_INCLUDE="$TM_TMP/incdir" &&
    refused "$c" "$TM_TMP/incdir/part.cnf line 1: unknown section \[ operatr \]")
# ... ".pragma::require" (a key of a section ".pragma", not a pragma) ...
c="$TM_TMP/pragmakey.conf"
printf '[operator]\n.pragma::require = yes\n' >"$c"
refused "$c" "$c line 2: unknown directive \".pragma::require = yes\""
# ... and a vertical tab after an include's path: NCONF looked for
# "part.cnf\v", skipped it without a word, and require = yes was off.
printf '[operator]\nrequire = yes\n' >"$TM_TMP/part.cnf"
c="$TM_TMP/vtab.conf"
printf '.include %s/part.cnf\v\n' "$TM_TMP" >"$c"
refused "$c" "$c line 1: control character 0x0b"

# A good config still works.
c="$TM_TMP/good.conf"
printf '[tokenmint]\naudit_log = %s/audit.jsonl\n[operator]\nrequire = no\n' "$TM_TMP" >"$c"
"$T" issue --all --ca "$CA" --pin-source "$PIN" --config "$c" >/dev/null 2>"$TM_TMP/err" ||
    tm_fail "a good config"
grep -q '"op":"issue"' "$TM_TMP/audit.jsonl" || tm_fail "the audit log is written"
! grep -q deprecated "$TM_TMP/err" || tm_fail "audit_log is not deprecated: $(cat "$TM_TMP/err")"

# The old name still works, with a warning that names the new one.
c="$TM_TMP/old.conf"
printf '[tokenmint]\naudit = %s/old-audit.jsonl\n' "$TM_TMP" >"$c"
"$T" tokens --config "$c" >/dev/null 2>"$TM_TMP/err" || tm_fail "the old key name is still read"
grep -q '"audit" is deprecated, name it "audit_log"' "$TM_TMP/err" ||
    tm_fail "no deprecation warning: $(cat "$TM_TMP/err")"
"$T" issue --all --ca "$CA" --pin-source "$PIN" --config "$c" >/dev/null 2>&1 ||
    tm_fail "issue with the old key name"
[ -f "$TM_TMP/old-audit.jsonl" ] || tm_fail "the old key name names the audit log"
echo "PASS: the tool config fails closed"
