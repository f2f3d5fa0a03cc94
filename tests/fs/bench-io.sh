#!/usr/bin/env bash
# tests/fs/bench-io.sh — I/O of the mount against the plain disk, side by
# side in one run (a program, not a test):
#   1. fio 4 KiB random read of a FILE_MB file (default 64), psync, 1 job,
#      RUNTIME s (default 10): cold (page cache dropped; the mount is also
#      unmounted and remounted, so dynamofs's own caches are cold), then
#      warm right after (no drop, no remount);
#   2. fio 4 KiB random write of that file, psync, RUNTIME s, no fsync per
#      write, end_fsync=1 (fio fsyncs once at the end, inside its runtime);
#   3. dd of DD_MB (default 256) from a random file bs=1M conv=fsync, then
#      page cache dropped (mount remounted) and dd back to /dev/null, MB/s;
#   4. a table: plain | dynamofs | ratio, against the targets of the issue,
#      and the nodes' traffic for each workload on the mount: rx_bytes and
#      tx_bytes of `dynamoctl status` summed over the nodes, raw and net of
#      the idle background (measured first, IDLE_S s, default 5);
#   5. FLUSH_BYTES=1 (the default; 0 skips it): the bytes received for a
#      4 KiB change in the middle of a BIG_MB file (default 1024), and for a
#      cp of a CP_MB file (default 256) within the mount.
# Starts its own 3-node cluster on 127.0.0.1 (fsync on, the default; extra
# dynamod flags in NODE_OPTS) and one mount of all three nodes (extra
# dynamofs flags in MOUNT_OPTS), in a temporary directory under $TMPDIR or
# /tmp; the plain directory is there too, on the same disk as the nodes'
# data.  Needs root (drop_caches), fio and python3 (or jq).  Usage:
#   tests/fs/bench-io.sh           # binaries default to build/release
#   RUNTIME=5 FILE_MB=32 DD_MB=64 BIG_MB=256 NODE_OPTS=... tests/fs/bench-io.sh
# Results go to stdout, progress (== step) to stderr; HARNESS_KEEP=1 keeps
# the temporary directory (fio's JSON, the logs).
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${DYNAMOD:=$ROOT/build/release/node/dynamod}"
: "${DYNAMOFS:=$ROOT/build/release/fs/dynamofs}"
: "${DYNAMOCTL:=$ROOT/build/release/node/dynamoctl}"
for b in "$DYNAMOD" "$DYNAMOFS" "$DYNAMOCTL"; do
	[ -x "$b" ] || { echo "no binary $b (ninja -C build/release)" >&2; exit 1; }
done
for p in fio dd fusermount3; do
	command -v "$p" > /dev/null || { echo "needs $p" >&2; exit 1; }
done
if command -v python3 > /dev/null; then
	JSON=python3
elif command -v jq > /dev/null; then
	JSON=jq
else
	echo "needs python3 or jq" >&2
	exit 1
fi
export DYNAMOD DYNAMOFS DYNAMOCTL
. "$ROOT/tests/fs/lib.sh"

RUNTIME=${RUNTIME:-10}
FILE_MB=${FILE_MB:-64}
DD_MB=${DD_MB:-256}
FLUSH_BYTES=${FLUSH_BYTES:-1}
BIG_MB=${BIG_MB:-1024}
CP_MB=${CP_MB:-256}
IDLE_S=${IDLE_S:-5}
read -r -a node_opts <<<"${NODE_OPTS:-}"
read -r -a mount_opts <<<"${MOUNT_OPTS:-}"
M=$T/m
P=$T/plain

