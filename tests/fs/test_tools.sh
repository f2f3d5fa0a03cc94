#!/usr/bin/env bash
# Ordinary tools on a mount: cp -a of a tree of 1,000 files in nested
# directories in and back out (checksums, sizes, modes, mtimes), tar x/c
# round trip, rsync -a twice (the second transfers nothing), git init /
# add / commit / status / log / clone, an editor-style save, truncate and
# ftruncate, mv of a directory with contents, utimens with nanoseconds,
# chmod, chown, xattrs, statfs, and the errors ordinary tools rely on.
. "$(dirname "$0")/lib.sh"

# FS_NODES=3: on a 3-node cluster (with FS_TLS: the TLS acceptance test
# of issue 12), else on one node.
if [ "${FS_NODES:-1}" = 3 ]; then
	start_three_nodes --no-fsync
	NODE_ADDR="$A1,$A2,$A3"
else
	start_node n1 --no-fsync
fi
mount_fs "$T/m"
M=$T/m

# A tree of 1,000 files in nested directories: 10 x 10 directories of 10
# files, sizes from 0 to 200 KiB (past the inline limit, so some files are
# chunked), three of 2.5 MiB, a few modes and symlinks, fixed mtimes with
# nanoseconds.
step "make the source tree"
SRC=$T/src
python3 - "$SRC" <<'EOF'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(42)
n = 0
for i in range(10):
    for j in range(10):
        d = os.path.join(root, 'd%02d' % i, 'e%02d' % j)
        os.makedirs(d)
        for k in range(10):
            p = os.path.join(d, 'f%02d.dat' % k)
            size = rnd.choice([0, 1, 100, 4096, 65536, 65537, 70000, 150000, 204800])
            if n in (7, 500, 999):
                size = 5 * (1 << 19)
            with open(p, 'wb') as f:
                f.write(rnd.randbytes(size))
            os.chmod(p, rnd.choice([0o644, 0o600, 0o755, 0o444]))
            t = 1_600_000_000 + n * 1000
            os.utime(p, ns=(t * 10**9 + 123456789, t * 10**9 + n))
            n += 1
        os.symlink('f00.dat', os.path.join(d, 'link'))
for dirpath, dirs, files in os.walk(root, topdown=False):
    os.utime(dirpath, ns=(1_500_000_000 * 10**9 + 5, 1_500_000_000 * 10**9 + 7))
EOF
[ "$(find "$SRC" -type f | wc -l)" -eq 1000 ] || fail "source tree"

# listing DIR: one line per entry: path, type and mode, size (files),
# mtime with nanoseconds, symlink target.
listing() {
	(cd "$1" && find . -mindepth 1 \( -type f -printf '%P %M %s %T@\n' \) -o \
		\( -type d -printf '%P %M %T@\n' \) -o \
		\( -type l -printf '%P %M %l\n' \)) | sort
}
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

step "cp -a of the tree into the mount"
start=$SECONDS
cp -a "$SRC" "$M/tree"
log "cp -a in: $((SECONDS - start)) s"
diff <(listing "$SRC") <(listing "$M/tree") || fail "listing differs after cp in"
diff <(sums "$SRC") <(sums "$M/tree") > /dev/null || fail "checksums differ in the mount"

step "cp -a back out"
cp -a "$M/tree" "$T/back"
diff <(sums "$SRC") <(sums "$T/back") > /dev/null || fail "checksums differ after cp out"
diff <(listing "$SRC") <(listing "$T/back") || fail "listing differs after cp out"

step "ls -lR shows sizes, modes, mtimes"
diff <(cd "$SRC" && ls -lR --time-style=full-iso | grep -v '^total' | awk '$1 !~ /^d/ {print $1, $5, $6, $7, $9, $10, $11}') \
	<(cd "$M/tree" && ls -lR --time-style=full-iso | grep -v '^total' | awk '$1 !~ /^d/ {print $1, $5, $6, $7, $9, $10, $11}') ||
	fail "ls -lR differs"

