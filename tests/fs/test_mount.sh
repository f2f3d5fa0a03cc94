#!/usr/bin/env bash
# The mount's life: the key from $DYNAMO_CLUSTER_KEY_FILE, calls failing
# with ETIMEDOUT/EIO within the -o timeout while the node is down and
# working again when it is back, unmount by fusermount3 -u, SIGTERM and
# SIGINT, the background (daemon) mode, and close-to-open between two
# mounts with attribute caches.
. "$(dirname "$0")/lib.sh"

start_node n1
ADDR=$NODE_ADDR
M=$T/m

step "key from the environment"
mkdir -p "$M"
DYNAMO_CLUSTER_KEY_FILE=$KEY "$DYNAMOFS" --node "$ADDR" "$M" -f $NOCACHE \
	-otimeout=300 > "$T/mount-m.log" 2>&1 &
FS_PIDS+=($!)
FS_MOUNTS+=("$M")
wait_until 20 is_mounted "$M"
echo hello > "$M/x"
expect_eq "read" "$(cat "$M/x")" "hello"

step "inode numbers: kept by mv, chmod, a rewrite and a remount; new for a copy"
mkdir -p "$M/ia/sub"
echo one > "$M/ia/f"
fi=$(stat -c %i "$M/ia/f")
di=$(stat -c %i "$M/ia")
[ "$fi" != "$di" ] || fail "a file and a directory share inode $fi"
mv "$M/ia/f" "$M/ia/sub/g"
expect_eq "file inode after mv" "$(stat -c %i "$M/ia/sub/g")" "$fi"
chmod 600 "$M/ia/sub/g"
echo two >> "$M/ia/sub/g"
expect_eq "file inode after chmod, append" "$(stat -c %i "$M/ia/sub/g")" "$fi"
mv "$M/ia" "$M/ib"
expect_eq "dir inode after mv" "$(stat -c %i "$M/ib")" "$di"
expect_eq "file inode after its dir's mv" "$(stat -c %i "$M/ib/sub/g")" "$fi"
expect_eq "ls -i (readdir) and stat agree" \
	"$(ls -i "$M/ib/sub" | awk '{print $1}')" "$fi"
cp "$M/ib/sub/g" "$M/ib/sub/copy"
[ "$(stat -c %i "$M/ib/sub/copy")" != "$fi" ] || fail "a copy has the inode of its source"
umount_fs "$M"
mount_fs "$M" $NOCACHE -otimeout=300
expect_eq "file inode after a remount" "$(stat -c %i "$M/ib/sub/g")" "$fi"
rm -r "$M/ib"

step "close-to-open across two mounts with the default attribute caches"
# c1 caches the short file's size (attr_timeout 1 s); c2 writes a longer
# one and closes; c1's next open must read all of it, not stop at the
# size it cached.
mount_fs "$T/c1" -otimeout=2000
mount_fs "$T/c2" -otimeout=2000
for i in 1 2 3; do
	printf short > "$T/c1/cto"
	stat -c %s "$T/c1/cto" > /dev/null
	head -c $((100000 + i)) /dev/zero > "$T/c2/cto"
	expect_eq "bytes c1 reads after c2 closed" \
		"$(cat "$T/c1/cto" | wc -c)" $((100000 + i))
done
umount_fs "$T/c1"
umount_fs "$T/c2"

