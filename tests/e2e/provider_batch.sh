#!/usr/bin/env bash
# One station, 64 tokens: the req step in a shell loop succeeds for every token.
. "$(dirname "$0")/provider_lib.sh"
N=${TM_PROVIDER_BATCH:-64}
tm_make_tokens "$N"
cd "$TM_TMP"
for i in $(seq 1 "$N"); do tm_keygen "$i" EC:prime256v1 01; done
ok=0
for s in "${TM_SERIALS[@]}"; do
    tm_run "req for token $s" openssl req -new "${PROV[@]}" -key "$(tm_uri "$s" 01)" \
        -subj "/serialNumber=$s" -out "$s.csr"
    openssl req -in "$s.csr" -verify -noout 2>/dev/null || tm_fail "request of $s does not verify"
    openssl req -in "$s.csr" -noout -subject | tm_grepq "serialNumber = $s" ||
        tm_fail "request of $s names another serial"
    ok=$((ok + 1))
done
[ "$ok" -eq "$N" ] || tm_fail "only $ok of $N requests"
echo "PASS: $ok requests"
