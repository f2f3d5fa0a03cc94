#!/usr/bin/env python3
"""Randomized model test of a dynamofs mount (run by tests/fs/test_model.sh).

  model.py ops --dir DIR --chunk CS --inline N --seed S --ops N
               [--phase NAME] [--ctl] [--kill-at F --restart-at F]
               [--remount] [--final-kill]
  model.py siblings --a DIR --b DIR --chunk CS --seed S --rounds N

ops: random operations on a few files in DIR (on the mount) and on a model
(python bytearrays) side by side: pwrite of 1 byte .. 3 chunks at random
offsets (holes past the end), truncate (shrink, grow, 50 MiB sparse), reads
of random ranges, whole-file compares (content, st_size, st_blocks), rename
(over an existing file too, and with the file open), close and reopen,
fsync, copy_file_range (same file too), shutil.copyfile and cp, unlink (also
while open: the open file must stay readable and writable) and recreate.
What every step returns is checked at once, the touched file's size after
every step, one whole file every 8 steps, all files and the listing every 64.

With --ctl the program asks test_model.sh for things only the shell can do,
one request a line on stdout, answered "ok" on stdin: "kill K" (kill -9 the
dynamod K of 0..2), "restart K" (same data directory, same address),
"remount" (unmount and mount again: every cache cold), "dump PATH"
(print the file's key as the nodes have it, for a failure's report).  --kill-at and
--restart-at are fractions of --ops; --remount checks everything again on a
fresh mount at the end; --final-kill then kills another node, remounts,
checks everything once more (nothing written while the first node was down
may exist on only the node now down) and restarts it.

siblings: two mounts of one cluster (no attribute or entry caches) open the
same file from the same state, each changes it differently (sometimes with
an fsync in between: a put in the middle of the open), both close:
name, name.v1 and name.v2 must show, the siblings being exactly the two
writers' contents; then a resolution (mostly rm name.v2: name must hold
v1's content on both mounts), and the next round starts from there.

On a mismatch: the seed, the step, the last 30 operations, expected vs got
(first differing offset), exit 1.  MODEL_CORRUPT=STEP flips one byte of the
model at that step, to see the test fail (a self-check).
MODEL_TRACE=FILE writes every call on the mount to FILE as python (phases
A and B), to replay and cut down a failure (the header says how).
MODEL_SKIP=orphan,... leaves out kinds of operations (to get past a known
bug): orphan (keeping a file open across its unlink or a rename over it),
fsync_mid (phase C: an fsync between a writer's changes).
Only the standard library; logs go to stderr (stdout is the control
channel).
"""

import argparse
import collections
import errno
import math
import os
import random
import shutil
import subprocess
import sys
import time

MiB = 1 << 20
NAMES = ["f0", "f1", "f2", "f3", "f4", "f5"]
MAX_FILES = 4
HUGE = 50 * MiB


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def first_diff(a, b):
    """First offset where a and b differ (their common length when one is
    a prefix of the other), or -1 when equal."""
    n = min(len(a), len(b))
    ma, mb = memoryview(a), memoryview(b)
    step = 1 << 16
    for i in range(0, n, step):
        if ma[i:i + step] != mb[i:i + step]:
            for j in range(i, min(i + step, n)):
                if a[j] != b[j]:
                    return j
    return n if len(a) != len(b) else -1


def show(b, off, n=16):
    s = bytes(b[off:off + n])
    return s.hex(" ") if s else "(end)"



