#!/usr/bin/env bash
# examples/bench.sh — the benchmark recipe: builds a release build, starts a
# local cluster of NODES nodes (default 3) on free ports in a temporary
# directory, preloads the keys, and runs, client-routed, each for DURATION:
#   floor  the transport floor: echoes of VALUE bytes through the nodes
#          (dynamo-bench --echo: nng, the HMAC check, nothing else);
#   put    puts only, CLIENTS closed-loop clients (default 16);
#   get    gets only, the same;
#   mix    half gets, half puts, an open loop at RATE req/s (default 500);
# then one table: ops/s (and MB/s of values), p50/p99/p99.9 of each, the
# CPU all nodes spent per operation (from /proc), the nodes' peak
# anonymous memory during the run (RssAnon summed over the nodes, sampled
# every 100 ms: LMDB's map is file-backed and not counted), and put and
# get as fractions of the floor
# (a put is three exchanges: client, then two replicas in parallel, so
# its share is put / (floor / 3)).  ONE_NODE=1 adds the put and get runs
# through one node (it forwards each request to a replica).  TLS=1 runs
# the cluster with TLS (a CA, a credential per node and for the bench);
# TLS=both runs everything on a plain cluster, then on a TLS one, and adds
# the TLS/tcp ratio of each run's ops/s to the table.
#   NODES=3 RATE=500 DURATION=20s VALUE=1024 CLIENTS=16 examples/bench.sh \
#       [dynamod flags...]
# KEYS (default 10000) keys are preloaded and used; BLOB=1 runs put and
# get on blobs (dynamo-bench --blob: content-addressed values, the
# mount's chunks) instead of keys.  Big values through one node, the
# memory bound shown:
#   NODES=1 VALUE=1M CLIENTS=64 KEYS=200 BLOB=1 examples/bench.sh --no-fsync
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build/release}
NODES=${NODES:-3} RATE=${RATE:-500} DURATION=${DURATION:-20s}
VALUE=${VALUE:-1024} CLIENTS=${CLIENTS:-16} ONE_NODE=${ONE_NODE:-0}
TLS=${TLS:-0} KEYS=${KEYS:-10000} BLOB=${BLOB:-0}
[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
tmp=$(mktemp -d)
pids=()
sampler=
cleanup() {
	kill "${pids[@]}" $sampler 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# CPU ticks (user + system) of every node so far.
ticks() {
	local p t=0 f
	for p in "${pids[@]}"; do
		read -r -a f < "/proc/$p/stat"
		t=$((t + f[13] + f[14]))
	done
	echo "$t"
}
# anon_kb: RssAnon of every node, summed (kB).
anon_kb() {
	local p t=0 a
	for p in "${pids[@]}"; do
		a=$(awk '/^RssAnon:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		t=$((t + ${a:-0}))
	done
	echo "$t"
}
# run NAME ARGS...: one dynamo-bench run, its JSON, the nodes' CPU and
# their peak anonymous memory.
run() {
	local name=$1 t0
	shift
	echo "== $name: $*" >&2
	t0=$(ticks)
	anon_kb > "$tmp/$name.rss"
	(
		peak=0
		while :; do
			a=$(anon_kb)
			[ "$a" -gt "$peak" ] && peak=$a && echo "$peak" > "$tmp/$name.rss"
			sleep 0.1
		done
	) &
	sampler=$!
	"$@" --duration "$DURATION" --json > "$tmp/$name.json"
	echo $(( $(ticks) - t0 )) > "$tmp/$name.cpu"
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	sampler=
}

# cluster MODE [dynamod flags...]: a fresh cluster in $tmp/MODE, plain
# tcp or (MODE tls) TLS: a CA, a credential per node and one for the
# bench (cred); sets first, nodes, cred.
cluster() {
	local mode=$1 d=$tmp/$1 i seed
	shift
	mkdir -p "$d"
	local ncred=()
	cred=()
	if [ "$mode" = tls ]; then
		"$build/node/dynamoctl" ca init "$d/ca" >/dev/null
		"$build/node/dynamoctl" ca issue "$d/ca" bench --role admin >/dev/null
		cred=(--cred "$d/ca/bench.pem")
		unset DYNAMO_CLUSTER_KEY_FILE
	else
		"$build/node/dynamoctl" keygen "$d/key"
		export DYNAMO_CLUSTER_KEY_FILE=$d/key
	fi
	for i in $(seq "$NODES"); do
		seed=()
		[ "$i" -gt 1 ] && seed=(--seed "$(cat "$d/r1")")
		ncred=()
		if [ "$mode" = tls ]; then
			"$build/node/dynamoctl" ca issue "$d/ca" "n$i" --role node >/dev/null
			ncred=(--cred "$d/ca/n$i.pem")
		fi
		"$build/node/dynamod" --name "n$i" --listen tcp://127.0.0.1:0 --data "$d/d$i" \
			--ready-file "$d/r$i" "${seed[@]}" "${ncred[@]}" "$@" >"$d/log$i" 2>&1 &
		pids+=($!)
		for _ in $(seq 200); do [ -s "$d/r$i" ] && break; sleep 0.05; done
	done
	first=$(cat "$d/r1")
	nodes=()
	for i in $(seq "$NODES"); do nodes+=(--node "$(cat "$d/r$i")"); done
	local ctl=("$build/node/dynamoctl" --node "$first" "${cred[@]}") ring
	for _ in $(seq 300); do
		ring=$("${ctl[@]}" ring 2>/dev/null || true)
		[ "$(grep -cE ' [1-9][0-9]* partitions$' <<<"$ring")" = "$NODES" ] &&
			! grep -q pending <<<"$ring" && break
		sleep 0.1
	done
	"${ctl[@]}" ring | head -n $((NODES + 1))
}
cluster_stop() {
	kill "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	pids=()
}

# runs_on SUFFIX: floor, put, get and mix (and the one-node runs) on the
# cluster up now, named NAME$SUFFIX.
runs=()
runs_on() {
	local s=$1
	local b=("$build/node/dynamo-bench" --node "$first" "${cred[@]}" \
		--clients "$CLIENTS" --value-size "$VALUE" --keys "$KEYS" --quiet)
	[ "$BLOB" = 1 ] && b+=(--blob)
	"${b[@]}" --ops "$KEYS" --preload >/dev/null
	run "floor$s" "$build/node/dynamo-bench" "${nodes[@]}" "${cred[@]}" \
		--clients "$CLIENTS" --value-size "$VALUE" --quiet --echo
	run "put$s" "${b[@]}" --read-ratio 0
	run "get$s" "${b[@]}" --read-ratio 1
	run "mix$s" "${b[@]}" --read-ratio 0.5 --rate "$RATE"
	runs+=("floor$s" "put$s" "get$s" "mix$s")
	if [ "$ONE_NODE" = 1 ]; then
		run "put-1node$s" "${b[@]}" --read-ratio 0 --no-routing
		run "get-1node$s" "${b[@]}" --read-ratio 1 --no-routing
		runs+=("put-1node$s" "get-1node$s")
	fi
}

case "$TLS" in
0) cluster tcp "$@"; runs_on "" ;;
1) cluster tls "$@"; runs_on "" ;;
both)
	cluster tcp "$@"; runs_on ""; cluster_stop
	cluster tls "$@"; runs_on "-tls" ;;
