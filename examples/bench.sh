#!/usr/bin/env bash
# examples/bench.sh — the benchmark recipe: builds a release build, starts a
# local cluster of NODES nodes (default 3) on free ports in a temporary
# directory, preloads the keys, runs dynamo-bench at a fixed rate and at
# saturation, client-routed and through one node, and stops everything.
#   NODES=3 RATE=500 DURATION=20s VALUE=1024 examples/bench.sh [dynamod flags...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/release
NODES=${NODES:-3} RATE=${RATE:-500} DURATION=${DURATION:-20s} VALUE=${VALUE:-1024}
[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$build/node/dynamoctl" keygen "$tmp/key"
export DYNAMO_CLUSTER_KEY_FILE=$tmp/key
for i in $(seq "$NODES"); do
	seed=()
	[ "$i" -gt 1 ] && seed=(--seed "$(cat "$tmp/r1")")
	"$build/node/dynamod" --name "n$i" --listen tcp://127.0.0.1:0 --data "$tmp/d$i" \
		--ready-file "$tmp/r$i" "${seed[@]}" "$@" >"$tmp/log$i" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do [ -s "$tmp/r$i" ] && break; sleep 0.05; done
done
first=$(cat "$tmp/r1")
ctl=("$build/node/dynamoctl" --node "$first")
for _ in $(seq 300); do
	ring=$("${ctl[@]}" ring 2>/dev/null || true)
	[ "$(grep -cE ' [1-9][0-9]* partitions$' <<<"$ring")" = "$NODES" ] &&
		! grep -q pending <<<"$ring" && break
	sleep 0.1
done
"${ctl[@]}" ring | head -n $((NODES + 1))
b=("$build/node/dynamo-bench" --node "$first" --clients 16 --value-size "$VALUE" --keys 10000 --read-ratio 0.5 --quiet)
"${b[@]}" --ops 10000 --preload >/dev/null
for mode in routed one-node; do
	extra=()
	[ $mode = one-node ] && extra=(--no-routing)
	echo "== $mode, $RATE req/s for $DURATION"
	"${b[@]}" "${extra[@]}" --rate "$RATE" --duration "$DURATION"
	echo "== $mode, saturation for $DURATION"
	"${b[@]}" "${extra[@]}" --duration "$DURATION"
done