step "a root mount serves every user; the kernel checks the stored modes"
if [ "$(id -u)" = 0 ] && command -v runuser > /dev/null; then
	chmod o+x "$T" # only to reach the mount point
	echo public > "$M/pub"
	chmod 644 "$M/pub"
	expect_eq "nobody reads a 0644 file" \
		"$(runuser -u nobody -- cat "$M/pub")" "public"
	runuser -u nobody -- sh -c "echo x > '$M/pub'" 2> /dev/null &&
		fail "nobody wrote a root-owned 0644 file"
	runuser -u nobody -- touch "$M/new" 2> /dev/null &&
		fail "nobody created a file in a root-owned 0755 directory"
	expect_eq "unchanged" "$(cat "$M/pub")" "public"
	# POSIX: moving a file between two writable directories needs no
	# right on the file itself (no sticky bit here).
	mkdir -m 0777 "$M/wa" "$M/wb"
	mv "$M/pub" "$M/wa/pub"
	runuser -u nobody -- mv "$M/wa/pub" "$M/wb/pub" ||
		fail "nobody could not move a root-owned 0644 file between 0777 directories"
	expect_eq "moved" "$(cat "$M/wb/pub")" "public"
	# The sticky bit: only the file's owner (or the directory's) may
	# move or remove it.
	chmod 1777 "$M/wb"
	runuser -u nobody -- mv "$M/wb/pub" "$M/wa/pub" 2> /dev/null &&
		fail "nobody moved root's file out of a sticky directory"
	runuser -u nobody -- rm -f "$M/wb/pub" 2> /dev/null || true
	expect_eq "kept in the sticky directory" "$(cat "$M/wb/pub")" "public"
	runuser -u nobody -- sh -c "echo mine > '$M/wb/own'"
	runuser -u nobody -- mv "$M/wb/own" "$M/wa/own" ||
		fail "nobody could not move its own file out of a sticky directory"
	rm -r "$M/wa" "$M/wb"
	# Device nodes (root only): their type and rdev are kept, through a
	# chmod too.  (Opening one is the kernel's business, refused on a
	# nodev mount, libfuse's default.)
	mknod "$M/null" c 1 3
	mknod "$M/blk" b 7 200
	chmod 600 "$M/null"
	expect_eq "char device" "$(stat -c '%F %t:%T %a' "$M/null")" "character special file 1:3 600"
	expect_eq "block device" "$(stat -c '%F %t:%T' "$M/blk")" "block special file 7:c8"
	rm "$M/null" "$M/blk"
else
	log "skipped: needs root and runuser"
fi

step "node down: calls fail after the timeout, never hang"
kill "${NODE_PIDS[0]}"
wait "${NODE_PIDS[0]}" || true
t0=$SECONDS
err=$(timeout 20 cat "$M/x" 2>&1) && fail "read with the node down worked"
[ $((SECONDS - t0)) -lt 10 ] || fail "took $((SECONDS - t0)) s"
grep -Eq 'timed out|Input/output error' <<<"$err" || fail "error: $err"
err=$(timeout 20 ls "$M" 2>&1) && fail "ls with the node down worked"
err=$(timeout 20 touch "$M/y" 2>&1) && fail "create with the node down worked"

step "node back on the same address: the mount works again"
restart() {
	"$DYNAMOD" --name n1 --listen "$ADDR" --data "$T/n1/data" \
		--cluster-key "$KEY" --ready-file "$T/n1.ready2" \
		--log-level warn >> "$T/n1.log" 2>&1 &
	NODE_PIDS+=($!)
}
rm -f "$T/n1.ready2"
restart
wait_until 20 test -s "$T/n1.ready2"
# Poll the read itself: $(cat ...) on the wait_until line would be read
# once, before the first try.
reads_hello() { [ "$(cat "$M/x")" = hello ]; }
wait_until 20 reads_hello
echo again > "$M/y"
expect_eq "write after" "$(cat "$M/y")" "again"

step "SIGTERM unmounts"
pid=${FS_PIDS[0]}
kill -TERM "$pid"
wait "$pid" || fail "dynamofs exited $? on SIGTERM"
is_mounted "$M" && fail "still mounted after SIGTERM"

step "SIGINT unmounts"
mount_fs "$M"
pid=${FS_PIDS[-1]}
expect_eq "data survived" "$(cat "$M/y")" "again"
kill -INT "$pid"
wait "$pid" || fail "dynamofs exited $? on SIGINT"
is_mounted "$M" && fail "still mounted after SIGINT"

step "background mode, fusermount3 -u"
"$DYNAMOFS" --node "$ADDR" --cluster-key "$KEY" "$M" ||
	fail "dynamofs failed to start in the background"
FS_MOUNTS+=("$M")
wait_until 20 is_mounted "$M"
expect_eq "read" "$(cat "$M/x")" "hello"
fusermount3 -u "$M"
is_mounted "$M" && fail "still mounted"

step "bad arguments fail clearly"
out=$("$DYNAMOFS" --cluster-key "$KEY" "$M" 2>&1) && fail "no --node accepted"
grep -q -- '--node' <<<"$out" || fail "message: $out"
out=$("$DYNAMOFS" --node "$ADDR" --cluster-key "$T/nope" "$M" 2>&1) &&
	fail "missing key accepted"
grep -q 'cluster key' <<<"$out" || fail "message: $out"
out=$("$DYNAMOFS" --node "$ADDR" --cluster-key "$KEY" "$M" -otimeout=x 2>&1) &&
	fail "bad timeout accepted"
echo "ok"
