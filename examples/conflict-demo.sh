#!/usr/bin/env bash
# examples/conflict-demo.sh   two mounts of one cluster write the same file
#                             from the same state; the conflict shows as
#                             sibling files, and rm resolves it.
#
# Starts its own node (port 0, in a temporary directory) and two mounts,
# and removes everything again when it ends, even on failure or Ctrl-C.
# Binaries come from $DYNAMO_BUILD (default build/release, built here if
# missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DYNAMO_BUILD:-$root/build/release}

if [ ! -x "$build/fs/dynamofs" ] || [ ! -x "$build/node/dynamod" ]; then
	. "$root/tests/deps.sh"
	dynamo_install_deps
	[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
	ninja -C "$build" node/dynamod fs/dynamofs >/dev/null
fi
export DYNAMOD=$build/node/dynamod DYNAMOFS=$build/fs/dynamofs

# The test harness starts, waits for and cleans up the node and mounts.
. "$root/tests/fs/lib.sh"
log() { :; }

show() {
	printf '\n$ %s\n' "$*"
	eval "$@"
}

start_node n1
# No attribute caching, so each mount sees the other's writes at once.
mount_fs "$T/alice" -oattr_timeout=0,entry_timeout=0
mount_fs "$T/bob" -oattr_timeout=0,entry_timeout=0
cd "$T"
echo "node $NODE_ADDR, mounts $T/alice and $T/bob"

show 'printf "buy milk\n" > alice/todo.txt'
show 'cat bob/todo.txt'

echo
echo "# Alice and Bob open todo.txt at the same time, each writes, each closes:"
python3 - <<'EOF'
import os
a = os.open('alice/todo.txt', os.O_WRONLY | os.O_TRUNC)
b = os.open('bob/todo.txt', os.O_WRONLY | os.O_TRUNC)
os.write(a, b'buy milk\nbuy bread\n')
os.write(b, b'buy milk\nfix the bike\n')
os.close(a)
os.close(b)
EOF

echo
echo "# Neither write is lost: the file has two siblings."
show 'ls -l alice/'
show 'getfattr -n user.dynamo.siblings alice/todo.txt'
show 'cat bob/todo.txt          # the newest sibling'
show 'diff bob/todo.txt.v1 bob/todo.txt.v2 || true'

echo
echo "# Resolve: drop sibling 2; the file is what sibling 1 held."
show 'rm alice/todo.txt.v2'
show 'ls -l bob/'
show 'cat bob/todo.txt'

echo
echo "(mv todo.txt.vK todo.txt picks a sibling, saving todo.txt resolves to"
echo " the new content, rm todo.txt deletes it with all its siblings)"
umount_fs "$T/alice"
umount_fs "$T/bob"
