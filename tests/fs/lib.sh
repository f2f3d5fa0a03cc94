# Sourced by the filesystem tests (and examples/conflict-demo.sh): starts
# dynamod on 127.0.0.1 port 0 in a temporary directory, mounts dynamofs in
# the foreground, waits with deadlines (never a bare sleep for readiness),
# and always cleans up on exit: unmount, kill what it started by PID,
# remove the temporary directory.  On failure it prints the logs' tails.
#
# Needs: DYNAMOD, DYNAMOFS (paths to the binaries; DYNAMOCTL optional).
# A test exits 77 (meson: SKIP) only when /dev/fuse is missing.
#
# FS_TLS=1 runs the cluster with TLS (needs DYNAMOCTL): a CA in $T/ca
# (`dynamoctl ca init`; its master key is the cluster key), a node
# credential for every node started, a client credential for the mounts
# and an admin one for dynamoctl.  NODE_AUTH (node_cred NAME), MOUNT_AUTH
# and CTL_AUTH hold the options that give each its keys: --cluster-key
# KEY, or with FS_TLS --cred FILE instead.

set -euo pipefail

: "${DYNAMOD:?set DYNAMOD to the dynamod binary}"
: "${DYNAMOFS:?set DYNAMOFS to the dynamofs binary}"

if [ ! -e /dev/fuse ]; then
	echo "SKIP: /dev/fuse is missing, cannot mount FUSE filesystems"
	exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/dynamofs-test.XXXXXX")
KEY=$T/cluster.key
FS_PIDS=()
FS_MOUNTS=()
NODE_PIDS=()
NODE_ADDR=
STEP="setup"

FS_TLS=${FS_TLS:-}
CTL_AUTH=(--cluster-key "$KEY")
MOUNT_AUTH=(--cluster-key "$KEY")
if [ -n "$FS_TLS" ]; then
	: "${DYNAMOCTL:?set DYNAMOCTL to the dynamoctl binary (FS_TLS)}"
	"$DYNAMOCTL" ca init "$T/ca" > /dev/null
	KEY=$T/ca/cluster.key
	"$DYNAMOCTL" ca issue "$T/ca" mount --role client > /dev/null
	"$DYNAMOCTL" ca issue "$T/ca" admin --role admin > /dev/null
	MOUNT_AUTH=(--cred "$T/ca/mount.pem")
	CTL_AUTH=(--cred "$T/ca/admin.pem")
else
	# Cluster key: 32 random bytes as 64 hex digits, mode 0600.
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$KEY" &&
		echo >> "$KEY")
fi

# node_cred NAME: NAME's options for its keys into the array NODE_AUTH:
# with FS_TLS its --cred (the credential issued on first use), else
# --cluster-key.
node_cred() {
	NODE_AUTH=(--cluster-key "$KEY")
	[ -n "$FS_TLS" ] || return 0
	[ -e "$T/ca/$1.pem" ] ||
		"$DYNAMOCTL" ca issue "$T/ca" "$1" --role node \
			--host 127.0.0.1 > /dev/null
	NODE_AUTH=(--cred "$T/ca/$1.pem")
}

log() { printf '== %s\n' "$*" >&2; }
step() { STEP=$*; log "$*"; }
fail() { echo "FAIL ($STEP): $*" >&2; exit 1; }

# running PID: PID is a child of this shell that has not exited (a
# zombie has; a PID already waited for may be someone else's by now).
running() {
	local st ppid
	read -r st ppid _ < <(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) &&
		[ "$ppid" = "$$" ] && [ "$st" != Z ]
}