class Sys:
    """The calls on the mount.  With a trace file (MODEL_TRACE=FILE),
    each is written there first as a line of python, its data in
    FILE.bin, so a failing run can be replayed and cut down outside the
    test (see the header that trace lines assume)."""

    HEADER = """import os, shutil, subprocess, sys
M = sys.argv[1]  # the mount to replay on
B = open(sys.argv[2], 'rb').read()  # the trace's .bin
def P(r): return os.path.join(M, r)
def D(o, n): return B[o:o + n]
"""

    def __init__(self):
        self.t = self.b = None
        self.root = "/"
        self.boff = 0

    def start(self, path, root):
        self.t = open(path, "w")
        self.b = open(path + ".bin", "wb")
        self.root = root
        self.t.write(self.HEADER)

    def line(self, s):
        if self.t:
            self.t.write(s + "\n")
            self.t.flush()

    def comment(self, s):
        self.line("# " + s)

    def p(self, path):
        return "P(%r)" % os.path.relpath(path, self.root)

    def d(self, data):
        if not self.b:
            return ""
        self.b.write(data)
        self.b.flush()
        self.boff += len(data)
        return "D(%d, %d)" % (self.boff - len(data), len(data))

    def open(self, path, flags, mode=0o777):
        fd = os.open(path, flags, mode)
        self.line("fd%d = os.open(%s, %d, %#o)" % (fd, self.p(path), flags,
                                                   mode))
        return fd

    def close(self, fd):
        self.line("os.close(fd%d)" % fd)
        os.close(fd)

    def pwrite(self, fd, data, off):
        self.line("os.pwrite(fd%d, %s, %d)" % (fd, self.d(data), off))
        return os.pwrite(fd, data, off)

    def write(self, fd, data):
        self.line("os.write(fd%d, %s)" % (fd, self.d(data)))
        return os.write(fd, data)

    def pread(self, fd, n, off):
        self.line("os.pread(fd%d, %d, %d)" % (fd, n, off))
        return os.pread(fd, n, off)

    def ftruncate(self, fd, n):
        self.line("os.ftruncate(fd%d, %d)" % (fd, n))
        os.ftruncate(fd, n)

    def truncate(self, path, n):
        self.line("os.truncate(%s, %d)" % (self.p(path), n))
        os.truncate(path, n)

    def rename(self, a, b):
        self.line("os.rename(%s, %s)" % (self.p(a), self.p(b)))
        os.rename(a, b)

    def unlink(self, path):
        self.line("os.unlink(%s)" % self.p(path))
        os.unlink(path)

    def copy_file_range(self, src, dst, n, soff, doff):
        self.line("os.copy_file_range(fd%d, fd%d, %d, %d, %d)"
                  % (src, dst, n, soff, doff))
        r = os.copy_file_range(src, dst, n, soff, doff)
        self.comment("-> %d" % r)
        return r

    def fsync(self, fd):
        self.line("os.fsync(fd%d)" % fd)
        os.fsync(fd)

    def fdatasync(self, fd):
        self.line("os.fdatasync(fd%d)" % fd)
        os.fdatasync(fd)

    def stat(self, path):
        self.line("os.stat(%s)" % self.p(path))
        return os.stat(path)

    def fstat(self, fd):
        self.line("os.fstat(fd%d)" % fd)
        return os.fstat(fd)

    def listdir(self, path):
        self.line("os.listdir(%s)" % self.p(path))
        return os.listdir(path)

    def getxattr(self, path, name):
        self.line("os.getxattr(%s, %r)" % (self.p(path), name))
        return os.getxattr(path, name)

    def copyfile(self, a, b):
        self.line("shutil.copyfile(%s, %s)" % (self.p(a), self.p(b)))
        shutil.copyfile(a, b)

    def cp(self, a, b):
        self.line("subprocess.run(['cp', %s, %s], check=True)"
                  % (self.p(a), self.p(b)))
        return subprocess.run(["cp", a, b], stderr=subprocess.PIPE)

    def write_file(self, path, data):
        self.line("open(%s, 'wb').write(%s)" % (self.p(path), self.d(data)))
        with open(path, "wb") as f:
            f.write(data)

    def read_file(self, path):
        self.line("open(%s, 'rb').read()" % self.p(path))
        with open(path, "rb") as f:
            return bytearray(f.read())


S = Sys()


class Failed(Exception):
    pass


