#!/usr/bin/env bash
# dynamod --config: a node takes its settings from the file (name, listen
# address, data directory, key, partitions, replication), a flag on the
# command line overrides one of them, and a bad file or value stops it at
# once with exit 2 and a message naming the file and the line.
set -euo pipefail
: "${DYNAMOD:?set DYNAMOD to the dynamod binary}"
: "${DYNAMOCTL:?set DYNAMOCTL to the dynamoctl binary}"

T=$(mktemp -d "${TMPDIR:-/tmp}/dynamod-config.XXXXXX")
PID=
STEP=setup

step() { STEP=$*; printf '== %s\n' "$*" >&2; }
fail() { echo "FAIL ($STEP): $*" >&2; exit 1; }

cleanup() {
	local rc=$?
	set +e
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	if [ "$rc" -ne 0 ] && [ -f "$T/node.log" ]; then
		echo "---- tail of $T/node.log" >&2
		tail -n 30 "$T/node.log" >&2
	fi
	if [ -n "${HARNESS_KEEP:-}" ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS COMMAND...: poll every 20 ms; fail after SECONDS.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for: $*"
		sleep 0.02
	done
}

"$DYNAMOCTL" keygen "$T/cluster.key" > /dev/null

step "a node started with --config takes the file's settings"
cat > "$T/node.conf" <<EOF
# a test node; the name is overridden on the command line
name = from-file
listen = tcp://127.0.0.1:0
data = $T/data
cluster-key = $T/cluster.key
ready-file = $T/ready

partitions = 16
n = 1
r = 1
w = 1
  no-fsync = true
compact-at-start = false
log-level = warn
max-request = 16M
max-connections = 100
idle-timeout = 30
EOF
"$DYNAMOD" --config "$T/node.conf" --name from-flag > "$T/node.log" 2>&1 &
PID=$!
wait_until 20 test -s "$T/ready"
addr=$(cat "$T/ready")
[[ $addr == tcp://127.0.0.1:* ]] || fail "listen address $addr"
ring=$("$DYNAMOCTL" --node "$addr" --cluster-key "$T/cluster.key" ring)
head -n 1 <<<"$ring" | grep -q ', 16 partitions, N=1 R=1 W=1' ||
	fail "ring: $(head -n 1 <<<"$ring")"
grep -q '^  from-flag ' <<<"$ring" || fail "the flag's name is not used: $ring"
grep -q from-file <<<"$ring" && fail "the file's name was used: $ring"
[ -d "$T/data" ] || fail "the file's data directory was not used"
echo hello | "$DYNAMOCTL" --node "$addr" --cluster-key "$T/cluster.key" \
	put k - || fail "put"
got=$("$DYNAMOCTL" --node "$addr" --cluster-key "$T/cluster.key" get k)
[ "$got" = hello ] || fail "get: '$got'"
kill -TERM "$PID"
wait "$PID" || fail "dynamod exited $? on SIGTERM"
PID=

# expect_usage LINE TEXT [FLAGS...]: dynamod with a config file holding
# TEXT (and FLAGS) exits 2 at once, naming the file and LINE (LINE "-":
# the error is the command line's, no file line is named).
expect_usage() {
	local line=$1 text=$2 rc=0 out
	shift 2
	printf '%s\n' "$text" > "$T/bad.conf"
	out=$(timeout 10 "$DYNAMOD" --config "$T/bad.conf" "$@" 2>&1) || rc=$?
	[ "$rc" -eq 2 ] || fail "exit $rc, want 2, for '$text': $out"
	if [ "$line" = - ]; then
		grep -q "bad.conf:" <<<"$out" && fail "names the file: $out"
	else
		grep -qF "$T/bad.conf:$line: " <<<"$out" ||
			fail "no $T/bad.conf:$line: in: $out"
	fi
	printf '   %s\n' "$out" >&2
}

step "bad config files and values exit 2, naming file and line"
good="name = x
listen = tcp://127.0.0.1:0
data = $T/bad-data
cluster-key = $T/cluster.key"
expect_usage 5 "$good
lisen = tcp://127.0.0.1:1"
expect_usage 1 "partitions = 3
$good"
expect_usage 6 "$good

no-fsync = yes"
expect_usage 2 "# x
name"
expect_usage 1 "config = $T/node.conf"
expect_usage 5 "$good
ae-interval = soon" --ae-interval 100
expect_usage - "$good" --workers many
expect_usage - "$good" --name 'not/a/name'
expect_usage - "$good" --bogus
expect_usage - "$good" --max-request 1k
expect_usage - "$good" --max-request 8M
expect_usage - "$good" --max-request 65M
expect_usage - "$good" --max-connections 0
expect_usage - "$good" --idle-timeout 0
expect_usage 5 "$good
idle-timeout = soon"
rc=0
out=$("$DYNAMOD" --config "$T/nope.conf" 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -qF "$T/nope.conf: " <<<"$out" ||
	fail "missing file: exit $rc: $out"
[ -e "$T/bad-data" ] && fail "a refused start made its data directory"
step "--help names the listener's caps and timers"
help=$("$DYNAMOD" --help)
for opt in --max-request --max-connections --idle-timeout; do
	grep -q -- "^  $opt " <<<"$help" || fail "--help does not list $opt"
done
grep -q 'default 4096' <<<"$help" || fail "--help: no connection cap default"
grep -q 'default 60)' <<<"$help" || fail "--help: no idle timeout default"
echo ok
