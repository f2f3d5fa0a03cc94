#!/usr/bin/env bash
# Space on a 3-node cluster (N = 3: every node holds everything) with a
# fast blob collector (node/gc.h: a round every 300 ms, a 2 s grace
# period), one mount:
#   1. a 64 MiB file overwritten whole 5 times: every node's store comes
#      back to one copy of the live file, which reads back intact;
#   2. a sparse 5 GiB file with 4 MiB written at its end costs about 4 MiB,
#      at once; a truncate far past the largest file answers at once; rm
#      gives the space back;
#   3. no live blob is ever reclaimed, over several grace periods: files
#      complete before a mount was killed (-9) in the middle of a write,
#      while the collector deletes that write's garbage; a file written
#      over three grace periods (its first chunks stored 6 s before the
#      close); files written while a node was cut off (copies held as
#      hints, handed off after the heal); siblings made by two mounts.  All
#      read back from fresh mounts, and every node ends holding exactly the
#      live files' blobs, none condemned.
#
# The figure is each node's bytes in use: used_bytes of `dynamoctl status
# --json` (the LMDB pages up to the last, less its free list).  db_bytes is
# printed beside it: the data file's high-water mark, which only a
# compaction brings down (LMDB reuses freed pages, never shrinks the file).
. "$(dirname "$0")/lib.sh"
: "${DYNAMOCTL:?set DYNAMOCTL to the dynamoctl binary}"

GRACE_MS=2000
INTERVAL_MS=300
# --no-fsync: node durability is not what is measured, and it keeps the
# writes (6 x 64 MiB times 3 replicas) short.
NODE_OPTS=(--no-fsync --fault-injection --gossip-interval 250 --ae-interval 200
	--gc-interval "$INTERVAL_MS" --gc-grace "$GRACE_MS")
MiB=1048576
FILE=$((64 * MiB))

