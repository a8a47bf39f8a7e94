#!/usr/bin/env bash
# One option table behind the parser, every command's help, `tokenmint help`
# and the bash completion: for every command, each option its help lists is
# accepted, and every other option of the tool is refused with a message
# naming the option and the command. The completion offers exactly the
# options the help lists; --version names the version.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"

# commands: the first column of `tokenmint help` (one or two words)
mapfile -t CMDS < <("$T" help | sed -n 's/^  \([a-z]*\( [a-z]*\)\?\)  .*/\1/p' | sed 's/ *$//')
[ "${#CMDS[@]}" -ge 12 ] || tm_fail "tokenmint help lists ${#CMDS[@]} commands: ${CMDS[*]}"

# opts_of CMD: "--name ARG" per option its help lists (ARG empty for a flag)
opts_of() {
    # shellcheck disable=SC2086
    "$T" help $1 | sed -n 's/^  \(--[a-z0-9-]*\)\( [^ ]*\)\?\( \|$\).*/\1\2/p'
}
declare -A ALL=()
for c in "${CMDS[@]}"; do
    while read -r name arg; do ALL[$name]=$arg; done < <(opts_of "$c")
done
[ "${#ALL[@]}" -ge 40 ] || tm_fail "only ${#ALL[@]} options in all helps"

checked=0 refused=0
for c in "${CMDS[@]}"; do
    declare -A MINE=()
    while read -r name arg; do MINE[$name]=1; done < <(opts_of "$c")
    # write --help used to list --all, which write refused
    for name in "${!ALL[@]}"; do
        args=("$name")
        [ -n "${ALL[$name]}" ] && args+=(x)
        set +e
        # shellcheck disable=SC2086
        out=$("$T" $c "${args[@]}" --help 2>&1 </dev/null)
        rc=$?
        set -e
        if [ -n "${MINE[$name]:-}" ]; then
            [ "$rc" -eq 0 ] || tm_fail "$c: $name is in its help but refused (exit $rc): $out"
            checked=$((checked + 1))
        else
            [ "$rc" -eq 2 ] || tm_fail "$c: $name is not in its help but accepted (exit $rc)"
            echo "$out" | tm_grepq -- "$c: $name does not apply here" ||
                tm_fail "$c $name: the refusal should name the option and the command: $out"
            refused=$((refused + 1))
        fi
    done
    unset MINE
done
echo "options accepted as listed: $checked, refused as not listed: $refused"

# The message names the option, not its value (it used to say "option 4").
out=$("$T" tokens --ca 4 2>&1) && tm_fail "tokens --ca should be refused"
echo "$out" | tm_grepq -- "tokens: --ca does not apply here" || tm_fail "name the option: $out"
out=$("$T" issue --ca="$TM_TMP" --colour 2>&1) && tm_fail "an unknown option"
echo "$out" | tm_grepq -- "issue: unknown option --colour" || tm_fail "unknown option message: $out"

# tokenmint help COMMAND is COMMAND --help.
for c in "${CMDS[@]}"; do
    # shellcheck disable=SC2086
    diff <("$T" help $c) <("$T" $c --help) >/dev/null || tm_fail "help $c differs from $c --help"
done
"$T" help frobnicate >/dev/null 2>&1 && tm_fail "help of an unknown command"

# Completion: valid bash; completing "tokenmint CMD --" offers exactly its help's options.
"$T" completion bash >"$TM_TMP/comp.bash"
bash -n "$TM_TMP/comp.bash" || tm_fail "the completion script is not valid bash"
complete_words() { # WORDS...: what _tokenmint offers for the last word
    # shellcheck disable=SC1091
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _tokenmint
             printf "%s\n" "${COMPREPLY[@]}"' _ "$TM_TMP/comp.bash" "$@" | sort
}
for c in "${CMDS[@]}"; do
    # shellcheck disable=SC2086
    diff <(complete_words tokenmint $c --) <(opts_of "$c" | cut -d' ' -f1 | sort) >/dev/null ||
        tm_fail "completion of '$c --' is not its help's options"
done
complete_words tokenmint ca "" | tm_grepq -x serve || tm_fail "completion of 'ca' should offer serve"
complete_words tokenmint is | tm_grepq -x issue || tm_fail "completion of 'is' should offer issue"

# Help texts stand on their own: no pointer to a file that does not ship
# (issue 9: `issue --help` said "SUMMARY steps 3-12").
for c in "${CMDS[@]}"; do
    # shellcheck disable=SC2086
    "$T" $c --help >"$TM_TMP/help.txt" 2>&1 || true
    ! grep -q "SUMMARY" "$TM_TMP/help.txt" || tm_fail "'$c --help' points to SUMMARY, which does not ship"
done
"$T" issue --help >"$TM_TMP/help.txt"
grep -q "(8) write it onto the token" "$TM_TMP/help.txt" || tm_fail "issue --help should describe its steps"
# Every command answers --help with exit 0 (tool_parse_command).
for c in "${CMDS[@]}"; do
    # shellcheck disable=SC2086
    "$T" $c --help >/dev/null 2>&1 || tm_fail "'$c --help' should exit 0"
done

"$T" --version | grep -Eqx 'tokenmint [0-9]+\.[0-9]+\.[0-9]+' || tm_fail "--version"
echo "PASS: one option table: help, parser and completion agree"
