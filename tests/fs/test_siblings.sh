#!/usr/bin/env bash
# Siblings as files: two (then three) mounts of one node open the same file
# from the same state, all write, all close -> f plus read-only f.v1..f.vk;
# each resolution (rm f.vK, mv f.vK f, an editor's save of f, rm f) leaves
# what DESIGN §1 says.  Also: the name-collision rule, the xattrs, and two
# mounts creating different files in one directory from one stale state.
. "$(dirname "$0")/lib.sh"

start_node n1
mount_fs "$T/a" $NOCACHE
mount_fs "$T/b" $NOCACHE
mount_fs "$T/c" $NOCACHE
A=$T/a B=$T/b C=$T/c

# conflict FILE CONTENT...: open FILE on each mount in turn (all opens
# before any write), write one content per mount, close them all.
conflict() {
	local file=$1
	shift
	python3 - "$file" "$@" <<'EOF'
import os, sys
rel, contents = sys.argv[1], sys.argv[2:]
mounts = [os.environ['A'], os.environ['B'], os.environ['C']][:len(contents)]
fds = [os.open(os.path.join(m, rel), os.O_WRONLY | os.O_TRUNC) for m in mounts]
for fd, c in zip(fds, contents):
    os.write(fd, c.encode() + b'\n')
for fd in fds:
    os.close(fd)
EOF
}
export A B C

# sibling contents DIR NAME: "v1content|v2content|..." in order.
sibs() {
	local out="" k=1
	while [ -e "$1/$2.v$k" ]; do
		out+="$(cat "$1/$2.v$k")|"
		k=$((k + 1))
	done
	echo "${out%|}"
}

step "two siblings appear on every mount"
mkdir "$A/d"
echo base > "$A/d/f"
conflict d/f one two
for m in "$A" "$B" "$C"; do
	expect_eq "ls $m/d" "$(names "$m/d")" "f f.v1 f.v2"
done
expect_eq "sibling contents" "$(sibs "$A/d" f | tr '|' '\n' | sort | tr '\n' ' ')" "one two "
# f is the newest sibling (the second close), f.vK are read-only.
expect_eq "f" "$(cat "$A/d/f")" "two"
expect_eq "f.v1 mode" "$(stat -c %A "$A/d/f.v1")" "-r--r--r--"
expect_eq "f mode" "$(stat -c %A "$A/d/f")" "-rw-r--r--"
expect_eq "siblings xattr" "$(getfattr --absolute-names --only-values -n user.dynamo.siblings "$A/d/f")" "2"
getfattr --absolute-names --only-values -n user.dynamo.vclock "$A/d/f" | grep -Eq '^[0-9a-f]{16}:[0-9]+' ||
	fail "vclock xattr"
expect_eq "nodes xattr" "$(getfattr --absolute-names --only-values -n user.dynamo.nodes "$A/d/f")" "$NODE_ADDR"
diff "$A/d/f.v1" "$A/d/f.v2" > /dev/null && fail "siblings do not differ"
if echo x 2>/dev/null > "$A/d/f.v1"; then fail "wrote a sibling entry"; fi
if setfattr -n user.dynamo.siblings -v 5 "$A/d/f" 2>/dev/null; then
	fail "set a read-only xattr"
fi

step "rm f.v2 resolves to v1"
keep=$(cat "$A/d/f.v1")
rm "$A/d/f.v2"
for m in "$A" "$B"; do
	expect_eq "ls after rm f.v2" "$(names "$m/d")" "f"
	expect_eq "f after rm f.v2" "$(cat "$m/d/f")" "$keep"
done
expect_eq "siblings after rm" "$(getfattr --absolute-names --only-values -n user.dynamo.siblings "$A/d/f")" "1"

step "mv f.v1 f picks v1"
conflict d/f p1 p2
expect_eq "ls" "$(names "$A/d")" "f f.v1 f.v2"
pick=$(cat "$A/d/f.v1")
mv "$A/d/f.v1" "$A/d/f"
expect_eq "ls after mv" "$(names "$B/d")" "f"
expect_eq "f after mv" "$(cat "$B/d/f")" "$pick"

step "an editor's save of f resolves to the new content"
conflict d/f e1 e2
expect_eq "ls" "$(names "$A/d")" "f f.v1 f.v2"
printf 'saved\n' > "$A/d/.f.swp"
sync "$A/d/.f.swp"
mv "$A/d/.f.swp" "$A/d/f"
expect_eq "ls after save" "$(names "$B/d")" "f"
expect_eq "f after save" "$(cat "$B/d/f")" "saved"
conflict d/f w1 w2
printf 'rewritten\n' > "$A/d/f" # open O_TRUNC, write, close
expect_eq "ls after rewrite" "$(names "$B/d")" "f"
expect_eq "f after rewrite" "$(cat "$B/d/f")" "rewritten"

step "rm f deletes the file and all siblings"
conflict d/f r1 r2
expect_eq "ls" "$(names "$A/d")" "f f.v1 f.v2"
rm "$A/d/f"
expect_eq "ls after rm f" "$(names "$B/d")" ""
[ ! -e "$C/d/f.v1" ] || fail "f.v1 still there"

step "three siblings"
echo base > "$A/d/g"
conflict d/g x1 x2 x3
expect_eq "ls" "$(names "$B/d")" "g g.v1 g.v2 g.v3"
expect_eq "g is the newest" "$(cat "$B/d/g")" "x3"
all=$(sibs "$B/d" g)
v1=$(cut -d'|' -f1 <<<"$all")
v3=$(cut -d'|' -f3 <<<"$all")
rm "$B/d/g.v2"
expect_eq "ls after rm g.v2" "$(names "$C/d")" "g g.v1 g.v2"
expect_eq "siblings left" "$(sibs "$C/d" g | tr '|' '\n' | sort | tr '\n' ' ')" \
	"$(printf '%s\n%s\n' "$v1" "$v3" | sort | tr '\n' ' ')"