ctl() { "$DYNAMOCTL" --cluster-key "$KEY" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
T0=$(now)
# step WHAT: lib.sh's, with the seconds since the start.
step() { STEP=$*; log "[$(since "$T0") s] $*"; }

# The fields of `dynamoctl status --json` this test reads, one node a line:
# name used_bytes db_bytes keys gc_rounds gc_aborted
# gc_blobs gc_condemned gc_deleted gc_deleted_bytes hints (held for
# others, all targets).
cat > "$T/status.py" <<'EOF'
import json, sys
for line in sys.stdin:
    if not line.strip():
        continue
    j = json.loads(line)
    if 'error' in j:
        sys.exit('%s: %s' % (j['node'], j['error']))
    s, c = j['stats'], j.get('cluster', {})
    used = s['used_bytes']
    h = c.get('hints', {})
    hints = sum(v for v in h.values() if isinstance(v, int))
    print(j['name'], used, j['db_bytes'], j['keys'], s['gc_rounds'],
          s['gc_aborted'], s['gc_blobs'], s['gc_condemned'], s['gc_deleted'],
          s['gc_deleted_bytes'], hints)
EOF

NODES=(n1 n2 n3)
declare -A ADDR USED DBB KEYS ROUNDS ABORTED BLOBS CONDEMNED DELETED DELBYTES HINTS

# sample: fill the arrays above for every node; fails when one does not
# answer.
sample() {
	local out name u db keys r a b c d db2 h
	# Exit 4 (degraded, e.g. a node cut off) is an answer too.
	out=$({ ctl --node "${ADDR[n1]}" --node "${ADDR[n2]}" \
		--node "${ADDR[n3]}" status --json || [ $? = 4 ]; } |
		python3 "$T/status.py") || return 1
	while read -r name u db keys r a b c d db2 h; do
		USED[$name]=$u DBB[$name]=$db KEYS[$name]=$keys ROUNDS[$name]=$r
		ABORTED[$name]=$a BLOBS[$name]=$b CONDEMNED[$name]=$c
		DELETED[$name]=$d DELBYTES[$name]=$db2 HINTS[$name]=$h
	done <<<"$out"
	[ "${#USED[@]}" = 3 ]
}

# show WHAT: one line per node with the figures (to stderr).
show() {
	local n
	for n in "${NODES[@]}"; do
		printf '  %-16s %s: in use %6s MiB (db_bytes %6s), keys %5s, gc rounds %4s aborted %3s, blobs %5s condemned %5s, deleted %5s (%s MiB), hints %s\n' \
			"$1" "$n" "$(mib "${USED[$n]}")" "$(mib "${DBB[$n]}")" \
			"${KEYS[$n]}" "${ROUNDS[$n]}" "${ABORTED[$n]}" "${BLOBS[$n]}" \
			"${CONDEMNED[$n]}" "${DELETED[$n]}" "$(mib "${DELBYTES[$n]}")" \
			"${HINTS[$n]}" >&2
	done
}

# max_used, min_used: over the nodes, from the last sample.
max_used() {
	local n m=0
	for n in "${NODES[@]}"; do [ "${USED[$n]}" -le "$m" ] || m=${USED[$n]}; done
	echo "$m"
}
min_used() {
	local n m=${USED[n1]}
	for n in "${NODES[@]}"; do [ "${USED[$n]}" -ge "$m" ] || m=${USED[$n]}; done
	echo "$m"
}
PEAK=0
note_peak() {
	local m
	m=$(max_used)
	[ "$m" -le "$PEAK" ] || PEAK=$m
}

# poll_until LIMIT WHAT COMMAND...: COMMAND (which samples) every 250 ms
# until it succeeds, noting the peak; after LIMIT s show the last figures
# and fail.
poll_until() {
	local limit=$1 what=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@"; do
		[ "${#USED[@]}" = 3 ] && note_peak
		if [ "$SECONDS" -ge "$deadline" ]; then
			[ "${#USED[@]}" = 3 ] && show "timed out"
			fail "timed out after $limit s waiting for: $what"
		fi
		sleep 0.25
	done
	note_peak
}

# all_used_within LO HI: every node's bytes in use in [LO, HI].
all_used_within() {
	local n
	sample || return 1
	for n in "${NODES[@]}"; do
		[ "${USED[$n]}" -ge "$1" ] && [ "${USED[$n]}" -le "$2" ] || return 1
	done
}

# all_used_below NAME SLACK: every node's bytes in use at most its value
# in the array NAME plus SLACK.
all_used_below() {
	local -n ref=$1
	local n
	sample || return 1
	for n in "${NODES[@]}"; do
		[ "${USED[$n]}" -le $((${ref[$n]} + $2)) ] || return 1
	done
}

# all_deleted NAME K: every node deleted at least K blobs more than its
# count in the array NAME.
all_deleted() {
	local -n ref=$1
	local n
	sample || return 1
	for n in "${NODES[@]}"; do
		[ "${DELETED[$n]}" -ge $((${ref[$n]} + $2)) ] || return 1
	done
}

# all_blobs N: every node holds exactly N blob records (in objects) and
# none condemned.
all_blobs() {
	local n
	sample || return 1
	for n in "${NODES[@]}"; do
		[ "${BLOBS[$n]}" = "$1" ] && [ "${CONDEMNED[$n]}" = 0 ] || return 1
	done
}

no_hints() {
	sample || return 1
	[ $((HINTS[n1] + HINTS[n2] + HINTS[n3])) = 0 ]
}

# grace_periods K: wait K grace periods, then until every node has swept
# (complete rounds, not given up) at least 2K times since the call.
grace_periods() {
	local k=$1 n
	declare -A r0
	sample || fail "status"
	for n in "${NODES[@]}"; do r0[$n]=${ROUNDS[$n]}; done
	sleep "$(awk -v k="$k" -v g="$GRACE_MS" 'BEGIN { print k * g / 1000 }')"
	swept() {
		sample || return 1
		for n in "${NODES[@]}"; do
			[ "${ROUNDS[$n]}" -ge $((${r0[$n]} + 2 * k)) ] || return 1
		done
	}
	poll_until 30 "$((2 * k)) complete collector rounds on every node" swept
}

# kill_mount DIR: kill -9 the dynamofs of DIR, lazily unmount DIR, forget
# it (mount_fs can mount DIR again).
kill_mount() {
	local dir=$1 i pid
	for i in "${!FS_MOUNTS[@]}"; do
		if [ "${FS_MOUNTS[$i]}" = "$dir" ] && [ -n "${FS_PIDS[$i]:-}" ]; then
			pid=${FS_PIDS[$i]}
			kill -9 "$pid"
			wait "$pid" 2>/dev/null || true
			unset 'FS_MOUNTS[i]' 'FS_PIDS[i]'
		fi
	done
	fusermount3 -uz "$dir" 2>/dev/null || true
}

settled() {
	local a
	for a in "${ADDR[n1]}" "${ADDR[n2]}" "${ADDR[n3]}"; do
		ctl --node "$a" ring --json | python3 -c 'import json, sys
r = json.load(sys.stdin)
m = r["members"]
sys.exit(0 if len(m) == 3 and all(x["partitions"] > 0 for x in m)
         and not r["transfer_pending"] else 1)' || return 1
	done
}

# same PATH_A PATH_B WHAT: byte-identical, or fail.
same() { cmp -s "$1" "$2" || fail "$3: $2 differs from $1 ($(cmp "$1" "$2" 2>&1 | head -n 1))"; }

step "3 nodes (collection every $INTERVAL_MS ms, grace $GRACE_MS ms), one mount"
start_node n1 "${NODE_OPTS[@]}"
ADDR[n1]=$NODE_ADDR
start_node n2 "${NODE_OPTS[@]}" --seed "${ADDR[n1]}"
ADDR[n2]=$NODE_ADDR
start_node n3 "${NODE_OPTS[@]}" --seed "${ADDR[n1]}"
ADDR[n3]=$NODE_ADDR
wait_until 30 settled
ALL="${ADDR[n1]},${ADDR[n2]},${ADDR[n3]}"
NODE_ADDR=$ALL
M=$T/m
# The chunk size and inline limit the blob counts below follow from: a
# file over 64 KiB is ceil(size / 128 KiB) chunk blobs and one page blob
# (up to 4096 chunks a page), never shared (random bytes).
MOPTS="$NOCACHE,chunk_size=131072,inline_max=65536"
blobs_of() { echo $((($1 + 131071) / 131072 + 1)); }
mount_fs "$M" $MOPTS

# The source: 64 MiB + 24 KiB of random bytes.  Version k of the big file
# is its 64 MiB at offset k * 4 KiB: no 128 KiB chunk of one version is a
# chunk of another (chunks are cut at fixed file offsets).
SRC=$T/src
head -c $((FILE + 6 * 4096)) /dev/urandom > "$SRC"
# put_version K PATH: write version K over PATH (truncating it), fsync.
put_version() {
	dd if="$SRC" of="$2" bs=1M count="$FILE" iflag=skip_bytes,count_bytes \
		skip=$(($1 * 4096)) conv=fsync status=none ||
		fail "dd version $1 to $2"
}
# same_version K PATH
same_version() { cmp -s -i $(($1 * 4096)):0 -n "$FILE" "$SRC" "$2"; }

########################################################################
step "overwrite a 64 MiB file 5 times"
sample || fail "status"
show "empty"
BASE=$(max_used)
PEAK=$BASE
declare -A WS
t=$(now)
for k in 0 1 2 3 4 5; do
	t1=$(now)
	put_version "$k" "$M/big"
	WS[$k]=$(since "$t1")
	sample || fail "status"
	note_peak
done
WRITE_S=$(since "$t")
expect_eq "size" "$(stat -c %s "$M/big")" "$FILE"
show "after the writes"
BEFORE=$(max_used)
# One copy of the live file on every node: at least its 64 MiB, at most 10%
# more plus 4 MiB for metadata.
LO=$((BASE + FILE))
HI=$((BASE + FILE + FILE / 10 + 4 * MiB))
t=$(now)
poll_until 60 "every node back to one copy of the live file ($(mib "$LO")..$(mib "$HI") MiB)" \
	all_used_within "$LO" "$HI"
GC_S=$(since "$t")
LIVE=$(blobs_of "$FILE")
poll_until 30 "every node holding the live file's $LIVE blobs, none condemned" \
	all_blobs "$LIVE"
show "collected"
echo "overwrite: 6 x 64 MiB written in $WRITE_S s (each: ${WS[*]} s); used_bytes per node (max over the nodes): empty $(mib "$BASE") MiB, after the writes $(mib "$BEFORE") MiB, peak $(mib "$PEAK") MiB, back to $(mib "$(max_used)") MiB (min $(mib "$(min_used)"); allowed $(mib "$LO")..$(mib "$HI")) in $GC_S s"
umount_fs "$M"
mount_fs "$M" $MOPTS
same_version 5 "$M/big" ||
	fail "big does not read back as its last version ($(cmp -i $((5 * 4096)):0 -n "$FILE" "$SRC" "$M/big" 2>&1 | head -n 1))"

########################################################################
step "sparse: 4 MiB at the end of a 5 GiB file"
declare -A START
sample || fail "status"
for n in "${NODES[@]}"; do START[$n]=${USED[$n]}; done
SPARSE=$((5 * 1024 * MiB))
t=$(now)
truncate -s "$SPARSE" "$M/sparse" || fail "truncate -s 5G"
dd if="$SRC" of="$M/sparse" bs=1M seek=$((SPARSE / MiB - 4)) count=4 \
	conv=notrunc,fsync status=none || fail "dd at the end"
SP_S=$(since "$t")
awk -v s="$SP_S" 'BEGIN { exit !(s < 2) }' ||
	fail "truncate and 4 MiB at the end took $SP_S s (limit 2 s)"
expect_eq "size" "$(stat -c %s "$M/sparse")" "$SPARSE"
DU=$(du -k "$M/sparse" | cut -f1)
[ "$DU" -ge 4096 ] && [ "$DU" -lt 8192 ] || fail "du -k: $DU (want 4096..8191)"
cmp -s -n $((4 * MiB)) "$SRC" <(dd if="$M/sparse" bs=1M skip=$((SPARSE / MiB - 4)) status=none) ||
	fail "the 4 MiB at the end differ"
for at in 0 2000 5000; do
	cmp -s -n $((4 * MiB)) /dev/zero <(dd if="$M/sparse" bs=1M skip="$at" count=4 status=none) ||
		fail "the hole at $at MiB does not read as zeros"
done
sample || fail "status"
SP_GROW=0
for n in "${NODES[@]}"; do
	g=$((${USED[$n]} - ${START[$n]}))
	[ "$g" -lt $((64 * MiB)) ] ||
		fail "$n: in use grew by $(mib "$g") MiB for the sparse file"
	[ "$g" -le "$SP_GROW" ] || SP_GROW=$g
done
t=$(now)
rc=0
timeout 10 truncate -s 999999999999999 "$M/huge" 2> "$T/huge.err" || rc=$?
HUGE_S=$(since "$t")
[ "$rc" = 124 ] && fail "truncate -s 999999999999999 still running after 10 s"
awk -v s="$HUGE_S" 'BEGIN { exit !(s < 1) }' ||
	fail "truncate -s 999999999999999 took $HUGE_S s (limit 1 s)"
if [ "$rc" = 0 ]; then
	HUGE="succeeded (size $(stat -c %s "$M/huge"))"
else
	grep -q "File too large" "$T/huge.err" ||
		fail "truncate -s 999999999999999: $(cat "$T/huge.err")"
	HUGE="EFBIG"
fi
echo "sparse: truncate -s 5G + dd 4 MiB at its end conv=notrunc,fsync in $SP_S s; du -k $DU; in use grew by $(mib "$SP_GROW") MiB (max over the nodes); truncate -s 999999999999999: $HUGE in $HUGE_S s"
declare -A D0
for n in "${NODES[@]}"; do D0[$n]=${DELETED[$n]}; done
rm -f "$M/sparse" "$M/huge"
t=$(now)
# The 32 chunks of the 4 MiB are deleted, and every node is back to where
# it started, within 1 MiB.
poll_until 30 "the sparse file's 32 chunks deleted on every node" all_deleted D0 32
DEL_S=$(since "$t")
poll_until 30 "every node back within 1 MiB of its start" all_used_below START "$MiB"
poll_until 30 "every node back to the $LIVE blobs of big" all_blobs "$LIVE"
echo "sparse: after rm, 32 chunks deleted on every node in $DEL_S s, back to $(mib "$(max_used)") MiB (n1 started at $(mib "${START[n1]}") MiB) in $(since "$t") s"

########################################################################
step "a mount killed (-9) in the middle of a 32 MiB write; meanwhile a slow write"
# Through a second mount, meanwhile: 40 chunks of 128 KiB, one every
# 0.15 s, so 6 s (three grace periods) from the first chunk's put to the
# close that stores the object naming it.
head -c $((5 * MiB)) /dev/urandom > "$T/slow"
mount_fs "$T/ms" $MOPTS
python3 - "$T/slow" "$T/ms/slow" <<'EOF' &
import sys, time
src = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'wb') as f:
    for i in range(0, len(src), 131072):
        f.write(src[i:i + 131072])
        f.flush()
        time.sleep(0.15)
