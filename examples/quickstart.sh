#!/usr/bin/env bash
# examples/quickstart.sh        install what is missing, build, start a local
#                               3-node cluster (ports 7101-7103 unless taken)
#                               with its data under ./var, over TLS (a CA in
#                               ./var/ca, a credential per node, one for
#                               dynamoctl and the mount), show a put and a
#                               get, and mount it at ./mnt (dynamofs)
# examples/quickstart.sh stop   unmount and stop it again
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
var=$root/var
build=$root/build/release
NODES=${DYNAMO_NODES:-3}
FIRST_PORT=${DYNAMO_PORT:-7101}

mnt=$root/mnt

stop() {
	local f pid
	if grep -q " $mnt fuse" /proc/mounts 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
		echo "unmounted $mnt"
	fi
	for f in "$var"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			for _ in $(seq 100); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
			echo "stopped $(basename "$f" .pid) (pid $pid)"
		fi
		rm -f "$f"
	done
}

port_taken() {
	ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

if [ "${1:-start}" = stop ]; then
	stop
	exit 0
fi

. "$root/tests/deps.sh"
dynamo_install_deps
if [ ! -d "$build" ]; then
	meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" >/dev/null
mkdir -p "$var"
# The cluster's CA (once): every node, and every client, gets a credential
# of its own issued by it (its certificate and its role's keys).
ca=$var/ca
if [ -f "$var/cluster.key" ] && [ ! -d "$ca" ]; then
	echo "var/ holds a cluster of an older quickstart (plain tcp, var/cluster.key):"
	echo "'examples/quickstart.sh stop; rm -rf var' and start again for TLS"
	exit 1
fi
[ -f "$ca/ca.pem" ] || "$build/node/dynamoctl" ca init "$ca" >/dev/null
issue() { # NAME ROLE: $ca/NAME.pem, issued once
	[ -f "$ca/$1.pem" ] ||
		"$build/node/dynamoctl" ca issue "$ca" "$1" --role "$2" \
			--host 127.0.0.1 >/dev/null
}
issue admin admin
issue mount client
export DYNAMO_CRED_FILE=$ca/admin.pem # dynamoctl's

stop >/dev/null # a second start replaces the first
port=$FIRST_PORT
addrs=()
for i in $(seq "$NODES"); do
	while port_taken "$port"; do port=$((port + 1)); done
	name=n$i
	rm -f "$var/$name.ready"
	seed=()
	[ "$i" -gt 1 ] && seed=(--seed "${addrs[0]}")
	issue "$name" node
	"$build/node/dynamod" --name "$name" --listen "tcp://127.0.0.1:$port" \
		--cred "$ca/$name.pem" \
		--data "$var/$name" --ready-file "$var/$name.ready" "${seed[@]}" \
		>>"$var/$name.log" 2>&1 &
	echo $! >"$var/$name.pid"
	addrs+=("tcp://127.0.0.1:$port")
	port=$((port + 1))
done
for i in $(seq "$NODES"); do
	for _ in $(seq 200); do
		[ -s "$var/n$i.ready" ] && break
		kill -0 "$(cat "$var/n$i.pid")" 2>/dev/null ||
			{ echo "n$i failed to start:"; tail "$var/n$i.log"; exit 1; }
		sleep 0.05
	done
	[ -s "$var/n$i.ready" ] || { echo "n$i not ready"; exit 1; }
	echo "n$i serving $(cat "$var/n$i.ready") (log: var/n$i.log)"
done

ctl=("$build/node/dynamoctl" --node "${addrs[0]}")
# Wait until every node owns its share of the ring.
for _ in $(seq 300); do
	ring=$("${ctl[@]}" ring 2>/dev/null || true)
	owners=$(grep -cE ' [1-9][0-9]* partitions$' <<<"$ring" || true)
	[ "$owners" -eq "$NODES" ] && ! grep -q pending <<<"$ring" && break
	sleep 0.1
done
"${ctl[@]}" ring | sed -n "1,$((NODES + 1))p"
echo
# A read-modify-write: the context of the get makes the put replace what
# it read (a blind put would add a sibling next to an older greeting).
echo "\$ ctx=\$(dynamoctl get greeting --json | sed 's/.*\"context\": \"\([^\"]*\)\".*/\\1/')"
ctx=$("${ctl[@]}" get greeting --json | sed 's/.*"context": "\([^"]*\)".*/\1/' || true)
echo "\$ echo 'hello, dynamo' | dynamoctl put greeting --context \"\$ctx\""
echo 'hello, dynamo' | "${ctl[@]}" put greeting --context "$ctx"
echo "\$ dynamoctl get greeting"
"${ctl[@]}" get greeting

# The filesystem: every node's address, so the mount outlives any one.
if [ -x "$build/fs/dynamofs" ] && [ -e /dev/fuse ]; then
	mkdir -p "$mnt"
	all=$(IFS=,; echo "${addrs[*]}")
	env --default-signal=INT "$build/fs/dynamofs" --node "$all" \
		--cred "$ca/mount.pem" "$mnt" -f \
		>>"$var/dynamofs.log" 2>&1 &
	echo $! >"$var/dynamofs.pid"
	for _ in $(seq 200); do
		grep -q " $mnt fuse" /proc/mounts && break
		sleep 0.05
	done
	grep -q " $mnt fuse" /proc/mounts ||
		{ echo "mount failed:"; tail "$var/dynamofs.log"; exit 1; }
	echo
	echo "mounted at $mnt (log: var/dynamofs.log)"
	echo "\$ echo hi > mnt/hello.txt && ls -l mnt"
	echo hi >"$mnt/hello.txt"
	ls -l "$mnt"
fi
echo
echo "TLS:   every node, dynamoctl and the mount talk tls+tcp with"
echo "       credentials of the CA in var/ca (dynamoctl ca issue)"
echo "try:   export DYNAMO_CRED_FILE=$ca/admin.pem"
echo "       $build/node/dynamoctl --node ${addrs[0]} status"
echo "       cp -r ~/notes mnt/; getfattr -d -m user.dynamo mnt/hello.txt"
echo "stop:  examples/quickstart.sh stop"
