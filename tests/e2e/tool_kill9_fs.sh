# Issue 11: `tokenmint issue --all` with the local CA on a file system that
# fills up or goes read-only under it, with kill -9 at random points
# (tool_kill9 does the kills on a healthy disk, cadb_kill9 the same disks
# for `ca serve`). The tokens (SoftHSM2) stay on the normal disk; only the
# CA directory is on the small file system.
#
# 1. A full disk: a tmpfs sized to what `ca init` left plus 16 KB, grown by
#    8 KB every other run, so that the CA fills it in a different place
#    each time (the -shm and WAL at open, the batch's commit, newcerts/,
#    index.txt, serial).
# 2. A read-only file system: an ext4 image mounted errors=remount-ro, which
#    the kernel turns read-only under the running `issue` (trigger_fs_error,
#    what a disk error does: `mount -o remount,ro` is refused while the CA
#    database is open for writing). Its journal is aborted there, so what was
#    not synced is lost as in a crash; each round ends with umount, e2fsck
#    and a new mount.
#
# Every run that was not killed exits 0, or 1/2 with the storage problem
# named (never a crash, never another error). Afterwards (the disk grown, the
# file system read-write again) one `issue --all` finishes every token, and
# the invariants hold (tool_check_invariants: every certificate on a token is
# in the CA database, no key and purpose certified twice, every record has
# its certificate, no temporary file left), and stock `openssl ca -gencrl`
# and `-updatedb` accept the directory. Needs root (mounts): skipped
# otherwise, failed in CI.
. "$TM_SOURCE_DIR/tests/e2e/tool_lib.sh"
if [ "$(id -u)" != 0 ]; then
    [ "${CI:-}" = true ] && tm_fail "CI runs as root: this test needs the mounts"
    echo "SKIP (not root: the full disk and the read-only file system need mounts)"
    exit 77
fi
N=8
WANT_FULL=${TM_KILL9_FS_FULL:-8}
WANT_RO=${TM_KILL9_FS_RO:-4}
SEED=${TM_KILL9_SEED:-$(($(date +%s) % 32768))}
echo "kill -9 on a full / read-only disk: seed $SEED (TM_KILL9_SEED=$SEED to replay)"
RANDOM=$SEED

tm_make_tokens "$N" >/dev/null
cp -a "$TM_TOKDIR" "$TM_TMP/template"
SMALL="$TM_TMP/small" RO="$TM_TMP/ro"
mkdir -p "$SMALL" "$RO"
# (set -e holds in the trap: an umount of what is not mounted must not stop it)
trap 'umount "$SMALL" 2>/dev/null || true; umount "$RO" 2>/dev/null || true; rm -rf "$TM_TMP"' EXIT

# msleep MS
msleep() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# run CA KILL_MS: one `issue --all` (output in $TM_TMP/run.out), killed
# after KILL_MS ms unless that is empty; RC its exit status (137: killed).
run() {
    "$T" issue --all --ca "$1" --pin-source "$PIN" >"$TM_TMP/run.out" 2>&1 &
    PID=$!
    if [ -n "${2:-}" ]; then
        msleep "$2"
        kill -9 "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null && RC=0 || RC=$?
    # the window follows how long runs last: one that ended before its kill
    # point halves it (a run on a full disk fails within milliseconds), a
    # kill that landed widens it again
    if [ -n "${2:-}" ]; then
        if [ "$RC" -eq 137 ]; then
            window=$((window * 5 / 4 > span ? span : window * 5 / 4))
        else
            window=$((window / 2 < 8 ? 8 : window / 2))
        fi
    fi
}

# clean WHAT PATTERN: a run that was not killed finished, or failed naming
# the storage problem (every failed token and the run's own error).
clean() {
    [ "$RC" -eq 137 ] && return 0
    case "$RC" in
    0) return 0 ;;
    1 | 2) ;;
    *) cat "$TM_TMP/run.out"; tm_fail "$1: issue crashed (exit $RC, seed $SEED)" ;;
    esac
    grep -Eq "$2" "$TM_TMP/run.out" ||
        { cat "$TM_TMP/run.out"; tm_fail "$1: issue failed (exit $RC) without naming the storage problem (seed $SEED)"; }
    if grep -E '^FAIL|^tokenmint:' "$TM_TMP/run.out" | grep -Ev "$2" >"$TM_TMP/other"; then
        cat "$TM_TMP/run.out"
        tm_fail "$1: a failure that is not the storage problem: $(head -1 "$TM_TMP/other") (seed $SEED)"
    fi
    STORAGE=$((STORAGE + 1))
    grep -Eo "$2" "$TM_TMP/run.out" | head -1 >>"$TM_TMP/why"
    grep -E '^FAIL|^tokenmint:' "$TM_TMP/run.out" | sed 's/^FAIL  *[0-9a-f]* [^ ]*  */FAIL /; s|/[^ ]*/||g; s/[0-9A-F]\{40\}/SERIAL/g' >>"$TM_TMP/msgs"
}