EOF
SLOWPID=$!
# Complete before: L (the source's first 16 MiB), a small file, big.  The
# write that dies starts with the same 16 MiB (its puts renew L's chunks)
# and goes on with bytes no live file has: its garbage.
dd if="$SRC" of="$M/L" bs=1M count=16 conv=fsync status=none || fail "dd L"
head -c 30000 "$SRC" > "$T/small"
cp "$T/small" "$M/small"
sync "$M/small"
sample || fail "status"
declare -A DK
for n in "${NODES[@]}"; do DK[$n]=${DELETED[$n]}; done
# dd of 32 MiB from a pipe that gives it 24 MiB at once, then 1 MiB every
# 0.2 s: the mount is killed once the first 24 MiB are through (chunks that
# filled up are put at once, the object naming them only at the fsync).
python3 - "$SRC" "$T/dead.half" 2> /dev/null <<'EOF' |
import sys, time
src, out = open(sys.argv[1], 'rb'), sys.stdout.buffer
for i in range(32):
    out.write(src.read(1 << 20))
    out.flush()
    if i == 23:
        open(sys.argv[2], 'w').close()
    if i >= 23:
        time.sleep(0.2)
EOF
	dd of="$M/dead" bs=1M iflag=fullblock conv=fsync status=none 2> "$T/dead.err" &