ctl() { "$DYNAMOCTL" --cluster-key "$KEY" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
per() { awk -v b="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", b / n; else print "-" }'; }

DROP=1
[ -w /proc/sys/vm/drop_caches ] || DROP=0
drop_caches() {
	sync
	[ "$DROP" = 0 ] || echo 3 > /proc/sys/vm/drop_caches
}

# remount_cold: unmount (dynamofs's caches go with the process, the
# kernel's with the inodes), drop the page cache, mount again.
remount_cold() {
	umount_fs "$M"
	drop_caches
	mount_fs "$M" "${mount_opts[@]}"
}

# cold TARGET: page cache dropped; on the mount, also remounted.
cold() {
	if [ "$1" = fs ]; then remount_cold; else drop_caches; fi
}

dir_of() { if [ "$1" = fs ]; then echo "$M"; else echo "$P"; fi; }

# io_sum: "RX TX", rx_bytes and tx_bytes of `dynamoctl status --json` summed
# over the three nodes: the bytes of the requests they received (from the
# mount and from each other) and of the replies they sent.
# (`status --json`: the plain form is a health table without the
# counters.)  Called as $(io_sum), where fail would end only the
# subshell: io_read checks what came back.
# Its exit status is not looked at: under load the verdict can be
# "degraded" (a node slow to answer the health probe, hints pending
# after a big write) while every node still reports its counters; a
# node missing from the answer is asked again, up to 5 times.
io_sum() {
	local out try
	for try in 1 2 3 4 5; do
		out=$(ctl --node "$A1" --node "$A2" --node "$A3" status \
			--json 2>/dev/null) || true
		grep -oE '"(rx|tx)_bytes": *[0-9]+' <<<"$out" | tr -d '" ' |
			awk -F: '$1 == "rx_bytes" { r += $2; n++ }
			$1 == "tx_bytes" { t += $2 }
			END { if (n != 3) exit 1; printf "%.0f %.0f\n", r, t }' &&
			return 0
		sleep 0.2
	done
	fail "no rx_bytes for 3 nodes in dynamoctl status --json"
}

# io_read VAR_RX VAR_TX [SUM]: SUM (default $(io_sum)) into the two
# variables; the run fails when it is not two numbers.
io_read() {
	local sum=${3-$(io_sum)}
	[[ $sum =~ ^[0-9]+\ [0-9]+$ ]] ||
		fail "no node traffic from dynamoctl status --json"
	read -r "$1" "$2" <<<"$sum"
}

# io_quiet: io_sum once the nodes are back to the idle background (the
# last replica's write and chunk deletes can land after the call that
# caused them returned): rx + tx grew by at most IDLE_RX + IDLE_TX +
# 128 KiB in half a second (about twice the idle rate), or 30 s passed.
io_quiet() {
	local r0 t0 r1 t1 deadline=$((SECONDS + 30))
	io_read r1 t1
	while :; do
		r0=$r1 t0=$t1
		sleep 0.5
		io_read r1 t1
		[ $((r1 - r0 + t1 - t0)) -gt $((IDLE_RX + IDLE_TX + 131072)) ] ||
			break
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "(node traffic still above idle after 30 s)" >&2
			break
		fi
	done
	echo "$r1 $t1"
}

# io_begin: note io_sum and the time, for io_end.
io_begin() {
	io_read RX0 TX0
	IOT0=$(now)
}

# io_end NAME: RX[NAME], TX[NAME] = bytes received, sent since io_begin,
# once quiet; NRX[NAME], NTX[NAME] = the same minus the idle background
# over that time ("net").
io_end() {
	local r t el
	io_read r t "$(io_quiet)"
	el=$(since "$IOT0")
	RX[$1]=$((r - RX0))
	TX[$1]=$((t - TX0))
	NRX[$1]=$(net "${RX[$1]}" "$IDLE_RX" "$el")
	NTX[$1]=$(net "${TX[$1]}" "$IDLE_TX" "$el")
}
net() {
	awk -v b="$1" -v i="$2" -v s="$3" \
		'BEGIN { n = b - i * s; printf "%.0f", (n > 0 ? n : 0) }'
}

# jget FILE EXPR: one value of a JSON file (EXPR in jq syntax, a path of
# .names and [index]es only).
jget() {
	if [ "$JSON" = jq ]; then
		jq -r "$2" "$1"
	else
		python3 - "$1" "$2" <<-'EOF'
			import json, re, sys
			v = json.load(open(sys.argv[1]))
			for name, idx in re.findall(r'\.(\w+)|\[(\d+)\]', sys.argv[2]):
			    v = v[name] if name else v[int(idx)]
			print(str(v).lower() if isinstance(v, bool) else v)
		EOF
	fi
}

# settled: every node's ring has 3 members each owning partitions and no
# transfer pending.
settled() {
	local a f=$T/ring.json
	for a in "$A1" "$A2" "$A3"; do
		ctl --node "$a" ring --json > "$f" || return 1
		if [ "$JSON" = jq ]; then
			jq -e '(.members | length) == 3 and
				all(.members[]; .partitions > 0) and
				(.transfer_pending | not)' "$f" > /dev/null || return 1
		else
			python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
m = r["members"]
sys.exit(0 if len(m) == 3 and all(x["partitions"] > 0 for x in m)
         and not r["transfer_pending"] else 1)' "$f" || return 1
		fi
	done
}

# Results: VAL[workload.target] (IOPS or MB/s), OPS[workload.target]
# (fio's I/Os, dd's MiB); RX, TX, NRX, NTX[workload] (the nodes'
# traffic during the workload on the mount, see io_end).
declare -A VAL OPS RX TX NRX NTX
WORKLOADS=(rr_cold rr_warm rw sw sr)
declare -A LABEL=(
	[rr_cold]="randread 4k cold (IOPS)"
	[rr_warm]="randread 4k warm (IOPS)"
	[rw]="randwrite 4k (IOPS)"
	[sw]="dd write 1M fsync (MB/s)"
	[sr]="dd read 1M cold (MB/s)"
)
declare -A TARGET=([rr_cold]=0.3 [rr_warm]=0.5 [rw]=0.03 [sw]=0.25 [sr]=0.6)

# fio_run WORKLOAD TARGET RW [fio options...]: IOPS into VAL.
fio_run() {
	local w=$1 t=$2 rw=$3 dir out iops
	shift 3
	dir=$(dir_of "$t")
	out=$T/fio-$w-$t.json
	[ "$t" = plain ] || io_begin
	fio --name="$w" --filename="$dir/fio.dat" --size="${FILE_MB}m" \
		--bs=4k --rw="$rw" --ioengine=psync --numjobs=1 --time_based \
		--runtime="$RUNTIME" --invalidate=0 --output-format=json \
		--output="$out" "$@" > "$T/fio-$w-$t.log" 2>&1 ||
		fail "fio $w on $t: $(tail -n 3 "$T/fio-$w-$t.log")"
	[ "$(jget "$out" '.jobs[0].error')" = 0 ] || fail "fio $w on $t: error"
	local dd=${rw#rand}
	iops=$(jget "$out" ".jobs[0].$dd.iops")
	VAL[$w.$t]=$(awk -v v="$iops" 'BEGIN { printf "%.0f", v }')
	OPS[$w.$t]=$(jget "$out" ".jobs[0].$dd.total_ios")
	[ "$t" = plain ] || io_end "$w"
	printf '  %-26s %-8s %10s IOPS  (%s MiB/s, fio runtime %s ms)\n' \
		"${LABEL[$w]%% (*}" "$t" "${VAL[$w.$t]}" \
		"$(mib "$(jget "$out" ".jobs[0].$dd.bw_bytes")")" \
		"$(jget "$out" ".jobs[0].$dd.runtime")"
}

# dd_run WORKLOAD TARGET IF OF [dd options...]: MB/s into VAL.
dd_run() {
	local w=$1 t=$2 in=$3 of=$4 t0 s
	shift 4
	[ "$t" = plain ] || io_begin
	t0=$(now)
	dd if="$in" of="$of" bs=1M count="$DD_MB" status=none "$@" ||
		fail "dd $w on $t"
	s=$(since "$t0")
	VAL[$w.$t]=$(awk -v mb="$DD_MB" -v s="$s" \
		'BEGIN { printf "%.0f", mb * 1.048576 / s }')
	OPS[$w.$t]=$DD_MB
	[ "$t" = plain ] || io_end "$w"
	printf '  %-26s %-8s %10s MB/s  (%s s)\n' "${LABEL[$w]%% (*}" "$t" \
		"${VAL[$w.$t]}" "$s"
}

step "3-node cluster"
start_node n1 "${node_opts[@]}"
A1=$NODE_ADDR
start_node n2 "${node_opts[@]}" --seed "$A1"
A2=$NODE_ADDR
start_node n3 "${node_opts[@]}" --seed "$A1"
A3=$NODE_ADDR
wait_until 60 settled

step "mount all three"
NODE_ADDR="$A1,$A2,$A3"
mount_fs "$M" "${mount_opts[@]}"
mkdir -p "$P"

SRC_MB=$DD_MB
[ "$FILE_MB" -le "$SRC_MB" ] || SRC_MB=$FILE_MB
[ "$FLUSH_BYTES" = 0 ] || [ "$CP_MB" -le "$SRC_MB" ] || SRC_MB=$CP_MB
step "random source file, $SRC_MB MiB"
head -c $((SRC_MB << 20)) /dev/urandom > "$P/src"

echo "dynamofs bench-io: 3 nodes ($A1 $A2 $A3), fsync on${NODE_OPTS:+, NODE_OPTS=$NODE_OPTS}${MOUNT_OPTS:+, MOUNT_OPTS=$MOUNT_OPTS}"
echo "plain: $P ($(df -T "$P" | awk 'NR == 2 { print $2 " on " $1 }'), where the nodes' data is too)"
echo "RUNTIME=$RUNTIME s FILE_MB=$FILE_MB DD_MB=$DD_MB; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$DROP" = 1 ] || echo "!! not root: page cache NOT dropped, cold runs are not cold"

step "idle background, $IDLE_S s"
# Polled every half second, as io_quiet does (a status reply is ~2.5 KiB).
io_read r0 t0
for _ in $(seq $((IDLE_S * 2))); do
	sleep 0.5
	io_read r1 t1
done
IDLE_RX=$(((r1 - r0) / IDLE_S))
IDLE_TX=$(((t1 - t0) / IDLE_S))
echo "nodes idle (gossip, anti-entropy): rx $IDLE_RX bytes/s, tx $IDLE_TX bytes/s in all"

step "lay out the $FILE_MB MiB fio file"
for t in plain fs; do
	dd if="$P/src" of="$(dir_of $t)/fio.dat" bs=1M count="$FILE_MB" \
		conv=fsync status=none || fail "layout on $t"
done

echo
echo "## fio randread, 4 KiB, psync, 1 job, $RUNTIME s; cold = page cache" \
	"dropped, and for dynamofs unmounted and remounted (its own caches" \
	"cold too); warm = right after, nothing dropped"
for t in plain fs; do
	step "randread cold on $t"
	cold "$t"
	fio_run rr_cold "$t" randread
	step "randread warm on $t"
	fio_run rr_warm "$t" randread
done

echo "## fio randwrite, 4 KiB, psync, 1 job, $RUNTIME s; no fsync per" \
	"write, end_fsync=1 (one fsync at the end, counted in fio's runtime)"
for t in plain fs; do
	step "randwrite on $t"
	sync
	fio_run rw "$t" randwrite --end_fsync=1
done

echo "## dd $DD_MB MiB bs=1M: write conv=fsync from $P/src (kept in the" \
	"page cache); read to /dev/null after dropping the page cache (dynamofs" \
	"remounted); MB = 10^6 bytes, time includes close"
for t in plain fs; do
	d=$(dir_of "$t")
	step "dd write on $t"
	sync
	cat "$P/src" > /dev/null
	dd_run sw "$t" "$P/src" "$d/dd.dat" conv=fsync
	step "dd read on $t"
	cold "$t"
	dd_run sr "$t" "$d/dd.dat" /dev/null
	cmp -s -n $((DD_MB << 20)) "$P/src" "$d/dd.dat" ||
		echo "!! $t: dd.dat differs from the source"
	rm -f "$d/dd.dat"
done

# ratio A B: B / A with 4 decimals (- when A is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.4f", b / a; else print "-" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "-" && r + 0 >= t + 0) ? "ok" : "below" }'; }

echo
echo "## results (ratio = dynamofs / plain)"
printf '%-26s %10s %10s %8s  %-8s %s\n' workload plain dynamofs ratio target ""
for w in "${WORKLOADS[@]}"; do
	r=$(ratio "${VAL[$w.plain]}" "${VAL[$w.fs]}")
	printf '%-26s %10s %10s %8s  >= %-5s %s\n' "${LABEL[$w]}" \
		"${VAL[$w.plain]}" "${VAL[$w.fs]}" "$r" "${TARGET[$w]}" \
		"$(verdict "$r" "${TARGET[$w]}")"
done

echo
echo "## the nodes' traffic during each workload on dynamofs: rx = requests"
echo "   received (from the mount and from each other: replication), tx ="
echo "   replies sent, summed over the 3 nodes; net = minus the idle"
echo "   background (rx $IDLE_RX, tx $IDLE_TX bytes/s) over the same time"
printf '%-18s %9s %9s %9s %9s %12s %12s\n' workload "rx MiB" "net rx" \
	"tx MiB" "net tx" "net rx/op" "net tx/op"
for w in "${WORKLOADS[@]}"; do
	case $w in
	rr_*|rw) unit="B per 4 KiB I/O" ;;
	*) unit="B per MiB" ;;
	esac
	ops=${OPS[$w.fs]}
	printf '%-18s %9s %9s %9s %9s %12s %12s %s\n' "${LABEL[$w]%% (*}" \
		"$(mib "${RX[$w]}")" "$(mib "${NRX[$w]}")" \
		"$(mib "${TX[$w]}")" "$(mib "${NTX[$w]}")" \
		"$(per "${NRX[$w]}" "$ops")" "$(per "${NTX[$w]}" "$ops")" "$unit"