fs_cleanup() {
	local rc=$? m p
	set +e
	for m in "${FS_MOUNTS[@]}"; do
		if grep -q " $m fuse" /proc/mounts; then
			fusermount3 -u "$m" 2>/dev/null ||
				fusermount3 -uz "$m" 2>/dev/null
		fi
	done
	for p in "${FS_PIDS[@]}" "${NODE_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	# A process that does not end within 10 s of SIGTERM is a bug: say
	# so, fail, and kill -9 it rather than hang here.  (Our children
	# stay zombies until waited for, so their PIDs are still ours.)
	local deadline=$((SECONDS + 10)) left
	while :; do
		left=()
		for p in "${FS_PIDS[@]}" "${NODE_PIDS[@]}"; do
			running "$p" && left+=("$p")
		done
		[ "${#left[@]}" -gt 0 ] && [ "$SECONDS" -lt "$deadline" ] ||
			break
		sleep 0.1
	done
	for p in "${left[@]}"; do
		echo "---- PID $p ($(tr '\0' ' ' < "/proc/$p/cmdline" |
			cut -c1-60)) still running 10 s after SIGTERM: kill -9" >&2
		kill -9 "$p" 2>/dev/null
		[ "$rc" -ne 0 ] || rc=1
	done
	for p in "${FS_PIDS[@]}" "${NODE_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		echo "---- failed in step: $STEP (exit $rc)" >&2
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "---- tail of $f" >&2
			tail -n 30 "$f" >&2
		done
	fi
	if [ -n "${HARNESS_KEEP:-}" ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap fs_cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS COMMAND...: poll COMMAND every 20 ms until it
# succeeds; fail after SECONDS.
wait_until() {
	local limit=$1
	shift
	local deadline=$((SECONDS + limit))
	while ! "$@" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for: $*"
		sleep 0.02
	done
}

# start_node NAME [dynamod options...]: sets NODE_ADDR.
start_node() {
	local name=$1
	shift
	mkdir -p "$T/$name"
	rm -f "$T/$name.ready"
	node_cred "$name"
	"$DYNAMOD" --name "$name" --listen tcp://127.0.0.1:0 \
		--data "$T/$name/data" "${NODE_AUTH[@]}" \
		--ready-file "$T/$name.ready" --log-level warn "$@" \
		> "$T/$name.log" 2>&1 &
	NODE_PIDS+=($!)
	wait_until 20 test -s "$T/$name.ready"
	NODE_ADDR=$(cat "$T/$name.ready")
}

# restart_node NAME ADDR [dynamod options...]: start node NAME again, on
# its data directory and its old address ADDR (after it was stopped or
# killed); its log is appended to.  Sets NODE_ADDR.
restart_node() {
	local name=$1 addr=$2
	shift 2
	rm -f "$T/$name.ready"
	node_cred "$name"
	"$DYNAMOD" --name "$name" --listen "$addr" \
		--data "$T/$name/data" "${NODE_AUTH[@]}" \
		--ready-file "$T/$name.ready" --log-level warn "$@" \
		>> "$T/$name.log" 2>&1 &
	NODE_PIDS+=($!)
	wait_until 20 test -s "$T/$name.ready"
	NODE_ADDR=$(cat "$T/$name.ready")
}

# start_three_nodes [dynamod options...]: n1 founds a cluster, n2 and n3
# join it; returns once the ring gives each of them partitions with no
# transfer pending.  Sets A1, A2, A3 (their addresses).  Needs DYNAMOCTL.
start_three_nodes() {
	: "${DYNAMOCTL:?set DYNAMOCTL to the dynamoctl binary}"
	start_node n1 --gossip-interval 250 "$@"
	A1=$NODE_ADDR
	start_node n2 --gossip-interval 250 --seed "$A1" "$@"
	A2=$NODE_ADDR
	start_node n3 --gossip-interval 250 --seed "$A1" "$@"
	A3=$NODE_ADDR
	wait_until 30 three_nodes_settled
}
three_nodes_settled() {
	local ring
	ring=$("$DYNAMOCTL" --node "$A1" "${CTL_AUTH[@]}" ring) || return 1
	[ "$(grep -cE ' [1-9][0-9]* partitions$' <<<"$ring")" = 3 ] &&
		! grep -q pending <<<"$ring"
}

is_mounted() { grep -q " $1 fuse.dynamofs " /proc/mounts; }

# mount_fs DIR [-o OPTIONS]: mount in the foreground, in the background.
mount_fs() {
	local dir=$1
	shift
	mkdir -p "$dir"
	# A background job of a script starts with SIGINT ignored, and libfuse
	# leaves an ignored signal alone: give it back its default.
	env --default-signal=INT "$DYNAMOFS" --node "$NODE_ADDR" \
		"${MOUNT_AUTH[@]}" "$dir" -f "$@" \
		>> "$T/mount-$(basename "$dir").log" 2>&1 &
	FS_PIDS+=($!)
	FS_MOUNTS+=("$dir")
	wait_until 20 is_mounted "$dir"
}

# umount_fs DIR: unmount and wait for the process to end.  The mount is
# dropped from FS_MOUNTS/FS_PIDS, so DIR can be mounted again (mount_fs
# appends to its log) and the cleanup never signals a PID already reaped.
umount_fs() {
	local dir=$1 i pid
	fusermount3 -u "$dir"
	for i in "${!FS_MOUNTS[@]}"; do
		if [ "${FS_MOUNTS[$i]}" = "$dir" ] && [ -n "${FS_PIDS[$i]:-}" ]; then
			pid=${FS_PIDS[$i]}
			unset 'FS_MOUNTS[i]' 'FS_PIDS[i]'
			wait "$pid" || fail "dynamofs on $dir exited $?"
		fi
	done
}

# Options for tests that compare two mounts: no caching.
NOCACHE="-oattr_timeout=0,entry_timeout=0,negative_timeout=0"

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# names DIR: the sorted entries of DIR on one line.
names() { ls -A "$1" | sort | tr '\n' ' ' | sed 's/ $//'; }