# finish CA: one clean run finishes every token, then the invariants and
# stock openssl ca on the directory.
finish() {
    local ca=$1 what=$2
    "$T" issue --all --ca "$ca" --pin-source "$PIN" >"$TM_TMP/final" 2>&1 ||
        { cat "$TM_TMP/final"; tm_fail "$what: the run afterwards failed (seed $SEED)"; }
    tool_check_invariants "$ca"
    local lost
    lost=$(find "$TM_TOKDIR" -name token.object -empty | wc -l)
    [ "$(wc -l <"$TM_TMP/on_tokens")" -eq $((N - lost)) ] ||
        { cat "$TM_TMP/final"; tm_fail "$what: every token left should hold its certificate"; }
    "$T" ca list "$ca" >"$TM_TMP/records" || tm_fail "$what: ca list"
    [ "$(wc -l <"$TM_TMP/records")" -eq "$(wc -l <"$ca/index.txt")" ] ||
        tm_fail "$what: the database and index.txt disagree"
    [ -z "$(find "$ca/newcerts" -empty)" ] || tm_fail "$what: empty certificate files left"
    # the temporary files of writers killed or refused by the disk are gone
    [ -z "$(find "$ca" -name '*.tmp.*')" ] || { find "$ca" -name '*.tmp.*'; tm_fail "$what: temporary files left"; }
    openssl ca -config "$ca/ca.cnf" -gencrl -crldays 1 -out "$TM_TMP/crl.pem" >/dev/null 2>&1 ||
        tm_fail "$what: openssl ca -gencrl"
    openssl ca -config "$ca/ca.cnf" -updatedb >/dev/null 2>&1 || tm_fail "$what: openssl ca -updatedb"
}

# --- 1. a full disk --------------------------------------------------------
FULL_RE='No space left on device|database or disk is full'
mount -t tmpfs -o size=4m tmpfs "$SMALL" || tm_fail "mount tmpfs"
CA="$SMALL/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init on the tmpfs"
used=$(df -k --output=used "$SMALL" | tail -1)
# how long a run takes here: the kill points are drawn from that
t0=$(date +%s%N)
run "$CA"
span=$((($(date +%s%N) - t0) / 1000000 + 20))
[ "$RC" -eq 0 ] || { cat "$TM_TMP/run.out"; tm_fail "the probe run failed"; }
t0=$(date +%s%N)
run "$CA"
noop=$((($(date +%s%N) - t0) / 1000000))
rm -rf "$TM_TOKDIR" "$CA"
cp -a "$TM_TMP/template" "$TM_TOKDIR"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init on the tmpfs"
echo "a run takes about $span ms (a no-op one $noop ms); the CA took ${used} KB"
landed=0 STORAGE=0 room=16 r=0 window=$span
while [ "$r" -lt 24 ] || { [ "$landed" -lt "$WANT_FULL" ] && [ "$r" -lt 60 ]; }; do
    r=$((r + 1))
    [ $((r % 2)) -eq 0 ] && [ "$room" -lt 160 ] && room=$((room + 8))
    mount -o remount,size=$((used + room))k "$SMALL" 2>/dev/null || true
    # one run in three is not killed; the others at a random point of a run
    if [ $((r % 3)) -eq 0 ]; then run "$CA"; else run "$CA" $((RANDOM % window)); fi
    [ "$RC" -eq 137 ] && landed=$((landed + 1))
    clean "full disk, run $r (+${room} KB)" "$FULL_RE"
done
df -k "$SMALL" | tail -1
sort "$TM_TMP/msgs" | uniq -c | sort -rn | head -12
: >"$TM_TMP/msgs"
echo "full disk: $landed kills landed in $r runs, $STORAGE runs failed naming the full disk"
[ "$STORAGE" -gt 0 ] || tm_fail "the disk never filled up: no run failed for it (seed $SEED)"
[ "$landed" -ge "$WANT_FULL" ] || tm_fail "only $landed kills landed on the full disk (want $WANT_FULL)"
mount -o remount,size=32m "$SMALL" || tm_fail "remount bigger"
finish "$CA" "full disk"
umount "$SMALL"
full_landed=$landed full_storage=$STORAGE

