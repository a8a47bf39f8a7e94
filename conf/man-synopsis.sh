#!/bin/sh
# man-synopsis.sh TOOL IN OUT: the scdoc source of tokenmint(1), with the line
# "@SYNOPSIS@" of IN replaced by the usage lines of every command, taken from
# the built TOOL itself (`tokenmint --help`, then `tokenmint COMMAND --help`),
# so that the man page's synopsis is the tool's and cannot drift from it.
set -eu
tool=$1 in=$2 out=$3
tmp=$out.tmp
# The command list: lines "  WORD [SUBWORD] description" of the main help;
# a two-word command is one whose own help says "usage: tokenmint W1 W2".
commands=$("$tool" --help 2>&1 | awk '/^  [a-z]/ { print $1, $2 }' |
    while read -r w1 w2; do
        if "$tool" "$w1" "$w2" --help 2>&1 | grep -q "^usage: tokenmint $w1 $w2"; then
            echo "$w1 $w2"
        else
            echo "$w1"
        fi
    done)
[ -n "$commands" ] || { echo "man-synopsis: $tool --help lists no commands" >&2; exit 1; }
{
    printf '```\n'
    echo "$commands" | while read -r c; do
        # shellcheck disable=SC2086
        "$tool" $c --help 2>&1 | awk '
            /^usage: / { on = 1; sub(/^usage: /, ""); print; next }
            on && /^$/ { exit }
            on { sub(/^       /, ""); print }'
    done | awk '!seen[$0]++'
    printf '```\n'
} >"$tmp.syn"
awk -v syn="$tmp.syn" '
    $0 == "@SYNOPSIS@" { while ((getline l < syn) > 0) print l; next }
    { print }' "$in" >"$tmp"
rm -f "$tmp.syn"
mv "$tmp" "$out"