class Base:
    def __init__(self, args, phase):
        self.args = args
        self.phase = phase
        self.rng = random.Random("%s/%s" % (args.seed, phase))
        self.cs = args.chunk
        self.log = collections.deque(maxlen=30)
        self.step = 0
        self.stats = collections.Counter()
        c = os.environ.get("MODEL_CORRUPT", "")
        self.corrupt_at = int(c) if c else -1
        self.skip = set(filter(None, os.environ.get("MODEL_SKIP",
                                                    "").split(",")))

    def note(self, msg):
        self.log.append("%6d  %s" % (self.step, msg))
        S.comment("%d: %s" % (self.step, msg))

    def fail(self, what, expected=None, got=None, off=None):
        lines = ["", "MISMATCH in phase %s at step %d: %s"
                 % (self.phase, self.step, what),
                 "seed %s (replay: MODEL_SEED=%s%s tests/fs/test_model.sh)"
                 % (self.args.seed, self.args.seed,
                    "".join(" %s=%s" % (k, os.environ[k]) for k in
                            ("MODEL_OPS", "MODEL_PHASES", "MODEL_SKIP")
                            if os.environ.get(k))),
                 "last operations:"]
        lines += ["  " + l for l in self.log]
        if expected is not None or got is not None:
            if isinstance(expected, (bytes, bytearray)) and \
                    isinstance(got, (bytes, bytearray)):
                d = first_diff(expected, got)
                base = 0 if off is None else off
                lines.append("expected %d bytes, got %d bytes; first "
                             "difference at offset %d (file offset %d)"
                             % (len(expected), len(got), d, base + d))
                lines.append("  expected: %s" % show(expected, d))
                lines.append("  got:      %s" % show(got, d))
            else:
                lines.append("  expected: %r" % (expected,))
                lines.append("  got:      %r" % (got,))
        say("\n".join(lines))
        raise Failed(what)

    def expect(self, what, expected, got, off=None):
        if expected != got:
            self.fail(what, expected, got, off)

    def req(self, cmd):
        self.note("request: " + cmd)
        if not self.args.ctl:
            self.fail("request %r without --ctl" % cmd)
        t0 = time.monotonic()
        sys.stdout.write(cmd + "\n")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if line.strip() != "ok":
            self.fail("request %r answered %r" % (cmd, line))
        say("== [%s] step %d: %s (%.1f s)"
            % (self.phase, self.step, cmd, time.monotonic() - t0))

    # ---- random choices ----

    def rand_size(self):
        r, cs = self.rng.random(), self.cs
        if r < 0.15:
            return self.rng.randint(1, 16)
        if r < 0.35:
            return self.rng.choice([cs - 1, cs, cs + 1, 2 * cs, 3 * cs,
                                    self.args.inline, self.args.inline + 1,
                                    2 * cs - 1, 2 * cs + 1])
        n = int(math.exp(self.rng.uniform(0, math.log(3 * cs))))
        return max(1, min(3 * cs, n))

    def rand_off(self, size):
        r, cs = self.rng.random(), self.cs
        if r < 0.25:
            off = cs * self.rng.randint(0, size // cs + 2)
            return max(0, off + self.rng.choice([0, 0, 0, -1, 1]))
        if r < 0.35:
            return size
        if r < 0.45:
            return size + self.rng.randint(1, 3 * cs)
        if r < 0.47:
            return size + self.rng.randint(10 * cs, 2 * MiB)
        return self.rng.randint(0, max(size, 1))

    def rand_data(self, n):
        r = self.rng.random()
        if r < 0.1:
            return bytes(n)
        if r < 0.3:
            # Repeated patterns: identical chunks in several places and
            # files (content-addressed blobs shared by name).
            seed = self.rng.randint(0, 3)
            unit = random.Random(seed).randbytes(self.rng.choice(
                [1, 7, self.cs]))
            return (unit * (n // len(unit) + 1))[:n]
        return self.rng.randbytes(n)

    # ---- reading the mount ----

    def read_all(self, path=None, fd=None, size=None):
        own = fd is None
        if own:
            fd = S.open(path, os.O_RDONLY)
        try:
            if size is None:
                size = S.fstat(fd).st_size
            out = bytearray()
            off = 0
            while True:
                b = S.pread(fd, 4 * MiB, off)
                if not b:
                    break
                out += b
                off += len(b)
                if off > size + 64 * MiB:
                    break
            return out
        finally:
            if own:
                S.close(fd)

    def check_blocks(self, what, st, chunk, content):
        # Stored bytes are at most the size rounded up to whole chunks,
        # plus a chunk of slack (st_blocks counts what is stored; holes
        # are no blob), and a byte that is not zero is stored somewhere.
        limit = -(-st.st_size // chunk) * chunk + chunk
        if st.st_blocks * 512 > limit:
            self.fail("%s: st_blocks %d (%d bytes) > size %d rounded up "
                      "to %d-byte chunks + a chunk (%d)"
                      % (what, st.st_blocks, st.st_blocks * 512,
                         st.st_size, chunk, limit))
        if st.st_blocks == 0 and content.count(0) != len(content):
            self.fail("%s: st_blocks 0 but %d bytes are not zero"
                      % (what, len(content) - content.count(0)))


class Ops(Base):
    def __init__(self, args):
        super().__init__(args, args.phase)
        self.dir = args.dir
        self.root = os.path.dirname(args.dir)  # the mount point
        self.files = {}  # name -> bytearray (the model)
        self.fds = {}    # name -> fd open O_RDWR on the mount
        self.killed = None
        self.secs = collections.Counter()

    def path(self, name):
        return os.path.join(self.dir, name)

    def live(self):
        return sorted(self.files)

    def fd_of(self, name):
        fd = self.fds.get(name)
        if fd is None:
            self.note("  open %s O_RDWR" % name)
            fd = S.open(self.path(name), os.O_RDWR)
            self.fds[name] = fd
        return fd

    def close_fd(self, name):
        fd = self.fds.pop(name, None)
        if fd is not None:
            S.close(fd)

    def close_all(self):
        for name in list(self.fds):
            self.note("close %s" % name)
            self.close_fd(name)

    @staticmethod
    def put(buf, off, data):
        if not data:
            return
        if off > len(buf):
            buf.extend(bytes(off - len(buf)))
        buf[off:off + len(data)] = data

    def check_size(self, name):
        st = S.stat(self.path(name))
        self.expect("st_size of %s (stat)" % name, len(self.files[name]),
                    st.st_size)
        fd = self.fds.get(name)
        if fd is not None:
            self.expect("st_size of %s (fstat)" % name,
                        len(self.files[name]), S.fstat(fd).st_size)

    def compare(self, name, how=None):
        want = self.files[name]
        how = how or self.rng.choice(["fresh", "fresh", "fd"])
        if how == "fd" and name in self.fds:
            got = self.read_all(fd=self.fds[name], size=len(want))
        else:
            how = "fresh"
            got = self.read_all(path=self.path(name), size=len(want))
        self.expect("content of %s (%s fd)" % (name, how), want, got)
        st = S.stat(self.path(name))
        self.expect("st_size of %s" % name, len(want), st.st_size)
        self.check_blocks(name, st, self.cs, want)
        self.stats["compares"] += 1

    def compare_listing(self):
        got = sorted(S.listdir(self.dir))
        if got != self.live():
            self.describe_extra(got)
            self.fail("listing of %s" % self.dir, self.live(), got)

    def describe_extra(self, got):
        """Say what the unexpected entries (siblings?) hold."""
        dumped = set()
        for e in got:
            if e in self.files:
                continue
            p = self.path(e)
            base = e.rsplit(".v", 1)[0]
            if self.args.ctl and base not in dumped:
                dumped.add(base)
                self.req("dump /" + os.path.relpath(self.path(base),
                                                     self.root))
            try:
                data = self.read_all(path=p)
                base = e.rsplit(".v", 1)[0]
                model = self.files.get(base)
                xa = {}
                for x in ("user.dynamo.siblings", "user.dynamo.vclock"):
                    try:
                        xa[x] = os.getxattr(p, x).decode(errors="replace")
                    except OSError as err:
                        xa[x] = str(err)
                say("unexpected entry %s: %d bytes, starts %s; %s; %s"
                    % (e, len(data), show(data, 0),
                       "equals the model of %s" % base if model == data
                       else "differs from the model of %s (first at %s)"
                       % (base, first_diff(model, data))
                       if model is not None else "no model of %s" % base,
                       xa))
            except OSError as err:
                say("unexpected entry %s: %s" % (e, err))

    def compare_everything(self):
        self.compare_listing()
        for name in self.live():
            self.compare(name)

    def orphan_check(self, fd, old, what):
        """fd names a file just unlinked or renamed over: it still reads
        its content and takes writes, which show nowhere else."""
        got = self.read_all(fd=fd, size=len(old))
        self.expect("%s: content through the open fd" % what, old, got)
        data = self.rand_data(self.rng.randint(1, 2 * self.cs))
        off = self.rng.randint(0, len(old))
        self.note("  orphan pwrite off=%d n=%d" % (off, len(data)))
        n = S.pwrite(fd, data, off)
        self.expect("%s: pwrite through the open fd" % what, len(data), n)
        buf = bytearray(old)
        self.put(buf, off, data)
        got = self.read_all(fd=fd, size=len(buf))
        self.expect("%s: read back through the open fd" % what, buf, got)
        self.expect("%s: fstat size" % what, len(buf), S.fstat(fd).st_size)
        return buf

    # ---- operations ----

    def op_write(self):
        name = self.rng.choice(self.live())
        buf = self.files[name]
        n = self.rand_size()
        off = self.rand_off(len(buf))
        data = self.rand_data(n)
        how = self.rng.choices(["fd", "path", "append"], [8, 1, 1])[0]
        self.note("write %s off=%d n=%d via %s" % (name, off,
                                                    n, how))
        if how == "fd":
            got = S.pwrite(self.fd_of(name), data, off)
        elif how == "path":
            fd = S.open(self.path(name), os.O_WRONLY)
            try:
                got = S.pwrite(fd, data, off)
            finally:
                S.close(fd)
        else:
            off = len(buf)
            fd = S.open(self.path(name), os.O_WRONLY | os.O_APPEND)
            try:
                got = S.write(fd, data)
            finally:
                S.close(fd)
        self.expect("pwrite return of %s" % name, n, got)
        self.put(buf, off, data)
        self.check_size(name)

    def op_read(self):
        name = self.rng.choice(self.live())
        buf = self.files[name]
        off = self.rng.choice([self.rand_off(len(buf)),
                               self.rng.randint(0, max(0, len(buf)))])
        n = self.rand_size()
        how = self.rng.choices(["fd", "fresh"], [3, 1])[0]
        self.note("read %s off=%d n=%d via %s" % (name, off, n, how))
        if how == "fd":
            got = S.pread(self.fd_of(name), n, off)
        else:
            fd = S.open(self.path(name), os.O_RDONLY)
            try:
                got = S.pread(fd, n, off)
            finally:
                S.close(fd)
        self.expect("pread of %s off=%d n=%d" % (name, off, n),
                    bytes(buf[off:off + n]), got, off)

    def op_truncate(self):
        name = self.rng.choice(self.live())
        buf = self.files[name]
        size, cs = len(buf), self.cs
        r = self.rng.random()
        total = sum(len(b) for b in self.files.values())
        if size > 4 * MiB and r < 0.7:
            # Do not keep a huge file long: each compare reads it all.
            new = self.rng.randint(0, 2 * MiB)
        elif r < 0.03 and total < HUGE:
            new = HUGE + self.rng.randint(0, 3 * cs)
        elif r < 0.4:
            new = self.rng.randint(0, size)
        elif r < 0.55:
            new = cs * self.rng.randint(0, size // cs + 1)
        elif r < 0.6:
            new = 0
        else:
            new = size + self.rng.randint(1, 3 * cs)
        how = self.rng.choices(["ftruncate", "truncate", "O_TRUNC"],
                               [5, 3, 1 if new == 0 else 0])[0]
        self.note("truncate %s %d -> %d via %s" % (name, size, new, how))
        if how == "ftruncate":
            S.ftruncate(self.fd_of(name), new)
        elif how == "truncate":
            S.truncate(self.path(name), new)
        else:
            S.close(S.open(self.path(name), os.O_WRONLY | os.O_TRUNC))
        if new < size:
            del buf[new:]
        else:
            buf.extend(bytes(new - size))
        self.check_size(name)

    def op_compare(self):
        name = self.rng.choice(self.live())
        self.note("compare %s (%d bytes)" % (name, len(self.files[name])))
        self.compare(name)

    def op_rename(self):
        src = self.rng.choice(self.live())
        others = [n for n in NAMES if n != src]
        if len(self.files) >= MAX_FILES:
            others = [n for n in others if n in self.files]
        dst = self.rng.choice(others)
        keep_src = self.rng.random() < 0.5
        orphan = dst in self.files and dst in self.fds and \
            self.rng.random() < 0.3 and "orphan" not in self.skip
        self.note("rename %s -> %s%s%s" % (
            src, dst, " (over an existing file)" if dst in self.files else "",
            " src open" if keep_src and src in self.fds else ""))
        if not keep_src:
            self.close_fd(src)
        ofd = None
        if dst in self.files:
            if orphan:
                ofd = self.fds.pop(dst)
            else:
                self.close_fd(dst)
        S.rename(self.path(src), self.path(dst))
        old = self.files.pop(dst, None)
        self.files[dst] = self.files.pop(src)
        if src in self.fds:
            self.fds[dst] = self.fds.pop(src)
        self.compare_listing()
        self.check_size(dst)
        if ofd is not None:
            try:
                self.orphan_check(ofd, old, "%s renamed over" % dst)
            finally:
                S.close(ofd)
            self.compare(dst)

    def op_reopen(self):
        name = self.rng.choice(self.live())
        self.note("reopen %s" % name)
        self.close_fd(name)
        self.fd_of(name)
        self.check_size(name)

    def op_close(self):
        if not self.fds:
            return self.op_reopen()
        name = self.rng.choice(sorted(self.fds))
        self.note("close %s" % name)
        self.close_fd(name)

    def op_fsync(self):
        name = self.rng.choice(self.live())
        how = self.rng.choice(["fsync", "fdatasync"])
        self.note("%s %s" % (how, name))
        getattr(S, how)(self.fd_of(name))
        self.check_size(name)

    def op_copy_range(self):
        live = self.live()
        src = self.rng.choice(live)
        dst = self.rng.choice(live)
        sb, db = self.files[src], self.files[dst]
        cs = self.cs
        n = self.rand_size()
        if self.rng.random() < 0.5:  # whole chunks: shared by reference
            n = cs * self.rng.randint(1, 3)
            soff = cs * self.rng.randint(0, len(sb) // cs + 1)
            doff = cs * self.rng.randint(0, len(db) // cs + 1)
        else:
            soff = self.rng.randint(0, len(sb) + cs)
            doff = self.rng.randint(0, len(db) + cs)
        if src == dst and doff + n > soff and doff < soff + n:
            # The kernel refuses overlapping ranges of one file: move the
            # destination past the source.
            doff = soff + n + self.rng.choice([0, 1, cs])
        self.note("copy_file_range %s[%d:+%d] -> %s@%d" % (src, soff, n,
                                                           dst, doff))
        sfd, dfd = self.fd_of(src), self.fd_of(dst)
        # One call: the kernel cuts the range at the source's end, and a
        # regular file copies all of what is left (no short copies; a
        # loop would also read what a same-file copy just appended).
        done = S.copy_file_range(sfd, dfd, n, soff, doff)
        want = max(0, min(n, len(sb) - soff))
        self.expect("copy_file_range bytes copied", want, done)
        data = bytes(sb[soff:soff + done])
        self.put(db, doff, data)
        self.check_size(dst)
        if self.rng.random() < 0.3:
            self.compare(dst)

    def op_copy_file(self):
        src = self.rng.choice(self.live())
        others = [n for n in NAMES if n != src]
        if len(self.files) >= MAX_FILES:
            others = [n for n in others if n in self.files]
        dst = self.rng.choice(others)
        how = self.rng.choice(["copyfile", "cp"])
        self.note("%s %s -> %s%s" % (how, src, dst,
                                     " (exists)" if dst in self.files
                                     else ""))
        if how == "copyfile":
            S.copyfile(self.path(src), self.path(dst))
        else:
            p = S.cp(self.path(src), self.path(dst))
            if p.returncode != 0:
                self.fail("cp exited %d: %s" % (p.returncode,
                                                p.stderr.decode()))
        self.files[dst] = bytearray(self.files[src])
        self.compare_listing()
        self.compare(dst)

    def op_unlink(self):
        name = self.rng.choice(self.live())
        orphan = name in self.fds and self.rng.random() < 0.3 and \
            "orphan" not in self.skip
        self.note("unlink %s%s" % (name, " (kept open)" if orphan else ""))
        ofd = self.fds.pop(name) if orphan else None
        self.close_fd(name)
        S.unlink(self.path(name))
        old = self.files.pop(name)
        try:
            if ofd is not None:
                self.orphan_check(ofd, old, "%s unlinked" % name)
            self.compare_listing()
            if len(self.files) < 2 or self.rng.random() < 0.6:
                self.create(name)
        finally:
            if ofd is not None:
                S.close(ofd)
        if name in self.files:
            self.compare(name)

    def create(self, name):
        self.note("  create %s" % name)
        fd = S.open(self.path(name), os.O_RDWR | os.O_CREAT | os.O_EXCL,
                     0o644)
        self.fds[name] = fd
        self.files[name] = bytearray()
        if self.rng.random() < 0.5:
            data = self.rand_data(self.rand_size())
            self.note("  write %s off=0 n=%d" % (name, len(data)))
            self.expect("pwrite return", len(data), S.pwrite(fd, data, 0))
            self.files[name] += data
            if self.rng.random() < 0.5:
                # Two puts in one open of a new file: the first blind,
                # the second under the first's context.
                self.note("  fsync %s, write, fsync" % name)
                S.fsync(fd)
                data = self.rand_data(self.rand_size())
                off = self.rand_off(len(self.files[name]))
                self.expect("pwrite return", len(data),
                            S.pwrite(fd, data, off))
                self.put(self.files[name], off, data)
                S.fsync(fd)
        self.compare_listing()
        self.check_size(name)

    def op_create(self):
        free = [n for n in NAMES if n not in self.files]
        if len(self.files) >= MAX_FILES or not free:
            return self.op_write()
        self.create(self.rng.choice(free))

    OPS = [("write", 30), ("read", 20), ("truncate", 8), ("compare", 4),
           ("rename", 4), ("reopen", 6), ("close", 3), ("fsync", 4),
           ("copy_range", 6), ("copy_file", 2), ("unlink", 3),
           ("create", 2)]

    def run(self):
        a = self.args
        S.line("os.makedirs(%s, exist_ok=True)" % S.p(self.dir))
        os.makedirs(self.dir, exist_ok=True)
        t0 = time.monotonic()
        say("== [%s] seed %s, %d ops, chunk %d, inline_max %d, in %s"
            % (self.phase, a.seed, a.ops, self.cs, a.inline, self.dir))
        for name in NAMES[:3]:
            self.create(name)
        kill_at = int(a.ops * a.kill_at) if a.kill_at is not None else -1
        restart_at = int(a.ops * a.restart_at) \
            if a.restart_at is not None else -1
        names = [o for o, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        for self.step in range(1, a.ops + 1):
            if self.step == kill_at:
                self.killed = self.victim()
                self.req("kill %d" % self.killed)
            if self.step == restart_at and self.killed is not None:
                self.req("restart %d" % self.killed)
            if self.step == self.corrupt_at and self.files:
                name = self.rng.choice(self.live())
                buf = self.files[name]
                if not buf:
                    buf.append(0)
                    buf[0] = 1  # the mount has a shorter file now
                else:
                    buf[self.rng.randrange(len(buf))] ^= 0x40
                say("== MODEL_CORRUPT: flipped a byte of the model of %s"
                    % name)
            op = self.rng.choices(names, weights)[0]
            self.stats[op] += 1
            ts = time.monotonic()
            getattr(self, "op_" + op)()
            tc = time.monotonic()
            self.secs[op] += tc - ts
            if self.step % 64 == 0:
                self.note("compare everything")
                self.compare_everything()
            elif self.step % 8 == 0:
                name = self.rng.choice(self.live())
                self.note("compare %s" % name)
                self.compare(name)
            self.secs["(checks)"] += time.monotonic() - tc
        self.step += 1
        self.note("close all, compare everything")
        self.close_all()
        self.compare_everything()
        t1 = time.monotonic()
        if a.remount:
            self.req("remount")
            self.compare_everything()
        if a.final_kill:
            other = ((self.killed if self.killed is not None else 0)
                     + self.rng.randint(1, 2)) % 3
            self.req("kill %d" % other)
            self.req("remount")
            self.note("compare everything with node %d down" % other)
            self.compare_everything()
            # Writes still work, and the new file is there after the
            # node is back.
            name = self.rng.choice(self.live())
            self.note("write %s with node %d down" % (name, other))
            self.create_or_rewrite(name)
            self.req("restart %d" % other)
            self.compare_everything()
        total = sum(len(b) for b in self.files.values())
        say("== [%s] PASS: %d ops in %.1f s (+%.1f s remount checks); %s; "
            "%d files, %d bytes at the end"
            % (self.phase, a.ops, t1 - t0, time.monotonic() - t1,
               " ".join("%s=%d" % kv for kv in sorted(self.stats.items())),
               len(self.files), total))
        say("== [%s] seconds by operation: %s" % (self.phase, " ".join(
            "%s=%.1f" % kv for kv in sorted(self.secs.items()))))

    def victim(self):
        """The node to kill: mostly the first of a file's preference list
        (the coordinator of its last writes, so versions it wrote are
        left only on a node that is down), else one at random."""
        nodes = self.args.nodes.split(",") if self.args.nodes else []
        name = self.rng.choice(self.live())
        if len(nodes) == 3 and self.rng.random() < 0.75:
            pref = S.getxattr(self.path(name), "user.dynamo.nodes")
            first = pref.decode().rstrip("\0").split(",")[0]
            if first in nodes:
                self.note("kill the coordinator of %s (%s)" % (name, first))
                return nodes.index(first)
        return self.rng.randint(0, 2)

    def create_or_rewrite(self, name):
        data = self.rand_data(self.rand_size())
        S.write_file(self.path(name), data)
        self.files[name] = bytearray(data)
        self.compare(name)


class Siblings(Base):
    def __init__(self, args):
        super().__init__(args, "C")
        self.a, self.b = args.a, args.b

    def names_on(self, mount):
        return sorted(S.listdir(mount))

    def read(self, mount, name):
        return S.read_file(os.path.join(mount, name))

    def change(self, fd, buf):
        """A random change through fd, mirrored in buf."""
        if self.rng.random() < 0.8:
            n = self.rand_size()
            off = self.rand_off(len(buf))
            data = self.rand_data(n)
            self.note("    pwrite off=%d n=%d" % (off, n))
            self.expect("pwrite return", n, S.pwrite(fd, data, off))
            Ops.put(buf, off, data)
        else:
            new = self.rng.randint(0, len(buf) + self.cs)
            self.note("    ftruncate %d" % new)
            S.ftruncate(fd, new)
            if new < len(buf):
                del buf[new:]
            else:
                buf.extend(bytes(new - len(buf)))
        self.expect("fstat size", len(buf), S.fstat(fd).st_size)

    def run(self):
        a = self.args
        t0 = time.monotonic()
        say("== [C] seed %s, %d rounds, chunk %d, mounts %s %s"
            % (a.seed, a.rounds, self.cs, self.a, self.b))
        name = "s"
        pa, pb = os.path.join(self.a, name), os.path.join(self.b, name)
        base = bytearray(self.rand_data(self.rng.randint(0, 6 * self.cs)))
        self.note("create %s (%d bytes) on A" % (name, len(base)))
        S.write_file(pa, base)
        self.expect("B reads what A wrote", base, self.read(self.b, name))
        for rnd in range(1, a.rounds + 1):
            self.step = rnd
            ca, cb = bytearray(base), bytearray(base)
            trunc_a = self.rng.random() < 0.15
            self.note("round %d: open %s on A%s and on B (base %d bytes)"
                      % (rnd, name, " O_TRUNC" if trunc_a else "",
                         len(base)))
            fa = S.open(pa, os.O_RDWR | (os.O_TRUNC if trunc_a else 0))
            fb = S.open(pb, os.O_RDWR)
            if trunc_a:
                del ca[:]
            # Each writer: 1..4 changes, sometimes an fsync after one (a
            # put in the middle of the open); the two interleaved at
            # random, then both close in a random order.
            fds, bufs = {"A": fa, "B": fb}, {"A": ca, "B": cb}
            dirty = {"A": trunc_a, "B": False}
            acts = {}
            for t in "AB":
                acts[t] = []
                for _ in range(self.rng.randint(1, 4)):
                    acts[t].append("change")
                    if self.rng.random() < 0.25 and \
                            "fsync_mid" not in self.skip:
                        acts[t].append("fsync")
            sched = []
            while acts["A"] or acts["B"]:
                t = self.rng.choice([t for t in "AB" if acts[t]])
                sched.append((t, acts[t].pop(0)))
            order = self.rng.choice(["AB", "BA"])
            puts = []  # who put, in order

            def flush(t, how):
                self.note("  %s on %s" % (how, t))
                if how == "fsync":
                    S.fsync(fds[t])
                else:
                    S.close(fds.pop(t))
                if dirty[t]:
                    puts.append(t)
                    dirty[t] = False
            try:
                for t, act in sched:
                    if act == "change":
                        self.note("  change on %s" % t)
                        self.change(fds[t], bufs[t])
                        dirty[t] = True
                    else:
                        flush(t, "fsync")
                if rnd == self.corrupt_at and ca:
                    ca[self.rng.randrange(len(ca))] ^= 0x40
                    say("== MODEL_CORRUPT: flipped a byte of A's content")
                if ca == cb:
                    self.note("  one more change on B (same content)")
                    data = bytes([0x5a]) * 3
                    S.pwrite(fb, data, len(cb))
                    cb += data
                    dirty["B"] = True
                flush(order[0], "close")
                time.sleep(0.002)
                flush(order[1], "close")
            finally:
                for fd in fds.values():
                    S.close(fd)
            last = bufs[puts[-1]]
            want = sorted([name, name + ".v1", name + ".v2"])
            for m, tag in ((self.a, "A"), (self.b, "B")):
                got = self.names_on(m)
                if got != want:
                    for e in got:
                        d = self.read(m, e)
                        say("  %s on %s: %d bytes, %s" % (
                            e, tag, len(d), "A's content" if d == ca else
                            "B's content" if d == cb else "the base" if
                            d == base else "none of A's, B's, the base"))
                    self.fail("listing on %s (A put %d times, B %d)"
                              % (tag, puts.count("A"), puts.count("B")),
                              want, got)
            v1 = self.read(self.a, name + ".v1")
            v2 = self.read(self.a, name + ".v2")
            self.stats["bytes"] += len(v1) + len(v2)
            if sorted([bytes(v1), bytes(v2)]) != sorted([bytes(ca),
                                                         bytes(cb)]):
                say("A's content: %d bytes, B's: %d; v1: %d, v2: %d"
                    % (len(ca), len(cb), len(v1), len(v2)))
                for v, vn in ((v1, "v1"), (v2, "v2")):
                    for c, cn in ((ca, "A"), (cb, "B")):
                        say("  %s vs %s: first difference at %d"
                            % (vn, cn, first_diff(c, v)))
                self.fail("siblings are not exactly the two writers' "
                          "contents")
            for m, tag in ((self.a, "A"), (self.b, "B")):
                for s, v in ((".v1", v1), (".v2", v2)):
                    self.expect("%s%s on %s" % (name, s, tag), v,
                                self.read(m, name + s))
                    st = S.stat(os.path.join(m, name + s))
                    self.expect("st_size of %s%s" % (name, s), len(v),
                                st.st_size)
                    self.check_blocks(name + s, st, self.cs, v)
            shown = self.read(self.b, name)
            self.expect("%s is the newest sibling (put last)" % name,
                        last, shown)
            sib = S.getxattr(pa, "user.dynamo.siblings")
            self.expect("user.dynamo.siblings", b"2", sib.rstrip(b"\0"))
            try:
                S.close(S.open(pa + ".v1", os.O_WRONLY))
                self.fail("opened %s.v1 for writing" % name)
            except OSError as e:
                self.expect("open %s.v1 for writing" % name,
                            errno.EROFS, e.errno)
            how = self.rng.choices(["rm v2", "rm v1", "mv v1", "mv v2"],
                                   [6, 2, 1, 1])[0]
            on = self.rng.choice([self.a, self.b])
            self.note("  resolve: %s on %s" % (how, "A" if on == self.a
                                                 else "B"))
            kind, k = how.split()
            if kind == "rm":
                S.unlink(os.path.join(on, "%s.%s" % (name, k)))
                base = v1 if k == "v2" else v2
            else:
                S.rename(os.path.join(on, "%s.%s" % (name, k)),
                          os.path.join(on, name))
                base = v1 if k == "v1" else v2
            for m, tag in ((self.a, "A"), (self.b, "B")):
                self.expect("listing on %s after %s" % (tag, how), [name],
                            self.names_on(m))
                self.expect("%s on %s after %s" % (name, tag, how), base,
                            self.read(m, name))
            self.stats[how] += 1
        say("== [C] PASS: %d rounds in %.1f s; %s"
            % (a.rounds, time.monotonic() - t0,
               " ".join("%s=%d" % kv for kv in sorted(self.stats.items()))))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("ops")
    o.add_argument("--dir", required=True)
    o.add_argument("--phase", default="A")
    o.add_argument("--ops", type=int, default=2000)
    o.add_argument("--kill-at", type=float)
    o.add_argument("--nodes", help="the nodes' addresses, in the order "
                   "of the indexes of kill and restart")
    o.add_argument("--restart-at", type=float)
    o.add_argument("--remount", action="store_true")
    o.add_argument("--final-kill", action="store_true")
    s = sub.add_parser("siblings")
    s.add_argument("--a", required=True)
    s.add_argument("--b", required=True)
    s.add_argument("--rounds", type=int, default=10)
    for x in (o, s):
        x.add_argument("--seed", required=True)
        x.add_argument("--chunk", type=int, required=True)
        x.add_argument("--inline", type=int, default=1024)
        x.add_argument("--ctl", action="store_true")
    args = p.parse_args()
    if os.environ.get("MODEL_TRACE") and args.cmd == "ops":
        S.start(os.environ["MODEL_TRACE"], os.path.dirname(args.dir))
    t = Ops(args) if args.cmd == "ops" else Siblings(args)
    try:
        t.run()
    except Failed:
        sys.exit(1)
    except OSError as e:
        try:
            t.fail("unexpected error: %s" % e)
        except Failed:
            pass
        sys.exit(1)


if __name__ == "__main__":
    main()
