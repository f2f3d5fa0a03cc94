#!/usr/bin/env bash
# tests/fs/bench.sh — filesystem throughput (a program, not a test):
#   1. dd of a SIZE_MB file (default 1024) into the mount and back out, and
#      the same on the disk the node's data lives on, page cache dropped
#      before each read (needs root for that; otherwise it says so);
#   2. create, stat and unlink of NFILES small files (default 10,000) in one
#      directory, then in 100 directories of 100, ops/s.
# Starts its own node (fsync on, the default, unless NODE_OPTS says
# otherwise) and mount, like the tests.  Usage:
#   DYNAMOD=... DYNAMOFS=... tests/fs/bench.sh
# tests/fs/bench-io.sh: fio random I/O, dd and flush costs, 3 nodes vs disk.
. "$(dirname "$0")/lib.sh"

SIZE_MB=${SIZE_MB:-1024}
NFILES=${NFILES:-10000}
read -r -a node_opts <<<"${NODE_OPTS:-}"
start_node n1 "${node_opts[@]}"
mount_fs "$T/m"
M=$T/m

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

# ddtime SRC DST: seconds for dd SRC -> DST with 1 MiB blocks.
ddtime() {
	local t0 t1
	t0=$(now)
	dd if="$1" of="$2" bs=1M conv=fsync status=none 2>/dev/null ||
		dd if="$1" of="$2" bs=1M status=none
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

echo "== dd, $SIZE_MB MiB (MB/s)"
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

# phase NAME CMD...: run CMD, print NFILES / seconds.
phase() {
	local name=$1 t0 t1
	shift
	t0=$(now)
	"$@"
	t1=$(now)
	printf '%-8s %6s ops/s\n' "$name" "$(rate "$NFILES" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
}
mk_flat() { python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(b"x" * 100)
' "$1" "$NFILES"; }
st_flat() { python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.stat(os.path.join(d, "f%05d" % i))
' "$1" "$NFILES"; }
rm_flat() { python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.unlink(os.path.join(d, "f%05d" % i))
' "$1" "$NFILES"; }
mk_tree() { python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    s = os.path.join(d, "d%03d" % (i % 100))
    if i < 100:
        os.mkdir(s)
    with open(os.path.join(s, "f%05d" % i), "wb") as f:
        f.write(b"x" * 100)
' "$1" "$NFILES"; }
st_tree() { python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.stat(os.path.join(d, "d%03d" % (i % 100), "f%05d" % i))
' "$1" "$NFILES"; }
rm_tree() { python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.unlink(os.path.join(d, "d%03d" % (i % 100), "f%05d" % i))
' "$1" "$NFILES"; }

for where in "$T/local" "$M/flat"; do
	mkdir -p "$where"
	echo "== $NFILES files of 100 bytes in one directory: $where"
	phase create mk_flat "$where"
	phase stat st_flat "$where"
	phase unlink rm_flat "$where"
done
for where in "$T/localtree" "$M/tree"; do
	mkdir -p "$where"
	echo "== $NFILES files of 100 bytes in 100 directories: $where"
	phase create mk_tree "$where"
	phase stat st_tree "$where"
	phase unlink rm_tree "$where"
done
umount_fs "$M"