*) echo "TLS=0, 1 or both" >&2; exit 2 ;;
esac

python3 - "$tmp" "$(getconf CLK_TCK)" "${runs[@]}" <<'EOF'
import json, sys
tmp, hz, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = {r: json.load(open(f"{tmp}/{r}.json")) for r in runs}
cpu = {r: int(open(f"{tmp}/{r}.cpu").read()) * 1000 / hz for r in runs}
rss = {r: int(open(f"{tmp}/{r}.rss").read()) / 1024 for r in runs}
def floor_of(r):
    return res["floor" + ("-tls" if r.endswith("-tls") else "")]["ops_per_s"]
print(f"{'run':10} {'op':5} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
      f"{'p99.9 ms':>9} {'errors':>7} {'cpu ms/op':>10} {'MB/s':>7} "
      f"{'rss MiB':>8} {'of floor':>9} {'tls/tcp':>8}")
for r in runs:
    j = res[r]
    ops = j["ops"] or 1
    cpo = cpu[r] / ops
    for op in ("get", "put"):
        o = j[op]
        if o["count"] == 0:
            continue
        name = "echo" if r.startswith("floor") else op
        ratio = ""
        if r.endswith("-tls") and r[:-4] in res:
            plain = res[r[:-4]][op]["ops_per_s"]
            ratio = f"{o['ops_per_s'] / plain:.2f}" if plain else ""
        share = ""
        floor = floor_of(r)
        if not r.startswith("floor") and j["config"]["mode"] == "closed":
            per = floor / 3 if op == "put" else floor
            share = f"{o['ops_per_s'] / per:.2f}"
        l = o["latency_ms"]
        mbs = o["ops_per_s"] * j["config"]["value_size"] / 1e6
        print(f"{r:10} {name:5} {o['ops_per_s']:9.0f} {l['p50']:8.2f} "
              f"{l['p99']:8.2f} {l['p999']:9.2f} {o['errors']:7} "
              f"{cpo:10.3f} {mbs:7.1f} {rss[r]:8.0f} {share:>9} "
              f"{ratio:>8}")
EOF
