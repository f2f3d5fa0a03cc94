#!/usr/bin/env bash
# tests/fs/bench.sh — filesystem throughput and the namespace (a program,
# not a test; tests/run does not run it).  Phases, chosen with PHASES
# (default "dd files big tree"; they run in this order):
#   dd     dd of a SIZE_MB file (default 1024) into the mount and back out,
#          and the same on the disk the nodes' data lives on, page cache
#          dropped before each read (needs root for that; else it says so);
#   files  create, stat and unlink of NFILES small files (default 10,000)
#          in one directory, then in 100 directories of 100, ops/s, on the
#          plain directory and on the mount;
#   big    (issue 11) create, stat and unlink rate of FILES_BIG files
#          (default 2,000) in an empty directory, then in a directory that
#          already holds BIG entries (default 100,000): both rates and the
#          ratio full/empty (target >= 0.8 on the mount).  The big directory
#          is filled by a Python creator with FILL_THREADS (default 8)
#          threads keeping creates in flight (fill rate printed; the
#          kernel holds a directory's lock across a create, so what
#          overlaps is the rest: open's reply, close).  Then `ls -f | wc -l`
#          must count BIG + 2 ("!! count" otherwise), with the time until
#          ls's first output (ls writes to a pipe in 4 KiB blocks, so that
#          is the time to its first few hundred names; target < 1 s)
#          and the whole listing's; last, `rm -rf` of the big directory,
#          entries/s.  BIG=1000000 is the issue's million-entry check;
#   tree   (issue 11) TREE_FILES files of 100 bytes (default 2,000) in
#          TREE_DIRS directories (default 20): created (files/s), `ls -lR`
#          twice (the second is judged: <= 5x the plain time), the files
#          deleted one by one (files/s: >= 0.06x the plain rate); then a
#          tree of RM_FILES files (default 3,000) in RM_DIRS directories
#          (default 30; two of every three nested one level down) built
#          with FILL_THREADS threads, and `rm -rf` of it timed (<= 50x).
# Every phase but dd runs on the mount and, in the same run, on a plain
# directory of the same disk (under the temporary directory, where the
# nodes' data is too), and prints a table: plain | dynamofs | ratio
# (dynamofs / plain, of rates or of times) | the issue's target.
#
# Starts its own cluster (fsync on, the default; extra dynamod flags in
# NODE_OPTS, dynamofs flags in MOUNT_OPTS) and mount, like the tests:
# NODES=1 (default) one node, NODES=3 three on 127.0.0.1 (issue 11's
# figures; needs dynamoctl), the mount given all three.  Binaries default
# to build/release (DYNAMOD, DYNAMOFS, DYNAMOCTL override).  Usage:
#   tests/fs/bench.sh
#   NODES=3 PHASES="big tree" BIG=2000 FILES_BIG=200 tests/fs/bench.sh
# Results go to stdout, progress (== step) to stderr; everything started
# and the temporary directory go on exit (lib.sh), HARNESS_KEEP=1 keeps
# the directory.
# tests/fs/bench-io.sh: fio random I/O, dd and flush costs, 3 nodes vs disk.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${DYNAMOD:=$ROOT/build/release/node/dynamod}"
: "${DYNAMOFS:=$ROOT/build/release/fs/dynamofs}"
: "${DYNAMOCTL:=$ROOT/build/release/node/dynamoctl}"
NODES=${NODES:-1}
PHASES=${PHASES:-dd files big tree}
for ph in $PHASES; do
	case $ph in
	dd | files | big | tree) ;;
	*) echo "unknown phase '$ph' in PHASES (dd files big tree)" >&2; exit 2 ;;
	esac
done
case $NODES in
1) bins=("$DYNAMOD" "$DYNAMOFS") ;;
3) bins=("$DYNAMOD" "$DYNAMOFS" "$DYNAMOCTL") ;;
*) echo "NODES must be 1 or 3" >&2; exit 2 ;;
esac
for b in "${bins[@]}"; do
	[ -x "$b" ] || { echo "no binary $b (ninja -C build/release)" >&2; exit 1; }
done
command -v python3 > /dev/null || { echo "needs python3" >&2; exit 1; }
export DYNAMOD DYNAMOFS DYNAMOCTL
. "$ROOT/tests/fs/lib.sh"

SIZE_MB=${SIZE_MB:-1024}
NFILES=${NFILES:-10000}
FILES_BIG=${FILES_BIG:-2000}
BIG=${BIG:-100000}
FILL_THREADS=${FILL_THREADS:-8}
TREE_FILES=${TREE_FILES:-2000}
TREE_DIRS=${TREE_DIRS:-20}
RM_FILES=${RM_FILES:-3000}
RM_DIRS=${RM_DIRS:-30}
read -r -a node_opts <<<"${NODE_OPTS:-}"
read -r -a mount_opts <<<"${MOUNT_OPTS:-}"
M=$T/m
P=$T/plain