WPID=$!
wait_until 30 test -e "$T/dead.half"
sleep 0.3
kill_mount "$M"
if wait "$WPID"; then fail "dd went through a killed mount"; fi
mount_fs "$M" $MOPTS
log "the dead write: $(tail -n 1 "$T/dead.err")"
wait "$SLOWPID" || fail "the slow write failed"
umount_fs "$T/ms"

########################################################################
step "files written while n3 is cut off"
# P exists before (on all three); while n3 is cut off from n1 and n2 (both
# sides), a mount of n1 and n2 overwrites P and writes Q: n3's copies are
# held by n1 and n2 as hints.
for f in P0 P Q; do head -c $((3 * MiB + 12345)) /dev/urandom > "$T/$f"; done
cp "$T/P0" "$M/P"
sync "$M/P"
ctl --node "${ADDR[n3]}" fault drop n1 n2 > /dev/null || fail "fault drop on n3"
ctl --node "${ADDR[n1]}" fault drop n3 > /dev/null || fail "fault drop on n1"
ctl --node "${ADDR[n2]}" fault drop n3 > /dev/null || fail "fault drop on n2"
NODE_ADDR="${ADDR[n1]},${ADDR[n2]}"
mount_fs "$T/m12" $MOPTS
NODE_ADDR=$ALL
cp "$T/P" "$T/m12/P"
cp "$T/Q" "$T/m12/Q"
sync "$T/m12/P" "$T/m12/Q"
umount_fs "$T/m12"
sample || fail "status"
show "cut off"
# The mount routes by the ring and reaches n3 too: n3 holds hints for n1
# and n2 of what it coordinated.
HELD=$((HINTS[n1] + HINTS[n2])) HELD3=${HINTS[n3]}
[ "$HELD" -gt 0 ] || fail "n1 and n2 hold no hints for n3"
for n in n1 n2 n3; do ctl --node "${ADDR[$n]}" fault heal > /dev/null || fail "heal $n"; done
t=$(now)
poll_until 60 "every hint handed off" no_hints
echo "cut off: $HELD hints held by n1 and n2 for n3 (n3: $HELD3 for them), all handed off $(since "$t") s after the heal"

