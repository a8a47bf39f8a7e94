#!/usr/bin/env bash
# Secret files the tool refuses (issue 10, item 12), before any token is
# touched: exit 2, one message naming the file and what is wrong with it,
# no PIN in it, and no login on any token (the module's audit log counts
# the logins; SoftHSM2 rewrites token.object on every C_Login, so its
# modification time must not move either).
#   - a FIFO as --pin-source: refused at once, never waits for a writer
#   - a directory: "is a directory" (it used to be "empty")
#   - a PIN file group or others may read: refused, unless
#     --allow-open-secrets is given
#   - an empty PIN file, or an empty first line: a try the token would lose
# The other secret sources (--operator-pass-source, --cmp-secret-source,
# ca serve --secret-source) go through the same reader.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 2 >/dev/null
audit="$TM_TMP/audit.jsonl"
export TOKENMINT_CONF="$TM_TMP/tokenmint.conf"
unset TOKENMINT_BACKEND
cat >"$TOKENMINT_CONF" <<CONF
[tokenmint]
backends = softhsm
audit_log = $audit
[backend_softhsm]
module = $TM_SOFTHSM_MODULE
CONF
: >"$audit"
stamps() { find "$TM_TOKDIR" -name token.object -printf '%p %T@\n' | sort; }
before=$(stamps)

# refused WHAT WANT CMD...: exit 2 within the timeout, WANT once on stderr
# (with the file's path), no PIN on it, no login anywhere.
refused() {
    local what=$1 want=$2 rc=0
    shift 2
    timeout 30 "$@" >"$TM_TMP/out" 2>"$TM_TMP/err" </dev/null || rc=$?
    [ "$rc" -ne 124 ] || tm_fail "$what: still waiting after 30 s (a blocking read)"
    [ "$rc" -eq 2 ] || { cat "$TM_TMP/out" "$TM_TMP/err"; tm_fail "$what: exit $rc, want 2"; }
    [ "$(grep -c -- "$want" "$TM_TMP/err")" -eq 1 ] ||
        tm_fail "$what: want one message saying '$want', got: $(cat "$TM_TMP/err")"
    if grep -q -- "$TM_USER_PIN" "$TM_TMP/err"; then tm_fail "$what: the PIN is in the message"; fi
    [ ! -s "$TM_TMP/out" ] || tm_fail "$what: output although refused: $(cat "$TM_TMP/out")"
    if grep -q '"op":"login"' "$audit"; then tm_fail "$what: a token was logged in to"; fi
    [ "$(stamps)" = "$before" ] || tm_fail "$what: a token file was rewritten (a login)"
}

mkfifo -m 600 "$TM_TMP/fifo"
refused "FIFO" "PIN file $TM_TMP/fifo is a FIFO" \
    "$T" csr --all --pin-source "$TM_TMP/fifo"
refused "FIFO, file: form" "PIN file $TM_TMP/fifo is a FIFO" \
    "$T" csr --all --pin-source "file://$TM_TMP/fifo" --allow-open-secrets
mkdir -m 700 "$TM_TMP/pindir"
refused "directory" "PIN file $TM_TMP/pindir is a directory" \
    "$T" csr --all --pin-source "$TM_TMP/pindir"
refused "character device" "PIN file /dev/zero is a character device" \
    "$T" csr --all --pin-source /dev/zero

echo "$TM_USER_PIN" >"$TM_TMP/open.pin"
chmod 644 "$TM_TMP/open.pin"
refused "0644 PIN file" "PIN file $TM_TMP/open.pin has mode 0644: group or others may read it" \
    "$T" csr --all --pin-source "$TM_TMP/open.pin"
chmod 660 "$TM_TMP/open.pin"
refused "0660 PIN file" "PIN file $TM_TMP/open.pin has mode 0660: group or others may write it" \
    "$T" csr --all --pin-source "file:$TM_TMP/open.pin"
# per token ("%s"): every token's file is judged before the first is touched
for s in "${TM_SERIALS[@]}"; do
    echo "$TM_USER_PIN" >"$TM_TMP/tok-$s.pin"
    chmod 600 "$TM_TMP/tok-$s.pin"
done
chmod 604 "$TM_TMP/tok-${TM_SERIALS[1]}.pin"
refused "one per-token file 0604" "PIN file $TM_TMP/tok-${TM_SERIALS[1]}.pin has mode 0604" \
    "$T" csr --all --pin-source "file:$TM_TMP/tok-%s.pin"

: >"$TM_TMP/empty.pin"
chmod 600 "$TM_TMP/empty.pin"
refused "empty PIN file" "PIN file $TM_TMP/empty.pin is empty" \
    "$T" csr --all --pin-source "$TM_TMP/empty.pin"
printf '\n%s\n' "$TM_USER_PIN" >"$TM_TMP/blank.pin"
chmod 600 "$TM_TMP/blank.pin"
refused "empty first line" "PIN file $TM_TMP/blank.pin has an empty first line" \
    "$T" csr --all --pin-source "$TM_TMP/blank.pin"

# The other secret sources take the same rules.
printf 'passphrase\n' >"$TM_TMP/open.pass"
chmod 640 "$TM_TMP/open.pass"
refused "0640 operator passphrase" "passphrase file $TM_TMP/open.pass has mode 0640" \
    "$T" operator hash --operator-pass-source "$TM_TMP/open.pass"
printf 'shared-secret\n' >"$TM_TMP/open.secret"
chmod 644 "$TM_TMP/open.secret"
refused "0644 CMP secret" "secret file $TM_TMP/open.secret has mode 0644" \
    "$T" issue --all --pin-source "$PIN" --cmp http://127.0.0.1:9/pkix/ --cmp-ref station \
    --cmp-secret-source "$TM_TMP/open.secret"
"$T" ca init "$TM_TMP/ca" >/dev/null
refused "0644 ca serve secret" "secret file $TM_TMP/open.secret has mode 0644" \
    "$T" ca serve "$TM_TMP/ca" --listen 127.0.0.1:0 --ref ca --secret-source "$TM_TMP/open.secret"
refused "FIFO as ca serve secret" "secret file $TM_TMP/fifo is a FIFO" \
    "$T" ca serve "$TM_TMP/ca" --listen 127.0.0.1:0 --ref ca --secret-source "$TM_TMP/fifo"

# --allow-open-secrets lets the open PIN file through (wherever it stands on
# the line); it never makes a FIFO, a directory or an empty file a PIN.
chmod 644 "$TM_TMP/open.pin"
"$T" csr --token "pkcs11:serial=${TM_SERIALS[0]}" --allow-open-secrets \
    --pin-source "$TM_TMP/open.pin" >"$TM_TMP/req.pem" 2>"$TM_TMP/err" ||
    { cat "$TM_TMP/err"; tm_fail "--allow-open-secrets should accept a 0644 PIN file"; }
openssl req -in "$TM_TMP/req.pem" -noout -verify 2>/dev/null || tm_fail "no request with the option"
"$T" operator hash --operator-pass-source "$TM_TMP/open.pass" --allow-open-secrets \
    >"$TM_TMP/hash" || tm_fail "--allow-open-secrets should accept a 0640 passphrase file"
tm_grepq scrypt <"$TM_TMP/hash" || tm_fail "no hash line: $(cat "$TM_TMP/hash")"
: >"$audit"
before=$(stamps)
refused "directory with the option" "is a directory" \
    "$T" csr --all --pin-source "$TM_TMP/pindir" --allow-open-secrets
refused "empty with the option" "is empty" \
    "$T" csr --all --pin-source "$TM_TMP/empty.pin" --allow-open-secrets
echo "PASS: secret files refused before any token is touched"
