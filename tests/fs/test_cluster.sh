#!/usr/bin/env bash
# The mount on a 3-node cluster: a node is killed (-9) while the mount is in
# use, and the mount keeps working — reads of what was written before,
# new files, listings, an editor-style save — through the other two
# (sloppy quorum, hinted handoff).
. "$(dirname "$0")/lib.sh"

step "3 nodes"
start_three_nodes

step "mount all three"
NODE_ADDR="$A1,$A2,$A3"
M=$T/m
mount_fs "$M" $NOCACHE -otimeout=2000
mkdir -p "$M/d"
for i in $(seq 50); do echo "before $i" > "$M/d/f$i"; done
head -c 3000000 /dev/urandom > "$T/big"
cp "$T/big" "$M/d/big"
nodes=$(getfattr --only-values -n user.dynamo.nodes "$M/d/f1")
grep -q , <<<"$nodes" || fail "user.dynamo.nodes: $nodes"

step "kill -9 the first node while the mount is in use"
kill -9 "${NODE_PIDS[0]}"
wait "${NODE_PIDS[0]}" 2>/dev/null || true
for i in $(seq 50); do
	expect_eq "f$i" "$(cat "$M/d/f$i")" "before $i"
done
cmp "$T/big" "$M/d/big" || fail "big file differs"
for i in $(seq 51 80); do echo "after $i" > "$M/d/f$i"; done
expect_eq "listing" "$(ls "$M/d" | wc -l)" "81"
printf 'saved\n' > "$M/d/.f1.swp"
sync "$M/d/.f1.swp"
mv "$M/d/.f1.swp" "$M/d/f1"
expect_eq "editor save" "$(cat "$M/d/f1")" "saved"
mkdir "$M/e" && mv "$M/d/f2" "$M/e/"
expect_eq "moved" "$(cat "$M/e/f2")" "before 2"
log "the mount kept working with one node of three down"

umount_fs "$M"
echo PASS