step "cp -r (no preserve) in and out"
cp -r "$SRC/d03" "$M/plain"
cp -r "$M/plain" "$T/plain"
diff -r "$SRC/d03" "$T/plain" || fail "cp -r round trip"

step "tar x into the mount, tar c out"
tar -C "$SRC" -cf "$T/in.tar" d01 d02
mkdir "$M/tarx"
tar -C "$M/tarx" -xf "$T/in.tar"
tar -C "$M/tarx" -cf "$T/out.tar" d01 d02
diff <(tar -tvf "$T/in.tar" --full-time | sort) <(tar -tvf "$T/out.tar" --full-time | sort) ||
	fail "tar listings differ"
mkdir "$T/untar"
tar -C "$T/untar" -xf "$T/out.tar"
diff -r "$SRC/d01" "$T/untar/d01" && diff -r "$SRC/d02" "$T/untar/d02" ||
	fail "tar round trip content"

step "rsync -a twice: the second run transfers nothing"
rsync -a "$SRC/d04/" "$M/rs/"
diff <(listing "$SRC/d04") <(listing "$M/rs") || fail "rsync listing"
out=$(rsync -a --itemize-changes "$SRC/d04/" "$M/rs/")
[ -z "$out" ] || fail "second rsync did something: $out"
out=$(rsync -a --stats "$SRC/d04/" "$M/rs/" | grep 'Number of regular files transferred')
expect_eq "rsync stats" "$out" "Number of regular files transferred: 0"

step "git init, add, commit, status, log, clone"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export HOME=$T GIT_CONFIG_NOSYSTEM=1
mkdir "$M/repo"
cp -r "$SRC/d05/e00" "$M/repo/src"
(
	cd "$M/repo"
	git init -q -b main
	git add .
	git commit -qm first
	[ -z "$(git status --porcelain)" ] || fail "git status not clean"
	echo change >> src/f00.dat
	git status --porcelain | grep -q 'M src/f00.dat' || fail "git status misses a change"
	git commit -qam second
	expect_eq "git log" "$(git log --oneline | wc -l)" "2"
	git fsck > /dev/null 2>&1 || fail "git fsck"
)
git clone -q "$M/repo" "$M/clone"
diff -r --exclude=.git "$M/repo" "$M/clone" || fail "clone differs"
expect_eq "clone log" "$(git -C "$M/clone" log --oneline | wc -l)" "2"
git clone -q "$M/repo" "$T/clone-out"
diff -r --exclude=.git "$M/repo" "$T/clone-out" || fail "clone out differs"

step "editor-style save: write temp, fsync, rename over"
echo original > "$M/doc.txt"
python3 - "$M" <<'EOF'
import os, sys
d = sys.argv[1]
tmp = os.path.join(d, '.doc.txt.swp')
fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b'new content\n')
os.fsync(fd)
os.close(fd)
os.rename(tmp, os.path.join(d, 'doc.txt'))
EOF
expect_eq "saved" "$(cat "$M/doc.txt")" "new content"
expect_eq "no temp left" "$(ls -A "$M" | grep -c swp || true)" "0"

step "truncate and ftruncate"
head -c 300000 /dev/urandom > "$T/t.bin"
cp "$T/t.bin" "$M/t.bin"
truncate -s 100000 "$M/t.bin"
expect_eq "size after truncate" "$(stat -c %s "$M/t.bin")" "100000"
cmp "$M/t.bin" <(head -c 100000 "$T/t.bin") || fail "content after truncate"
truncate -s 2000000 "$M/t.bin"
expect_eq "size after extend" "$(stat -c %s "$M/t.bin")" "2000000"
cmp "$M/t.bin" <(head -c 100000 "$T/t.bin"; head -c 1900000 /dev/zero) || fail "extend reads zeros"
python3 - "$M/t.bin" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.ftruncate(fd, 50)
os.lseek(fd, 0, os.SEEK_END)
os.write(fd, b'tail')
assert os.fstat(fd).st_size == 54
os.close(fd)
EOF
expect_eq "size after ftruncate" "$(stat -c %s "$M/t.bin")" "54"
cmp "$M/t.bin" <(head -c 50 "$T/t.bin"; printf tail) || fail "content after ftruncate"
: > "$M/t.bin"
expect_eq "size after O_TRUNC" "$(stat -c %s "$M/t.bin")" "0"