# --- 2. a file system that goes read-only under the run --------------------
# (an fsync after the journal was aborted reports EIO)
RO_RE='Read-only file system|readonly database|Input/output error'
IMG="$TM_TMP/ro.img"
truncate -s 32m "$IMG"
mkfs.ext4 -q -F "$IMG" || tm_fail "mkfs.ext4"
mount_ro_fs() {
    mount -o loop,errors=remount-ro "$IMG" "$RO" || tm_fail "mount the ext4 image"
    DEV=$(basename "$(findmnt -no SOURCE "$RO")")
    [ -w "/sys/fs/ext4/$DEV/trigger_fs_error" ] || tm_fail "no /sys/fs/ext4/$DEV/trigger_fs_error"
}
mount_ro_fs
CA="$RO/ca"
# a fresh station (tokens and CA) every third round: once every token is
# done, runs are no-ops that end before the file system goes read-only
new_station() {
    rm -rf "$TM_TOKDIR" "$CA"
    cp -a "$TM_TMP/template" "$TM_TOKDIR"
    "$T" ca init "$CA" >/dev/null || tm_fail "ca init on ext4"
    sync -f "$RO"
}
new_station
landed=0 STORAGE=0 r=0 stores=1 span2=$span
while [ "$r" -lt 9 ] || { [ "$landed" -lt "$WANT_RO" ] && [ "$r" -lt 30 ]; }; do
    r=$((r + 1))
    if [ "$r" -gt 1 ] && [ $((r % 3)) -eq 1 ]; then
        finish "$CA" "read-only, station $stores"
        new_station
        stores=$((stores + 1))
    fi
    "$T" issue --all --ca "$CA" --pin-source "$PIN" >"$TM_TMP/run.out" 2>&1 &
    PID=$!
    # A station's first two runs go read-only at a random point between the
    # CA's opening and its batch (about the first fifth and the last quarter
    # of a run: the tokens are still being worked on) and are killed soon
    # after; the third goes read-only anywhere after the start-up and runs
    # on alone.
    # (span2 starts at the probe's time and shrinks while runs end before
    # the file system goes read-only: one slow probe on a loaded machine
    # must not put every point after the run)
    if [ $((r % 3)) -ne 0 ]; then
        msleep $((span2 / 5 + RANDOM % (span2 / 2)))
    else
        msleep $((noop / 2 + RANDOM % (span2 - noop / 2)))
    fi
    kill -0 "$PID" 2>/dev/null && alive=1 || alive=0
    echo "tool_kill9_fs" >"/sys/fs/ext4/$DEV/trigger_fs_error"
    ! : 2>/dev/null >"$RO/probe" || tm_fail "the file system did not go read-only"
    if [ $((r % 3)) -ne 0 ]; then
        msleep $((RANDOM % 20))
        kill -9 "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null && RC=0 || RC=$?
    [ "$RC" -eq 137 ] && landed=$((landed + 1))
    [ "$alive" -eq 1 ] || span2=$((span2 * 2 / 3 < noop * 2 ? noop * 2 : span2 * 2 / 3))
    clean "read-only, run $r" "$RO_RE"
    # and a run on the read-only file system fails naming it
    run "$CA"
    [ "$RC" -ne 0 ] || tm_fail "issue on a read-only CA directory must fail"
    clean "read-only, run $r (after)" "$RO_RE"
    umount "$RO" || tm_fail "umount"
    e2fsck -fy "$IMG" >"$TM_TMP/fsck.out" 2>&1 || [ $? -le 1 ] ||
        { cat "$TM_TMP/fsck.out"; tm_fail "e2fsck could not repair the image"; }
    mount_ro_fs
done
sort "$TM_TMP/msgs" | uniq -c | sort -rn | head -12
echo "read-only: $landed kills landed after the file system went read-only in $r runs over $stores stations, $STORAGE runs failed naming it"
[ "$landed" -ge "$WANT_RO" ] || tm_fail "only $landed kills landed after the file system went read-only (want $WANT_RO)"
finish "$CA" "read-only"
echo "PASS: $full_landed kills on a full disk ($full_storage runs failed naming it), $landed after it went read-only ($STORAGE runs failed naming it); then every token issued, CA and tokens agree, openssl ca accepts the directory"