rm "$C/d/g.v1"
expect_eq "ls after second rm" "$(names "$A/d")" "g"
conflict d/g y1 y2 y3
pick=$(cat "$A/d/g.v2")
mv "$A/d/g.v2" "$A/d/g"
expect_eq "ls after mv g.v2 g" "$(names "$B/d")" "g"
expect_eq "g after mv" "$(cat "$B/d/g")" "$pick"
conflict d/g z1 z2 z3
printf 'resolved\n' > "$C/d/g.tmp"
mv "$C/d/g.tmp" "$C/d/g"
expect_eq "ls after save" "$(names "$A/d")" "g"
conflict d/g q1 q2 q3
rm "$A/d/g"
expect_eq "ls after rm g" "$(names "$B/d")" ""

step "a sibling moved to another name"
echo base > "$A/d/h"
conflict d/h m1 m2
other=$(cat "$A/d/h.v1")
stay=$(cat "$A/d/h.v2")
hi=$(stat -c %i "$A/d/h.v1")
[ "$hi" != "$(stat -c %i "$A/d/h.v2")" ] || fail "two siblings share inode $hi"
mv "$A/d/h.v1" "$A/d/h-theirs"
expect_eq "ls" "$(names "$B/d")" "h h-theirs"
[ "$(stat -c %i "$B/d/h")" != "$(stat -c %i "$B/d/h-theirs")" ] ||
	fail "a moved sibling and the file it left share an inode"
expect_eq "moved sibling" "$(cat "$B/d/h-theirs")" "$other"
expect_eq "remaining" "$(cat "$B/d/h")" "$stay"
rm "$A/d/h" "$A/d/h-theirs"

step "chmod changes the shown sibling only; mv keeps the siblings"
echo base > "$A/d/p"
conflict d/p a1 a2
chmod 600 "$A/d/p"
expect_eq "ls after chmod" "$(names "$B/d")" "p p.v1 p.v2"
expect_eq "mode of p" "$(stat -c %a "$B/d/p")" "600"
expect_eq "modes of the siblings" "$(stat -c %a "$B/d/p.v1" "$B/d/p.v2" | sort | tr '\n' ' ')" "400 444 "
expect_eq "p still the newest" "$(cat "$B/d/p")" "a2"
mv "$A/d/p" "$A/d/p2"
expect_eq "ls after mv" "$(names "$B/d")" "p2 p2.v1 p2.v2"
expect_eq "siblings moved" "$(sibs "$B/d" p2 | tr '|' '\n' | sort | tr '\n' ' ')" "a1 a2 "
if echo x 2>/dev/null > "$A/d/p2.v1"; then fail "created over a sibling entry"; fi
rm "$A/d/p2"
expect_eq "ls" "$(names "$B/d")" ""

step "collision rule: a real file named f.v1 wins over the sibling entry"
echo base > "$A/d/k"
echo real > "$A/d/k.v1"
conflict d/k s1 s2
expect_eq "ls" "$(names "$B/d")" "k k.v1 k.v2"
expect_eq "k.v1 is the real file" "$(cat "$B/d/k.v1")" "real"
expect_eq "k.v1 is writable" "$(stat -c %A "$B/d/k.v1")" "-rw-r--r--"
expect_eq "k.v2 is a sibling" "$(stat -c %A "$B/d/k.v2")" "-r--r--r--"
rm "$B/d/k.v1" # removes the real file, the sibling shows again
expect_eq "ls after rm of the real file" "$(names "$C/d")" "k k.v1 k.v2"
expect_eq "k.v1 now a sibling" "$(stat -c %A "$C/d/k.v1")" "-r--r--r--"
rm "$C/d/k"
expect_eq "ls" "$(names "$A/d")" ""

step "two mounts create different files in one directory from a stale state"
# D and E cache directories for a minute: both read s, then both create
# in it from what they read; the store keeps both directory versions and
# the next read merges them.
mount_fs "$T/d" -oattr_timeout=60,entry_timeout=60
mount_fs "$T/e" -oattr_timeout=60,entry_timeout=60
D=$T/d E=$T/e
export D E
mkdir "$A/s"
echo old > "$A/s/old"
expect_eq "D reads s" "$(names "$D/s")" "old"
expect_eq "E reads s" "$(names "$E/s")" "old"
echo d > "$D/s/from-d"
echo e > "$E/s/from-e"
for m in "$A" "$B" "$C"; do
	expect_eq "ls $m/s" "$(names "$m/s")" "from-d from-e old"
done
expect_eq "from-d" "$(cat "$C/s/from-d")" "d"
expect_eq "from-e" "$(cat "$C/s/from-e")" "e"
getfattr --absolute-names --only-values -n user.dynamo.vclock "$A/s" | grep -q . ||
	fail "directory vclock"

step "concurrent create and remove in one directory: both kept"
# D still caches s without from-e, E without from-d.
rm "$D/s/old"
echo e2 > "$E/s/new-e"
for m in "$A" "$B"; do
	expect_eq "ls $m/s" "$(names "$m/s")" "from-d from-e new-e"
done

umount_fs "$D"
umount_fs "$E"
umount_fs "$A"
umount_fs "$B"
umount_fs "$C"
echo "ok"
