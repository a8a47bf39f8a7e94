#!/usr/bin/env bash
# The man pages (issue 14): all five built, lint clean (mandoc -T lint at
# warning level, groff -ww), tokenmint(1) has a section for every command the
# tool lists, and tokenmint-pkcs11(7)'s troubleshooting names every code the
# module returns for a policy refusal (read from pkcs11/policy.c and the
# refusals in pkcs11/objects.c), so neither can drift from the code.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"
man="$TM_BUILD_DIR/man"
for t in mandoc groff; do command -v $t >/dev/null || tm_fail "$t is not installed (.ci/setup.sh)"; done
for p in tokenmint.1 tokenmint-pkcs11.7 tokenmint.conf.5 provider-tokenmint.7 tokenmint-profile.5; do
    [ -s "$man/$p" ] || tm_fail "man page $p not built (scdoc installed? TOKENMINT_MAN=ON?)"
    out=$(mandoc -T lint -W warning "$man/$p" 2>&1) || tm_fail "mandoc -T lint $p: $out"
    out=$(groff -man -ww -z "$man/$p" 2>&1)
    [ -z "$out" ] || tm_fail "groff warnings in $p: $out"
done

# Every command of `tokenmint --help` has its own subsection.
text=$(MANWIDTH=200 man -l "$man/tokenmint.1" 2>/dev/null)
headings=$(grep -E '^   tokenmint ' <<<"$text")
"$TM_TOOL" --help | awk '/^  [a-z]/ { print $1, $2 }' | while read -r w1 w2; do
    c=$w1
    "$TM_TOOL" "$w1" "$w2" --help 2>&1 | tm_grepq "^usage: tokenmint $w1 $w2" && c="$w1 $w2"
    grep -Eq "tokenmint $c(\$|,)" <<<"$headings" || tm_fail "tokenmint(1) has no section for '$c'"
    grep -q "tokenmint $c" <<<"$(sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' <<<"$text")" ||
        tm_fail "tokenmint(1) synopsis lacks '$c'"
done

# Troubleshooting: every refusal code of the write policy.
codes=$( (grep -o 'out->rv = CKR_[A-Z_]*' "$TM_SOURCE_DIR/pkcs11/policy.c" | sed 's/.*= //'
    awk '/rv = CKR_[A-Z_]*;/ { c = $3; sub(/;/, "", c); next }
         /_audit_slot\(.*"refused"/ && c { print c } { c = "" }' "$TM_SOURCE_DIR/pkcs11/objects.c") |
    grep -v -e CKR_OK -e CKR_HOST_MEMORY -e CKR_ARGUMENTS_BAD | sort -u)
[ -n "$codes" ] || tm_fail "found no refusal codes in pkcs11/"
trouble=$(MANWIDTH=200 man -l "$man/tokenmint-pkcs11.7" 2>/dev/null | sed -n '/^TROUBLESHOOTING/,/^[A-Z]/p')
for c in $codes; do
    grep -Eq "^       $c\$" <<<"$trouble" || tm_fail "tokenmint-pkcs11(7) troubleshooting lacks $c"
done
echo PASS
