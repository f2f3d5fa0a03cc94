#!/usr/bin/env bash
# Two mounts change one directory while the cluster is split, then healed
# (issue 11): 3 nodes founded with N=3 R=1 W=1, node n1 cut off from n2
# and n3 (dynamoctl fault drop), mount A reaching only n1 and mount B only
# n2 (-o no_routing).  Both sides create files and remove files that
# existed before the split; after the heal, every mount (and a new one
# through all three nodes) lists every create and none of the removed
# names: no create lost, no remove undone.
. "$(dirname "$0")/lib.sh"

ctl() { "$DYNAMOCTL" "${CTL_AUTH[@]}" "$@"; }

step "3 nodes, N=3 R=1 W=1"
start_three_nodes --n 3 --r 1 --w 1 --fault-injection
NODE_ADDR=$A1 mount_fs "$T/a" $NOCACHE -ono_routing
NODE_ADDR=$A2 mount_fs "$T/b" $NOCACHE -ono_routing
A=$T/a B=$T/b

step "before the split: d with keep1..5 and gone1..6"
mkdir "$A/d"
for i in 1 2 3 4 5; do echo "keep $i" > "$A/d/keep$i"; done
for i in 1 2 3 4 5 6; do echo "gone $i" > "$A/d/gone$i"; done
want_before="gone1 gone2 gone3 gone4 gone5 gone6 keep1 keep2 keep3 keep4 keep5"
wait_until 20 test "$(names "$B/d")" = "$want_before"

step "split: n1 | n2 n3"
ctl --node "$A1" fault drop n2 n3
ctl --node "$A2" fault drop n1
ctl --node "$A3" fault drop n1

step "both sides create and remove in d"
for i in $(seq 1 20); do echo "a $i" > "$A/d/a$i"; done
for i in $(seq 1 20); do echo "b $i" > "$B/d/b$i"; done
rm "$A/d/gone1" "$A/d/gone2" "$A/d/gone3"
rm "$B/d/gone4" "$B/d/gone5" "$B/d/gone6"
mkdir "$A/d/sa" "$B/d/sb"
echo x > "$A/d/sa/x"
echo y > "$B/d/sb/y"
# Each side sees its own changes at once.
names "$A/d" | grep -qw a20 || fail "A does not list its create"
names "$B/d" | grep -qw gone4 && fail "B lists what it removed"
# ... and not the other side's: the split is real.
names "$B/d" | grep -qw a1 && fail "B lists A's create during the split"
names "$A/d" | grep -qw gone4 || fail "A misses B's remove: not split"

step "heal"
ctl --node "$A1" fault heal
ctl --node "$A2" fault heal
ctl --node "$A3" fault heal

want="keep1 keep2 keep3 keep4 keep5"
for i in $(seq 1 20); do want+=" a$i"; done
for i in $(seq 1 20); do want+=" b$i"; done
want=$(tr ' ' '\n' <<<"$want sa sb" | sort | tr '\n' ' ' | sed 's/ $//')
# Hinted handoff and anti-entropy bring each side the other's writes.
converged() { [ "$(names "$1/d")" = "$want" ]; }
wait_until 90 converged "$A"
wait_until 90 converged "$B"

NODE_ADDR="$A1,$A2,$A3"
mount_fs "$T/c" $NOCACHE
C=$T/c
expect_eq "a new mount lists" "$(names "$C/d")" "$want"
for i in $(seq 1 20); do
	expect_eq "a$i" "$(cat "$C/d/a$i")" "a $i"
	expect_eq "b$i" "$(cat "$C/d/b$i")" "b $i"
done
for i in 1 2 3 4 5; do expect_eq "keep$i" "$(cat "$C/d/keep$i")" "keep $i"; done
expect_eq "sa" "$(cat "$C/d/sa/x")" "x"
expect_eq "sb" "$(cat "$C/d/sb/y")" "y"
for i in 1 2 3 4 5 6; do
	[ -e "$C/d/gone$i" ] && fail "gone$i came back"
done
# No sibling of anything: each name was written on one side only.
names "$C/d" | grep -q '\.v[0-9]' && fail "siblings appeared: $(names "$C/d")"

umount_fs "$C"
umount_fs "$B"
umount_fs "$A"
echo PASS
