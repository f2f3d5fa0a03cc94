#!/usr/bin/env bash
# Randomized model test (tests/fs/model.py) on a 3-node cluster:
#   A. one mount, 4 KiB chunks and 1 KiB inline: MODEL_OPS random
#      operations on a few files, side by side with a model in memory,
#      every step checked; at the end everything again on a fresh mount;
#   B. the same on a mount with the default chunk size, one dynamod killed
#      (-9) a third of the way (mostly the coordinator of a file's last
#      writes) and restarted (same data, same address) two thirds of the
#      way; then a fresh mount, and another node killed: all that was
#      written must still read back, and nothing deleted may come back;
#   C. two mounts (no attribute or entry caches) write one file from one
#      state (sometimes with an fsync in the middle): name.v1 and name.v2
#      must be exactly the two writers' last contents; rm name.v2 (mostly)
#      leaves v1's content in name.
# MODEL_SEED (default a fixed one; "random" draws one) and MODEL_OPS
# (phase A; B does half) replay a run: the seed is printed first.
# MODEL_PHASES (default ABC) runs some phases only; MODEL_SKIP and
# MODEL_CORRUPT: see model.py; MODEL_NODE_OPTS adds dynamod options.
. "$(dirname "$0")/lib.sh"
: "${DYNAMOCTL:?set DYNAMOCTL to the dynamoctl binary}"
MODEL=$(dirname "$0")/model.py

SEED=${MODEL_SEED:-20240611}
[ "$SEED" != random ] || SEED=$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')
OPS=${MODEL_OPS:-2000}
PHASES=${MODEL_PHASES:-ABC}
# Known bugs, left out by default (MODEL_SKIP= (empty) runs everything):
# orphan: a write through a file unlinked (or renamed over) while open
#   fails with ESTALE, since the kernel asks for its security.capability
#   xattr first and libfuse's path-based API has no path for an unlinked
#   file.
# (fsync_mid, an fsync between a writer's changes in phase C, ran into the
# lost-sibling bug that dotted contexts fixed: it runs again by default.)
export MODEL_SKIP=${MODEL_SKIP-orphan}
echo "model test: MODEL_SEED=$SEED MODEL_OPS=$OPS MODEL_PHASES=$PHASES"

step "3 nodes"
read -r -a extra <<<"${MODEL_NODE_OPTS:-}"
NODE_OPTS=(--gossip-interval 250 "${extra[@]}")
start_node n1 "${NODE_OPTS[@]}"
A1=$NODE_ADDR
start_node n2 "${NODE_OPTS[@]}" --seed "$A1"
A2=$NODE_ADDR
start_node n3 "${NODE_OPTS[@]}" --seed "$A1"
A3=$NODE_ADDR
ADDRS=("$A1" "$A2" "$A3")
NAMES=(n1 n2 n3)
# Each node's options when it starts again, and its running PID.
declare -A NODE_ARGS=([n1]="" [n2]="--seed $A1" [n3]="--seed $A1")
declare -A PID_OF=([n1]=${NODE_PIDS[0]} [n2]=${NODE_PIDS[1]} [n3]=${NODE_PIDS[2]})

# settled: every node's ring has 3 members each owning partitions and no
# transfer pending.
settled() {
	local a f=$T/ring.json
	for a in "$A1" "$A2" "$A3"; do
		"$DYNAMOCTL" --node "$a" --cluster-key "$KEY" ring --json \
			> "$f" || return 1
		python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
m = r["members"]
sys.exit(0 if len(m) == 3 and all(x["partitions"] > 0 for x in m)
         and not r["transfer_pending"] else 1)' "$f" || return 1
	done
}
wait_until 60 settled
NODE_ADDR="$A1,$A2,$A3"

# model ARGS...: run model.py as a coprocess and serve its requests (see
# model.py: kill K, restart K, remount, dump PATH) until it exits; fail
# if it fails.
# The mount to remount is $SERVE_MOUNT with options SERVE_OPTS.
model() {
	local req in out pid k name t0=$SECONDS
	coproc MODELPROC { exec python3 "$MODEL" "$@" --seed "$SEED" --ctl; }
	pid=$MODELPROC_PID
	exec {in}<&"${MODELPROC[0]}" {out}>&"${MODELPROC[1]}"
	while IFS= read -r req <&"$in"; do
		case $req in
		"kill "[012])
			k=${req#kill }
			name=${NAMES[$k]}
			log "kill -9 $name (PID ${PID_OF[$name]})"
			kill -9 "${PID_OF[$name]}"
			wait "${PID_OF[$name]}" 2>/dev/null || true
			;;
		"restart "[012])
			k=${req#restart }
			name=${NAMES[$k]}
			# shellcheck disable=SC2086 # NODE_ARGS are words
			restart_node "$name" "${ADDRS[$k]}" "${NODE_OPTS[@]}" \
				${NODE_ARGS[$name]}
			PID_OF[$name]=${NODE_PIDS[-1]}
			wait_until 60 settled
			;;
		"dump /"*)
			# A failure's evidence: the key of a file as the
			# cluster has it, and each node's own replica.
			local key=F${req#dump } a
			log "get --json $key"
			"$DYNAMOCTL" --node "$A1" --node "$A2" --node "$A3" \
				--cluster-key "$KEY" get "$key" --json >&2 || true
			for a in "${ADDRS[@]}"; do
				log "get --json --local $key on $a"
				"$DYNAMOCTL" --node "$a" --cluster-key "$KEY" \
					get "$key" --json --local >&2 || true
			done
			;;
		remount)
			umount_fs "$SERVE_MOUNT"
			mount_fs "$SERVE_MOUNT" "${SERVE_OPTS[@]}"
			;;
		*) fail "model.py asked for '$req'" ;;
		esac
		echo ok >&"$out"
	done
	exec {in}<&- {out}>&-
	wait "$pid" || fail "model.py $1 failed (exit $?), MODEL_SEED=$SEED"
	log "model.py $1 took $((SECONDS - t0)) s"
}

phase() { [[ $PHASES == *$1* ]]; }

if phase A; then
step "phase A: one mount, 4 KiB chunks, $OPS operations"
SERVE_MOUNT=$T/ma
SERVE_OPTS=(-ochunk_size=4K,inline_max=1K -otimeout=2000)
mount_fs "$SERVE_MOUNT" "${SERVE_OPTS[@]}"
model ops --phase A --dir "$T/ma/a" --chunk 4096 --inline 1024 \
	--ops "$OPS" --remount
umount_fs "$SERVE_MOUNT"
fi

if phase B; then
step "phase B: default chunks, a node killed and restarted"
SERVE_MOUNT=$T/mb
SERVE_OPTS=(-otimeout=2000)
mount_fs "$SERVE_MOUNT" "${SERVE_OPTS[@]}"
model ops --phase B --dir "$T/mb/b" --chunk $((128 << 10)) --inline $((64 << 10)) \
	--ops $((OPS / 2)) --kill-at 0.33 --restart-at 0.66 --remount --final-kill \
	--nodes "$A1,$A2,$A3"
umount_fs "$SERVE_MOUNT"
fi

if phase C; then
step "phase C: two mounts, siblings"
mount_fs "$T/c1" $NOCACHE -ochunk_size=4K,inline_max=1K -otimeout=2000
mount_fs "$T/c2" $NOCACHE -ochunk_size=4K,inline_max=1K -otimeout=2000
mkdir "$T/c1/c"
model siblings --a "$T/c1/c" --b "$T/c2/c" --chunk 4096 --inline 1024 \
	--rounds 12
umount_fs "$T/c1"
umount_fs "$T/c2"
fi
echo PASS