has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

if [ "$NODES" = 3 ]; then
	step "3-node cluster"
	start_three_nodes "${node_opts[@]}"
	NODE_ADDR="$A1,$A2,$A3"
else
	step "one node"
	start_node n1 "${node_opts[@]}"
fi
step "mount"
mount_fs "$M" "${mount_opts[@]}"
mkdir -p "$P"

fsync=on
[[ " ${NODE_OPTS:-} " != *" --no-fsync "* ]] || fsync=off
echo "dynamofs bench: $NODES node(s) ($NODE_ADDR), fsync $fsync${NODE_OPTS:+, NODE_OPTS=$NODE_OPTS}${MOUNT_OPTS:+, MOUNT_OPTS=$MOUNT_OPTS}; PHASES=\"$PHASES\""
echo "plain: $P ($(df -T "$P" | awk 'NR == 2 { print $2 " on " $1 }'), where the nodes' data is too); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
drop_caches() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then
		echo 3 > /proc/sys/vm/drop_caches
	else
		echo "(not root: page cache not dropped)"
	fi
}

# The namespace workloads, one Python program; every command prints the
# seconds its work took, measured inside (Python's start is not counted:
# on the plain disk it would be most of an ls -lR).
NS=$T/nsbench.py
cat > "$NS" <<-'EOF'
	import os, subprocess, sys, threading, time

	DATA = b"x" * 100

	def create(p):
	    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
	    try:
	        os.write(fd, DATA)
	    finally:
	        os.close(fd)

	def touch(p):
	    os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))

	OPS = {"create": create, "fill": touch, "stat": os.stat,
	       "unlink": os.unlink}

	def run(op, paths, threads):
	    """op on every path, by THREADS threads (each a stride of them)."""
	    errs = []
	    def work(part):
	        try:
	            for p in part:
	                op(p)
	        except OSError as e:
	            errs.append(e)
	    ts = [threading.Thread(target=work, args=(paths[k::threads],))
	          for k in range(threads)]
	    for t in ts:
	        t.start()
	    for t in ts:
	        t.join()
	    if errs:
	        sys.exit("nsbench: %s" % errs[0])

	def tree_dirs(d, ndirs, nested):
	    """ndirs directories under d; nested: of every three, the first is
	    d/aNN and the other two aNN/b1, aNN/b2 (parents come first)."""
	    if not nested:
	        return [os.path.join(d, "d%03d" % i) for i in range(ndirs)]
	    return [os.path.join(d, "a%03d" % (i // 3)) if i % 3 == 0 else
	            os.path.join(d, "a%03d" % (i // 3), "b%d" % (i % 3))
	            for i in range(ndirs)]

	def tree_files(dirs, nfiles):
	    return [os.path.join(dirs[i % len(dirs)], "f%05d" % i)
	            for i in range(nfiles)]

	cmd, a = sys.argv[1], sys.argv[2:]
	t0 = time.monotonic()
	if cmd in OPS:
	    # OP DIR N PREFIX [THREADS]: files DIR/PREFIX0000000...
	    d, n, prefix = a[0], int(a[1]), a[2]
	    threads = int(a[3]) if len(a) > 3 else 1
	    paths = [os.path.join(d, "%s%07d" % (prefix, i)) for i in range(n)]
	    t0 = time.monotonic()
	    run(OPS[cmd], paths, threads)
	elif cmd == "tree":
	    # tree OP DIR NDIRS NFILES THREADS flat|nested: NFILES files spread
	    # over NDIRS directories of DIR.  OP create: mkdir DIR and its
	    # directories, then create the files (100 bytes); stat; unlink:
	    # unlink the files, then rmdir the directories and DIR (not timed).
	    op, d, ndirs, nfiles, threads = a[0], a[1], int(a[2]), int(a[3]), int(a[4])
	    dirs = tree_dirs(d, ndirs, a[5] == "nested")
	    files = tree_files(dirs, nfiles)
	    if op == "create":
	        os.mkdir(d)
	        for s in dirs:
	            os.mkdir(s)
	    run(OPS[op], files, threads)
	    el = time.monotonic() - t0
	    if op == "unlink":
	        for s in reversed(dirs):
	            os.rmdir(s)
	        os.rmdir(d)
	    print("%.6f" % el)
	    sys.exit(0)
	elif cmd == "lsfirst":
	    # lsfirst DIR: `ls -f DIR` into a pipe; "FIRST TOTAL LINES": the
	    # seconds until its first line arrived, until it ended, its lines.
	    p = subprocess.Popen(["ls", "-f", a[0]], stdout=subprocess.PIPE)
	    first, lines = None, 0
	    for line in p.stdout:
	        if first is None:
	            first = time.monotonic() - t0
	        lines += 1
	    if p.wait() != 0:
	        sys.exit("nsbench: ls -f %s exited %d" % (a[0], p.returncode))
	    total = time.monotonic() - t0
	    print("%.6f %.6f %d" % (first if first is not None else total,
	                            total, lines))
	    sys.exit(0)
	elif cmd == "cmd":
	    # cmd OUT PROGRAM ARGS...: run it, its output into OUT.
	    with open(a[0], "wb") as out:
	        t0 = time.monotonic()
	        rc = subprocess.call(a[1:], stdout=out)
	    if rc != 0:
	        sys.exit("nsbench: %s exited %d" % (" ".join(a[1:]), rc))
	else:
	    sys.exit("nsbench: unknown command " + cmd)
	print("%.6f" % (time.monotonic() - t0))
EOF
# ns COMMAND ARGS...: run it, its output into NS_OUT.  In the
# background, waited for: a signal to the script runs lib.sh's trap at
# once (bash defers it while a foreground child runs, and a create
# stuck on the mount can take its 40 s timeout), and the cleanup ends
# the Python too, by its PID, listed with the nodes while it runs.
ns() {
	local n=${#NODE_PIDS[@]} rc=0
	python3 "$NS" "$@" > "$T/ns.out" &
	NODE_PIDS+=($!)
	wait "$!" || rc=$?
	NODE_PIDS=("${NODE_PIDS[@]:0:n}")
	[ "$rc" = 0 ] || fail "nsbench $1 exited $rc"
	NS_OUT=$(cat "$T/ns.out")
}

# Results: V[KEY.plain], V[KEY.fs].  Table rows:
# row LABEL KIND KEY [TARGET]: KIND rate (V is a count and a time,
# "N S": shown as N/S per second) or time (V in seconds); the ratio is
# dynamofs / plain of the rates or of the times; TARGET ">= X" or "<= X"
# judges that ratio, "s <= X" dynamofs's time.
declare -A V
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.4f", b / a; else print "-" }'; }
judge() {
	[ -n "$2" ] || return 0
	awk -v r="$1" -v op="${2%% *}" -v t="${2#* }" 'BEGIN {
		if (r == "-") v = "-"
		else if (op == ">=") v = (r + 0 >= t + 0) ? "ok" : "below"
		else v = (r + 0 <= t + 0) ? "ok" : "above"
		printf "%s %s: %s", op, t, v }'
}
# val KIND V: the rate (count / seconds) or the time, unrounded.
val() {
	if [ "$1" = rate ]; then
		awk -v n="${2% *}" -v s="${2#* }" 'BEGIN { printf "%.6f", n / s }'
	else
		echo "$2"
	fi
}
show() {
	if [ "$1" = rate ]; then
		awk -v v="$(val rate "$2")" 'BEGIN { printf (v < 100 ? "%.1f" : "%.0f"), v }'
	else
		awk -v s="$2" 'BEGIN { printf "%.4f", s }'
	fi
}
header() {
	echo
	echo "## $*"
	printf '  %-38s %10s %10s %9s  %s\n' "" plain dynamofs ratio target
}
row() {
	local label=$1 kind=$2 key=$3 target=${4:-} p f r
	p=${V[$key.plain]}
	f=${V[$key.fs]}
	r=$(ratio "$(val "$kind" "$p")" "$(val "$kind" "$f")")
	if [[ $target == "s "* ]]; then
		# "s <= X": dynamofs's time itself, in seconds.
		target="$(judge "$f" "${target#s }") (dynamofs, s)"
	else
		target=$(judge "$r" "$target")
	fi
	printf '  %-38s %10s %10s %9s  %s\n' "$label" "$(show "$kind" "$p")" \
		"$(show "$kind" "$f")" "$r" "$target"
}
# row_rel LABEL KEY_FULL KEY_EMPTY TARGET: the rate of KEY_FULL over that of
# KEY_EMPTY, for each side; TARGET judges dynamofs's.
row_rel() {
	local p f
	p=$(ratio "$(val rate "${V[$3.plain]}")" "$(val rate "${V[$2.plain]}")")
	f=$(ratio "$(val rate "${V[$3.fs]}")" "$(val rate "${V[$2.fs]}")")
	printf '  %-38s %10s %10s %9s  %s\n' "$1" "$p" "$f" "" \
		"$(judge "$f" "$4")"
}
on() { if [ "$1" = fs ]; then echo "$M"; else echo "$P"; fi; }

# ddtime SRC DST: seconds for dd SRC -> DST with 1 MiB blocks.
ddtime() {
	local t0 t1
	t0=$(now)
	dd if="$1" of="$2" bs=1M conv=fsync status=none 2>/dev/null ||
		dd if="$1" of="$2" bs=1M status=none
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

if has_phase dd; then
	step "dd, $SIZE_MB MiB"
	echo
	echo "## dd, $SIZE_MB MiB (MB/s)"
	head -c $((SIZE_MB << 20)) /dev/urandom > "$T/src"
	drop_caches
	w=$(ddtime "$T/src" "$T/direct")
	drop_caches
	r=$(ddtime "$T/direct" /dev/null)
	echo "disk directly:  write $(rate $((SIZE_MB * 1048576 / 1000000)) "$w")  read $(rate $((SIZE_MB * 1048576 / 1000000)) "$r")"
	rm -f "$T/direct"
	drop_caches
	w=$(ddtime "$T/src" "$M/big")
	drop_caches
	r=$(ddtime "$M/big" /dev/null)
	echo "through dynamofs: write $(rate $((SIZE_MB * 1048576 / 1000000)) "$w")  read $(rate $((SIZE_MB * 1048576 / 1000000)) "$r")"
	cmp -s "$T/src" "$M/big" || echo "!! content differs"
	rm -f "$M/big" "$T/src"
fi

# csu DIR N PREFIX KEY T: create, stat and unlink N files PREFIX* in DIR,
# one at a time, into V[KEY.create.T], V[KEY.stat.T], V[KEY.unlink.T].
csu() {
	local op
	for op in create stat unlink; do
		ns "$op" "$1" "$2" "$3"
		V[$4.$op.$5]="$2 $NS_OUT"
	done
}

if has_phase files; then
	# files_on plain|fs: create, stat, unlink of NFILES files in one
	# directory (V[flat.*]), then in 100 directories (V[tree.*]).
	files_on() {
		local t=$1 d
		d=$(on "$t")/files-flat
		step "files: $NFILES in one directory on $t"
		mkdir "$d"
		csu "$d" "$NFILES" f flat "$t"
		rmdir "$d"
		d=$(on "$t")/files-tree
		step "files: $NFILES in 100 directories on $t"
		ns tree create "$d" 100 "$NFILES" 1 flat
		V[tree.create.$t]="$NFILES $NS_OUT"
		ns tree stat "$d" 100 "$NFILES" 1 flat
		V[tree.stat.$t]="$NFILES $NS_OUT"
		ns tree unlink "$d" 100 "$NFILES" 1 flat
		V[tree.unlink.$t]="$NFILES $NS_OUT"
	}
	files_on plain
	files_on fs
	header "files: $NFILES of 100 bytes, one at a time (ops/s)"
	row "create, one directory" rate flat.create
	row "stat, one directory" rate flat.stat
	row "unlink, one directory" rate flat.unlink
	row "create, 100 directories (+ mkdir)" rate tree.create
	row "stat, 100 directories" rate tree.stat
	row "unlink, 100 directories (+ rmdir)" rate tree.unlink
fi

# settle: wait (at most 120 s) until the nodes are idle (less than a fifth
# of a core between them over a second): after the fill, anti-entropy and
# the hints of a burst of 100,000 keys would be measured with the files
# in the full directory.  Prints how long it took.
node_ticks() {
	local p sum=0 f
	for p in "${NODE_PIDS[@]}"; do
		[ -r "/proc/$p/stat" ] || continue
		read -r -a f < "/proc/$p/stat"
		sum=$((sum + f[13] + f[14]))
	done
	echo "$sum"
}
settle() {
	local t0=$SECONDS a b
	a=$(node_ticks)
	while [ $((SECONDS - t0)) -lt 120 ]; do
		sleep 1
		b=$(node_ticks)
		[ $((b - a)) -lt $(($(getconf CLK_TCK) / 5)) ] && break
		a=$b
	done
	echo "(nodes idle after $((SECONDS - t0)) s)"
}

if has_phase big; then
	big_on() {
		local t=$1 e b first total lines
		e=$(on "$t")/big-empty
		b=$(on "$t")/big-full
		[ "$t" = plain ] || settle
		step "big: $FILES_BIG files in an empty directory on $t"
		mkdir "$e"
		csu "$e" "$FILES_BIG" n e "$t"
		rmdir "$e"
		step "big: fill a directory with $BIG entries on $t, $FILL_THREADS threads"
		mkdir "$b"
		ns fill "$b" "$BIG" b "$FILL_THREADS"
		V[fill.$t]="$BIG $NS_OUT"
		[ "$t" = plain ] || settle
		step "big: $FILES_BIG files in the directory of $BIG on $t"
		csu "$b" "$FILES_BIG" n f "$t"
		step "big: ls -f of $BIG entries on $t"
		ns lsfirst "$b"
		read -r first total lines <<<"$NS_OUT"
		V[lsfirst.$t]=$first
		V[lstotal.$t]=$total
		[ "$lines" = $((BIG + 2)) ] ||
			echo "!! count: ls -f $b | wc -l = $lines, want $((BIG + 2))"
		step "big: rm -rf of $BIG entries on $t"
		ns cmd /dev/null rm -rf "$b"
		V[rm.$t]="$BIG $NS_OUT"
		[ ! -e "$b" ] || echo "!! $b still there after rm -rf"
	}
	big_on plain
	big_on fs
	header "big: $FILES_BIG files of 100 bytes in an empty directory and in one of $BIG entries, one at a time (ops/s)"
	row "create, empty directory" rate e.create
	row "create, $BIG entries" rate f.create
	row_rel "  create, $BIG / empty" f.create e.create ">= 0.8"
	row "stat, empty directory" rate e.stat
	row "stat, $BIG entries" rate f.stat
	row_rel "  stat, $BIG / empty" f.stat e.stat ">= 0.8"
	row "unlink, empty directory" rate e.unlink
	row "unlink, $BIG entries" rate f.unlink
	row_rel "  unlink, $BIG / empty" f.unlink e.unlink ">= 0.8"
	row "fill, $FILL_THREADS threads (entries/s)" rate fill
	row "ls -f, first output (s)" time lsfirst "s <= 1"
	row "ls -f, all $BIG (s)" time lstotal
	row "rm -rf of the $BIG (entries/s)" rate rm
fi

if has_phase tree; then
	tree_on() {
		local t=$1 d r out
		d=$(on "$t")/tree
		r=$(on "$t")/rmtree
		out=$T/ls-lR.$t
		step "tree: $TREE_FILES files in $TREE_DIRS directories on $t"
		ns tree create "$d" "$TREE_DIRS" "$TREE_FILES" 1 flat
		V[tcreate.$t]="$TREE_FILES $NS_OUT"
		step "tree: ls -lR twice on $t"
		ns cmd "$out" ls -lR "$d"
		V[ls1.$t]=$NS_OUT
		ns cmd "$out" ls -lR "$d"
		V[ls2.$t]=$NS_OUT
		[ "$(grep -c '^-' "$out")" = "$TREE_FILES" ] ||
			echo "!! count: ls -lR $d lists $(grep -c '^-' "$out") files, want $TREE_FILES"
		step "tree: delete the $TREE_FILES files on $t"
		ns tree unlink "$d" "$TREE_DIRS" "$TREE_FILES" 1 flat
		V[tdelete.$t]="$TREE_FILES $NS_OUT"
		step "tree: $RM_FILES files in $RM_DIRS directories on $t, $FILL_THREADS threads"
		ns tree create "$r" "$RM_DIRS" "$RM_FILES" "$FILL_THREADS" nested
		V[rbuild.$t]="$RM_FILES $NS_OUT"
		[ "$(find "$r" -type f | wc -l)" = "$RM_FILES" ] ||
			echo "!! count: $r holds $(find "$r" -type f | wc -l) files, want $RM_FILES"
		step "tree: rm -rf of it on $t"
		ns cmd /dev/null rm -rf "$r"
		V[rmrf.$t]=$NS_OUT
		[ ! -e "$r" ] || echo "!! $r still there after rm -rf"
	}
	tree_on plain
	tree_on fs
	header "tree: $TREE_FILES files of 100 bytes in $TREE_DIRS directories; a tree of $RM_FILES in $RM_DIRS"
	row "create $TREE_FILES, one at a time (files/s)" rate tcreate
	row "ls -lR, first run (s)" time ls1
	row "ls -lR, second run (s)" time ls2 "<= 5"
	row "delete $TREE_FILES, one at a time (files/s)" rate tdelete ">= 0.06"
	row "build $RM_FILES, $FILL_THREADS threads (files/s)" rate rbuild
	row "rm -rf of the $RM_FILES (s)" time rmrf "<= 50"
fi
echo
umount_fs "$M"