step "in-place change of a chunked file, appends"
head -c 5000000 /dev/urandom > "$T/c.bin"
cp "$T/c.bin" "$M/c.bin"
for f in "$M/c.bin" "$T/c.bin"; do
	printf PATCH | dd of="$f" bs=1 seek=3000000 conv=notrunc status=none
	printf END | dd of="$f" bs=1 seek=5000000 conv=notrunc status=none
done
cmp "$M/c.bin" "$T/c.bin" || fail "in-place change"
echo a > "$M/app"
echo b >> "$M/app"
expect_eq "append" "$(cat "$M/app" | tr '\n' ' ')" "a b "

step "mv of a directory with contents"
before=$(sums "$M/tree/d06")
mv "$M/tree/d06" "$M/moved"
[ ! -e "$M/tree/d06" ] || fail "old directory still there"
expect_eq "moved checksums" "$(sums "$M/moved")" "$before"
diff <(listing "$SRC/d06" | awk '{print $1, $2, $3}') <(listing "$M/moved" | awk '{print $1, $2, $3}') ||
	fail "moved listing"
mkdir "$M/empty"
mv -T "$M/moved" "$M/empty"
expect_eq "moved over an empty dir" "$(sums "$M/empty")" "$before"
mkdir "$M/full" && touch "$M/full/x"
if mv -T "$M/empty" "$M/full" 2>/dev/null; then fail "replaced a non-empty dir"; fi

step "utimens (nanoseconds), chmod, chown"
touch -d '2001-02-03 04:05:06.123456789' "$M/doc.txt"
expect_eq "mtime" "$(stat -c %y "$M/doc.txt")" "2001-02-03 04:05:06.123456789 +0000"
chmod 640 "$M/doc.txt"
expect_eq "mode" "$(stat -c %a "$M/doc.txt")" "640"
if [ "$(id -u)" -eq 0 ]; then
	chown 1234:5678 "$M/doc.txt"
	expect_eq "owner" "$(stat -c %u:%g "$M/doc.txt")" "1234:5678"
else
	chgrp "$(id -g)" "$M/doc.txt"
fi
chmod 700 "$M/full"
expect_eq "dir mode" "$(stat -c %a "$M/full")" "700"
touch -d '2002-01-01 00:00:00.5' "$M/full"
expect_eq "dir mtime" "$(stat -c %y "$M/full")" "2002-01-01 00:00:00.500000000 +0000"
ln -s doc.txt "$M/sl"
expect_eq "readlink" "$(readlink "$M/sl")" "doc.txt"
expect_eq "through the link" "$(cat "$M/sl")" "new content"

step "xattrs"
setfattr -n user.color -v blue "$M/doc.txt"
setfattr -n user.empty "$M/doc.txt"
expect_eq "getfattr" "$(getfattr --absolute-names --only-values -n user.color "$M/doc.txt")" "blue"
getfattr --absolute-names -d "$M/doc.txt" | grep -q 'user.empty' || fail "listxattr"
setfattr -x user.color "$M/doc.txt"
err=$(getfattr --absolute-names -n user.color "$M/doc.txt" 2>&1 || true)
grep -q 'No such attribute' <<<"$err" || fail "removed xattr: $err"
err=$(getfattr --absolute-names -n user.never "$M/doc.txt" 2>&1 || true)
grep -q 'No such attribute' <<<"$err" || fail "absent xattr: $err"
setfattr -n user.d -v 1 "$M/full"
expect_eq "dir xattr" "$(getfattr --absolute-names --only-values -n user.d "$M/full")" "1"
if setfattr -n trusted.x -v 1 "$M/doc.txt" 2>/dev/null; then fail "trusted xattr"; fi

