#!/usr/bin/env bash
# Crash leftovers (issue 10, item 8), deterministic parts:
# - a re-run over tokens already done logs in to none of them (SoftHSM2
#   rewrites token.object on every C_Login; a kill then destroys the token):
#   no token file changes, the module's audit log shows no login;
# - a private key that is not whole is never taken as the free key pair;
# - `tokenmint clean` lists leftovers, removes them only with --remove, and
#   audits what it removes.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
tm_make_tokens 4 >/dev/null
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null
tm_module_conf

"$T" issue --all --ca "$CA" --pin-source "$PIN" >/dev/null || tm_fail "first run"
sums() { find "$TM_TOKDIR" -type f -name '*.object' -exec sha256sum {} + | sort; }
sums >"$TM_TMP/before"
logins=$(grep -c '"op":"login"' "$audit" || true)
"$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/again.out" || tm_fail "re-run"
grep -q "already done *4" "$TM_TMP/again.out" || { cat "$TM_TMP/again.out"; tm_fail "4 done"; }
sums >"$TM_TMP/after"
cmp -s "$TM_TMP/before" "$TM_TMP/after" ||
    { diff "$TM_TMP/before" "$TM_TMP/after"; tm_fail "a no-op re-run changed a token file (it logged in)"; }
[ "$(grep -c '"op":"login"' "$audit" || true)" -eq "$logins" ] ||
    tm_fail "a no-op re-run logged in to a token that is already done"

# A private key that is not whole beside a public key of the same ID, label
# tokenmint:auth (what a kill inside key generation leaves, made here from
# two unrelated keys), a public key without its private half, and a key
# pair for a purpose the profile does not have.
tm_make_tokens 1 c >/dev/null
S=${TM_SERIALS[0]}
LBL=tm-c0001
p11() { pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label "$LBL" --login --pin "$TM_USER_PIN" "$@" >/dev/null 2>&1; }
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER -out "$TM_TMP/a.key" 2>/dev/null
openssl pkey -inform DER -in "$TM_TMP/a.key" -pubout -outform DER -out "$TM_TMP/a.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -outform DER -out "$TM_TMP/b.key" 2>/dev/null
openssl pkey -inform DER -in "$TM_TMP/b.key" -pubout -outform DER -out "$TM_TMP/b.pub"
p11 --write-object "$TM_TMP/a.pub" --type pubkey --id 0a01 --label tokenmint:auth || tm_fail "write pub"
p11 --write-object "$TM_TMP/b.key" --type privkey --id 0a01 --label tokenmint:auth --usage-sign ||
    tm_fail "write priv"
p11 --write-object "$TM_TMP/b.pub" --type pubkey --id 0a02 --label tokenmint:auth || tm_fail "write pub 2"
p11 --keypairgen --key-type EC:prime256v1 --id 0a03 --label tokenmint:nosuchpurpose || tm_fail "keygen"
objs() { pkcs11-tool --module "$TM_SOFTHSM_MODULE" --token-label "$LBL" --login --pin "$TM_USER_PIN" -O 2>/dev/null | grep -c 'Object;' || true; }

# The half-made pair is not taken as the free key pair: issue makes a new one.
"$T" issue --token "pkcs11:serial=$S" --ca "$CA" --pin-source "$PIN" --json >"$TM_TMP/c.json" ||
    { cat "$TM_TMP/c.json"; tm_fail "a half-made key pair must not stick the token"; }
grep -q '"key_generated":true' "$TM_TMP/c.json" || tm_fail "a new key pair should have been made"
after_issue=$(objs)

# clean: a dry run lists the leftovers and removes nothing.
"$T" clean --token "pkcs11:serial=$S" --pin-source "$PIN" --json >"$TM_TMP/clean.json" ||
    { cat "$TM_TMP/clean.json"; tm_fail "clean (dry run) failed"; }
[ "$("$TJ" check <"$TM_TMP/clean.json")" -eq 3 ] || { cat "$TM_TMP/clean.json"; tm_fail "three leftovers"; }
grep -q '"id":"0a01".*not whole' "$TM_TMP/clean.json" || tm_fail "the half-made pair is listed"
grep -q '"id":"0a02".*private half is missing' "$TM_TMP/clean.json" || tm_fail "the lone public key"
grep -q '"id":"0a03".*no purpose' "$TM_TMP/clean.json" || tm_fail "the orphan pair is listed"
[ "$(grep -c '"state":"found"' "$TM_TMP/clean.json")" -eq 3 ] || tm_fail "dry run: state found"
[ "$(objs)" -eq "$after_issue" ] || tm_fail "a dry run removed something"
printf '[tokenmint]\naudit_log = %s\n' "$TM_TMP/tool-audit.jsonl" >"$TM_TMP/tool.conf"
"$T" clean --config "$TM_TMP/tool.conf" --token "pkcs11:serial=$S" --pin-source "$PIN" --remove \
    >"$TM_TMP/clean.out" ||
    { cat "$TM_TMP/clean.out"; tm_fail "clean --remove failed"; }
grep -q "3 leftovers on 1 token, 3 removed" "$TM_TMP/clean.out" || { cat "$TM_TMP/clean.out"; tm_fail "summary"; }
[ "$(grep -c '"op":"clean","outcome":"removed"' "$TM_TMP/tool-audit.jsonl")" -eq 3 ] ||
    tm_fail "every removal is audited"
# five objects gone (two pairs, one public key); the issued pair and its certificate stay
[ "$(objs)" -eq $((after_issue - 5)) ] || tm_fail "clean --remove should destroy exactly five objects"
"$T" verify --token "pkcs11:serial=$S" --ca "$CA" >/dev/null || tm_fail "the issued certificate stays"
"$T" clean --token "pkcs11:serial=$S" --pin-source "$PIN" | tm_grepq "^0 leftovers" ||
    tm_fail "nothing left after --remove"
echo "PASS: leftovers"
