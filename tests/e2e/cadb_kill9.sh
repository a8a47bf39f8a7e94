# Issue 11: kill -9 of `ca serve` under load at random points (30 kills that
# land: the server is killed while its clients are still sending), then the
# same on a full disk (a small tmpfs, as root) and on a file system made
# read-only under the CA. Afterwards: every acknowledged certificate is in
# the database with its token, no key and purpose is certified twice, every
# record has its certificate file, and stock `openssl ca -gencrl` and
# `-updatedb` accept the directory.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
cd "$TM_TMP"

# start_serve CA: a server in the background (CMP_PORT, SRV).
start_serve() {
    rm -f "$TM_TMP/kill.port"
    "$T" ca serve "$1" --secret-source "$SECRET" --listen 127.0.0.1:0 \
        --port-file "$TM_TMP/kill.port" >>"$TM_TMP/serve.log" 2>&1 &
    SRV=$!
    for _ in $(seq 200); do
        [ -s "$TM_TMP/kill.port" ] && { CMP_PORT=$(cat "$TM_TMP/kill.port"); return 0; }
        kill -0 "$SRV" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# kill_rounds CA N: N rounds of load + kill -9 at a random point; acknowledged
# certificates go to acked; LANDED counts the kills made during the load.
kill_rounds() {
    local ca=$1 n=$2 full=${3:-} r lp
    for r in $(seq "$n"); do
        if ! start_serve "$ca"; then
            # a full disk: refusing to start, with the reason, is right
            [ -n "$full" ] && tail -1 "$TM_TMP/serve.log" | tm_grepq "No space left" && return 0
            cat "$TM_TMP/serve.log"
            tm_fail "ca serve did not start (round $r)"
        fi
        "$BC" load --url "http://127.0.0.1:$CMP_PORT/pkix/" --secret-source "$SECRET" \
            --root "$ca/ca.pem" --clients 8 --requests 32 --tolerate --acked "acked.$r" \
            >"load.$r" 2>&1 &
        lp=$!
        # the clients build their requests first ("sending"), then send
        for _ in $(seq 300); do
            grep -q "^sending" "load.$r" 2>/dev/null && break
            kill -0 "$lp" 2>/dev/null || break
            sleep 0.02
        done
        sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
        if kill -0 "$lp" 2>/dev/null && kill -9 "$SRV" 2>/dev/null; then
            LANDED=$((LANDED + 1))
        else
            kill -9 "$SRV" 2>/dev/null || true
        fi
        wait "$SRV" 2>/dev/null || true
        wait "$lp" || { cat "load.$r"; tm_fail "the load client failed (round $r)"; }
        cat "acked.$r" >>acked
    done
}

# check CA: the promises after the kills
check() {
    local ca=$1 n
    "$T" ca list "$ca" --json >records.json 2>list.err || { cat list.err; tm_fail "ca list $ca"; }
    "$T" ca list "$ca" >records || tm_fail "ca list"
    while IFS="$(printf '\t')" read -r sn tok; do
        grep -q "^$sn	valid	$tok	" records || tm_fail "acknowledged certificate $sn ($tok) is not in the database"
    done <acked
    n=$(grep -c '"status":"valid"' records.json || true)
    [ "$(grep '"status":"valid"' records.json | grep -o '"purpose":"[^"]*".*"spki_sha256":"[0-9a-f]*"' |
        sort -u | wc -l)" -eq "$n" ] || tm_fail "a key and purpose certified twice"
    [ "$(cut -f1 records | sort -u | wc -l)" -eq "$(wc -l <records)" ] || tm_fail "a serial twice"
    for sn in $(cut -f1 records); do
        [ -s "$ca/newcerts/$sn.pem" ] || tm_fail "record $sn has no certificate file"
    done
    [ -z "$(find "$ca/newcerts" -empty)" ] || tm_fail "empty certificate files left"
    [ "$(wc -l <"$ca/index.txt")" -eq "$(wc -l <records)" ] || tm_fail "index.txt and the database disagree"
    openssl ca -config "$ca/ca.cnf" -gencrl -crldays 1 -out crl.pem >/dev/null 2>&1 ||
        tm_fail "openssl ca -gencrl"
    openssl ca -config "$ca/ca.cnf" -updatedb >/dev/null 2>&1 || tm_fail "openssl ca -updatedb"
}

# 1. kill -9 under load, on a normal disk
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
LANDED=0
: >acked
# A kill lands only while the clients still send; on a fast server some rounds
# end first, so rounds go on (up to 45) until 30 kills have landed.
rounds=0
while [ "$LANDED" -lt 30 ] && [ "$rounds" -lt 45 ]; do
    kill_rounds "$CA" 1
    rounds=$((rounds + 1))
done
[ "$LANDED" -ge 30 ] || tm_fail "only $LANDED of 30 kills landed during the load in $rounds rounds"
[ "$(wc -l <acked)" -gt 0 ] || tm_fail "nothing was acknowledged: the kills came too early"
check "$CA"
echo "kill -9 under load: $LANDED kills landed, $(wc -l <acked) acknowledged, $(wc -l <records) records"

if [ "$(id -u)" != 0 ]; then
    echo "PASS (not root: the full-disk and read-only parts need a tmpfs mount)"
    exit 0
fi

# 2. a full disk: a 1 MB tmpfs fills up under load
MNT="$TM_TMP/small"
mkdir -p "$MNT"
mount -t tmpfs -o size=1m tmpfs "$MNT" || tm_fail "mount tmpfs"
trap 'umount "$MNT" 2>/dev/null; cmp_cleanup' EXIT
"$T" ca init "$MNT/ca" >/dev/null || tm_fail "ca init on tmpfs"
: >acked
LANDED=0
: >"$TM_TMP/serve.log"
# rounds until the 1 MB are used up (how many depends on where the kills land)
for _ in $(seq 20); do
    kill_rounds "$MNT/ca" 1 full
    grep -q "database or disk is full\|No space left" "$TM_TMP/serve.log" && break
done
df -k "$MNT" | tail -1
grep -q "database or disk is full\|No space left" "$TM_TMP/serve.log" ||
    tm_fail "the disk should have filled up under the load"
mount -o remount,size=32m "$MNT" || tm_fail "remount bigger"
check "$MNT/ca"
echo "full disk: $(wc -l <acked) acknowledged, all in the database"

# 3. read-only: the file system goes read-only under the CA; nothing is
#    acknowledged that is not stored, and a read-only CA refuses to start
start_serve "$MNT/ca" || tm_fail "ca serve before read-only"
"$BC" load --url "http://127.0.0.1:$CMP_PORT/pkix/" --secret-source "$SECRET" \
    --root "$MNT/ca/ca.pem" --clients 8 --requests 40 --tolerate --acked acked.ro >load.ro 2>&1 &
lp=$!
sleep 0.4
kill -9 "$SRV"
wait "$SRV" 2>/dev/null || true
mount -o remount,ro "$MNT" || tm_fail "remount read-only"
wait "$lp" || tm_fail "load client (read-only round)"
cat acked.ro >>acked
out=$("$T" ca serve "$MNT/ca" --secret-source "$SECRET" --listen 127.0.0.1:0 2>&1) &&
    tm_fail "ca serve must refuse a read-only CA"
echo "$out" | tm_grepq -i "read-only\|readonly\|cannot" || tm_fail "the refusal must say why: $out"
mount -o remount,rw "$MNT" || tm_fail "remount read-write"
check "$MNT/ca"
echo "PASS: kill -9 under load ($LANDED), full disk and read-only file system: nothing acknowledged lost"
