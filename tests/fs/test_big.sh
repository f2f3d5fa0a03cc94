#!/usr/bin/env bash
# A 1 GiB file written with dd and read back with the same checksum: the
# content streams through 1 MiB chunks (a few in memory at a time) and the
# manifest is written last.  Prints the throughput.
. "$(dirname "$0")/lib.sh"

start_node n1 --no-fsync
mount_fs "$T/m"
M=$T/m
SIZE_MB=${DYNAMOFS_BIG_MB:-1024}

step "make $SIZE_MB MiB of random data"
head -c $((SIZE_MB << 20)) /dev/urandom > "$T/src"
want=$(sha256sum < "$T/src")

mbps() { awk -v mb="$1" -v s="$2" 'BEGIN { printf "%.0f MB/s", mb * 1.048576 / s }'; }

step "dd into the mount"
t0=$(date +%s.%N)
dd if="$T/src" of="$M/big" bs=1M conv=fsync status=none
t1=$(date +%s.%N)
log "write: $(mbps "$SIZE_MB" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
expect_eq "size" "$(stat -c %s "$M/big")" "$((SIZE_MB << 20))"

step "read it back"
umount_fs "$M" # no page cache left to read from
mount_fs "$T/m2"
t0=$(date +%s.%N)
got=$(dd if="$T/m2/big" bs=1M status=none | sha256sum)
t1=$(date +%s.%N)
log "read: $(mbps "$SIZE_MB" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
expect_eq "checksum" "$got" "$want"

step "rm"
rm "$T/m2/big"
[ ! -e "$T/m2/big" ] || fail "still there"
umount_fs "$T/m2"
echo "ok"