step "FIFOs and unix sockets: made, used, listed, moved, removed"
mkfifo -m 640 "$M/fifo"
expect_eq "fifo type and mode" "$(stat -c '%F %a' "$M/fifo")" "fifo 640"
(echo through > "$M/fifo") &
read -r line < "$M/fifo"
wait $!
expect_eq "read from the fifo" "$line" "through"
python3 - "$M/sock" <<'EOF'
import os, socket, stat, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
a, _ = s.accept()
c.sendall(b"hi")
assert a.recv(2) == b"hi"
assert stat.S_ISSOCK(os.stat(sys.argv[1]).st_mode)
EOF
mv "$M/fifo" "$M/fifo2"
expect_eq "ls -l type letters" "$(ls -l "$M" | grep -E ' (fifo2|sock)$' | cut -c1 | tr -d '\n')" "ps"
rm "$M/fifo2" "$M/sock"

step "errors ordinary tools rely on"
err=$(ln "$M/doc.txt" "$M/hard" 2>&1 || true)
grep -q 'Operation not permitted' <<<"$err" || fail "hard link: $err"
err=$(rmdir "$M/full" 2>&1 || true)
grep -q 'not empty' <<<"$err" || fail "rmdir non-empty: $err"
python3 - "$M/doc.txt" <<'EOF'
import errno, os, sys
try:
    os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    sys.exit("O_EXCL create of an existing file succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, e
EOF
mkdir "$M/dd"
if mkdir "$M/dd" 2>/dev/null; then fail "mkdir of an existing dir"; fi
# Directories report one link (subdirectories uncounted, like btrfs):
# find must not take that for "no subdirectories".
[ "$(stat -c %h "$M/tree")" -eq 1 ] || fail "nlink of a directory: $(stat -c %h "$M/tree")"
[ "$(find "$M/tree" -mindepth 1 -maxdepth 1 -type d | wc -l)" -eq 9 ] || fail "find of the subdirectories: $(find "$M/tree" -mindepth 1 -maxdepth 1 -type d | wc -l)"
df "$M" > /dev/null || fail "statfs"
long=$(printf 'x%.0s' $(seq 256))
err=$(touch "$M/$long" 2>&1 || true)
grep -q 'too long' <<<"$err" || fail "256-byte name: $err"
touch "$M/${long:1}" || fail "255-byte name"
# A name too long to exist is ENAMETOOLONG, not ENOENT, for every call.
python3 - "$M" "$long" <<'EOF'
import errno, os, sys
p = os.path.join(sys.argv[1], sys.argv[2])
for what, call in [("stat", lambda: os.stat(p)),
                   ("unlink", lambda: os.unlink(p)),
                   ("rmdir", lambda: os.rmdir(p)),
                   ("chmod", lambda: os.chmod(p, 0o600)),
                   ("chown", lambda: os.chown(p, 1, 1)),
                   ("truncate", lambda: os.truncate(p, 0)),
                   ("rename", lambda: os.rename(p, p[:-1] + "y"))]:
    try:
        call()
        sys.exit(what + " of a 256-byte name succeeded")
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            sys.exit("%s of a 256-byte name: %s" % (what, e))
EOF
stat -f "$M" | grep -q 'Type: fuseblk\|Type: fuse' || true

step "unmount and remount: everything is still there"
umount_fs "$M"
mount_fs "$T/m2"
expect_eq "after remount" "$(sums "$T/m2/tree/d00")" "$(sums "$T/back/d00")"
expect_eq "doc after remount" "$(cat "$T/m2/doc.txt")" "new content"
umount_fs "$T/m2"
echo "ok"
