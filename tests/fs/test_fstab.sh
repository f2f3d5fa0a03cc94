#!/usr/bin/env bash
# The mount from an fstab line: `mount -T FSTAB MOUNTPOINT` (mount(8) ->
# mount.fuse3 -> `dynamofs SOURCE MOUNTPOINT -o OPTIONS`) on a 3-node
# cluster, with the node list in the device field and in -o nodes=/node=,
# the key in -o cluster_key=, and mount's own options (_netdev, nofail,
# x-systemd.*) in the line; then `umount`, `mount -t fuse.dynamofs`, and
# the old form (type fuse, device dynamofs#NODES).
#
# mount(8) gives its helpers no PATH (mount.fuse3's /bin/sh then searches
# its built-in one, /usr/local/sbin first), so the test runs in a private
# mount namespace where the build's dynamofs is bind-mounted over
# /usr/local/sbin: nothing on the host changes.  Both need root, so
# without it the test skips (77), as it does without /dev/fuse.
if [ -z "${DYNAMOFS_TEST_NS:-}" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: mounting from an fstab line needs root"
		exit 77
	fi
	export DYNAMOFS_TEST_NS=1
	exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

# daemons DIR: PIDs of the dynamofs processes serving DIR (started by
# mount, so not children of this shell).
daemons() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = dynamofs ] || continue
		tr '\0' '\n' < "$p/cmdline" 2>/dev/null | grep -qxF -- "$1" &&
			echo "${p#/proc/}"
	done
}
no_daemon() { [ -z "$(daemons "$1")" ]; }

# On any exit: unmount (lib.sh), and end a daemon that is still there.
fstab_cleanup() {
	local rc=$? m p
	set +e
	for m in "${FS_MOUNTS[@]}"; do
		is_mounted "$m" && umount "$m"
		for p in $(daemons "$m"); do
			echo "---- dynamofs $p still serving $m: SIGTERM" >&2
			kill "$p"
		done
	done
	(exit "$rc")
	fs_cleanup
}
trap fstab_cleanup EXIT

step "3 nodes"
start_three_nodes

step "dynamofs where mount.fuse3 looks for it"
mkdir "$T/sbin"
ln -s "$DYNAMOFS" "$T/sbin/dynamofs"
mount --bind "$T/sbin" /usr/local/sbin

step "mount -T FSTAB: nodes in the device field and in -o nodes="
M=$T/m
mkdir -p "$M"
FS_MOUNTS+=("$M")
cat > "$T/fstab" <<EOF
# a temporary fstab
$A1,$A2  $M  fuse.dynamofs  cluster_key=$KEY,nodes=$A3,$A1,_netdev,nofail,noatime,x-systemd.automount,timeout=2000  0  0
EOF
mount -T "$T/fstab" "$M" > "$T/mount-fstab.log" 2>&1 ||
	fail "mount -T: $(cat "$T/mount-fstab.log")"
wait_until 20 is_mounted "$M"
[ -n "$(daemons "$M")" ] || fail "no dynamofs process serves $M"
echo hello > "$M/f"
mkdir "$M/d"
head -c 300000 /dev/urandom > "$T/big"
cp "$T/big" "$M/d/big"
expect_eq "read" "$(cat "$M/f")" "hello"
cmp "$T/big" "$M/d/big" || fail "big file differs"

step "umount"
umount "$M" || fail "umount $M"
is_mounted "$M" && fail "still mounted after umount"
wait_until 10 no_daemon "$M"

step "mount -t fuse.dynamofs, a label as the device, -o node= repeated"
mount -t fuse.dynamofs dynamofs "$M" \
	-o "node=$A3,node=$A2,cluster_key=$KEY,_netdev" \
	> "$T/mount-t.log" 2>&1 || fail "mount -t: $(cat "$T/mount-t.log")"
wait_until 20 is_mounted "$M"
expect_eq "read after remount" "$(cat "$M/f")" "hello"
cmp "$T/big" "$M/d/big" || fail "big file differs after remount"
umount "$M" || fail "umount $M"
wait_until 10 no_daemon "$M"

step "the old fstab form: type fuse, device dynamofs#NODES"
echo "dynamofs#$A2,$A3 $M fuse cluster_key=$KEY,defaults 0 0" > "$T/fstab.old"
mount -T "$T/fstab.old" "$M" > "$T/mount-old.log" 2>&1 ||
	fail "mount -T (old form): $(cat "$T/mount-old.log")"
wait_until 20 is_mounted "$M"
expect_eq "read, old form" "$(cat "$M/f")" "hello"
umount "$M" || fail "umount $M"
wait_until 10 no_daemon "$M"

step "mount refuses a device that is no node list, saying why"
out=$(mount -t fuse.dynamofs nonsense "$M" -o "cluster_key=$KEY" 2>&1) &&
	fail "mounted without nodes"
grep -q "not a node list" <<<"$out" || fail "message: $out"
out=$(mount -t fuse.dynamofs "$A1" "$M" -o "cluster_key=$T/nope" 2>&1) &&
	fail "mounted without a key"
grep -q "cluster key" <<<"$out" || fail "message: $out"
is_mounted "$M" && fail "mounted after a refusal"
echo "ok"