done

# flush_report NAME WHAT SECONDS LIMIT_MIB: one line of the flush section,
# judged on the net bytes received.
flush_report() {
	printf '  %-40s rx %s MiB, net %s MiB (tx %s MiB) in %s s; target net rx <= %s MiB: %s\n' \
		"$2" "$(mib "${RX[$1]}")" "$(mib "${NRX[$1]}")" \
		"$(mib "${TX[$1]}")" "$3" "$4" \
		"$([ "${NRX[$1]}" -le $(($4 << 20)) ] && echo ok || echo below)"
}

if [ "$FLUSH_BYTES" != 0 ]; then
	echo
	echo "## bytes a flush sends (rx, net and tx as above)"
	step "$BIG_MB MiB file on the mount"
	t0=$(now)
	dd if=/dev/urandom of="$M/big" bs=1M count="$BIG_MB" conv=fsync \
		status=none || fail "dd $BIG_MB MiB"
	echo "  made $M/big: $BIG_MB MiB from /dev/urandom, conv=fsync, $(since "$t0") s"
	step "4 KiB in the middle"
	io_quiet > /dev/null
	io_begin
	t0=$(now)
	dd if="$P/src" of="$M/big" bs=4k count=1 seek=$((BIG_MB * 128)) \
		conv=notrunc,fsync status=none || fail "dd 4 KiB"
	s=$(since "$t0")
	io_end flush4k
	flush_report flush4k "dd 4 KiB into the middle, notrunc,fsync:" "$s" 4
	rm -f "$M/big"

	step "cp of a $CP_MB MiB file within the mount"
	dd if="$P/src" of="$M/cpsrc" bs=1M count="$CP_MB" conv=fsync \
		status=none || fail "dd $CP_MB MiB"
	io_quiet > /dev/null
	io_begin
	t0=$(now)
	cp "$M/cpsrc" "$M/cpdst"
	sync
	s=$(since "$t0")
	io_end flushcp
	flush_report flushcp "cp of a $CP_MB MiB file; sync:" "$s" 8
	cmp -s "$M/cpsrc" "$M/cpdst" || echo "!! the copy differs"
	rm -f "$M/cpsrc" "$M/cpdst"
fi

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"
umount_fs "$M"