########################################################################
step "siblings from two mounts"
head -c $((MiB + 777)) /dev/urandom > "$T/S1"
head -c $((MiB + 888)) /dev/urandom > "$T/S2"
echo base > "$M/S"
mount_fs "$T/ma" $MOPTS
mount_fs "$T/mb" $MOPTS
# Both open S from the same state, both write, both close.
python3 - "$T/ma/S" "$T/mb/S" "$T/S1" "$T/S2" <<'EOF'
import os, sys
fds = [os.open(p, os.O_WRONLY | os.O_TRUNC) for p in sys.argv[1:3]]
for fd, src in zip(fds, sys.argv[3:5]):
    os.write(fd, open(src, 'rb').read())
for fd in fds:
    os.close(fd)
EOF
umount_fs "$T/ma"
umount_fs "$T/mb"
expect_eq "siblings" "$(names "$M" | tr ' ' '\n' | grep '^S' | tr '\n' ' ')" "S S.v1 S.v2 "

########################################################################
step "several grace periods: the dead write's garbage goes, nothing live"
# The mount flushes a file whose first chunks have waited a quarter of the
# grace period unnamed (0.5 s here), so the dying write has a version with
# what it wrote up to its last such flush; what came after is garbage.
poll_until 30 "the dead write's garbage deleted on every node" all_deleted DK 1
grace_periods 3
show "after"
umount_fs "$M"
check_all() {
	local m=$1
	same_version 5 "$m/big" || fail "$m: big is not its last version"
	same "$T/small" "$m/small" "killed mount"
	cmp -s -n $((16 * MiB)) "$SRC" "$m/L" ||
		fail "killed mount: $m/L differs ($(cmp -n $((16 * MiB)) "$SRC" "$m/L" 2>&1 | head -n 1))"
	expect_eq "L size" "$(stat -c %s "$m/L")" $((16 * MiB))
	same "$T/P" "$m/P" "written while n3 was cut off"
	same "$T/Q" "$m/Q" "written while n3 was cut off"
	if cmp -s "$T/S1" "$m/S.v1"; then
		same "$T/S2" "$m/S.v2" "siblings"
	else
		same "$T/S2" "$m/S.v1" "siblings"
		same "$T/S1" "$m/S.v2" "siblings"
	fi
	same "$T/slow" "$m/slow" "written over three grace periods"
	# What the dying write flushed is a prefix of what it was given.
	local d
	d=$(stat -c %s "$m/dead" 2> /dev/null || echo 0)
	[ "$d" -eq 0 ] || cmp -s -n "$d" "$SRC" "$m/dead" ||
		fail "killed mount: $m/dead is not the start of what dd wrote"
}
# A fresh mount of all three nodes, and one of n3 alone.
mount_fs "$T/fresh" $MOPTS
check_all "$T/fresh"
DEAD=$(stat -c %s "$T/fresh/dead" 2> /dev/null || echo 0)
umount_fs "$T/fresh"
# What is live: big, L, P, Q, the two siblings, slow (small is inline, P's
# first version is garbage), and what the dying write flushed: its chunks
# past L's 16 MiB (those before are L's) and its page, unless it is L's.
dead_blobs=0
if [ "$DEAD" -gt 0 ] && [ "$DEAD" -ne $((16 * MiB)) ]; then
	shared=$((DEAD < 16 * MiB ? DEAD : 16 * MiB))
	dead_blobs=$(($(blobs_of "$DEAD") - shared / 131072))
fi
log "the dying write's flushed version: $DEAD bytes, $dead_blobs blobs of its own"
LIVE=$(($(blobs_of "$FILE") + $(blobs_of $((16 * MiB))) + \
	2 * $(blobs_of "$(stat -c %s "$T/P")") + $(blobs_of "$(stat -c %s "$T/S1")") + \
	$(blobs_of "$(stat -c %s "$T/S2")") + $(blobs_of "$(stat -c %s "$T/slow")") + \
	dead_blobs))
NODE_ADDR=${ADDR[n3]}
mount_fs "$T/fresh3" $MOPTS
check_all "$T/fresh3"
umount_fs "$T/fresh3"
poll_until 30 "every node holding exactly the $LIVE live blobs, none condemned" \
	all_blobs "$LIVE"
echo "live files intact after 3 grace periods of collection; total $(since "$T0") s"
echo PASS
