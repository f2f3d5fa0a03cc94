#!/usr/bin/env bash
# `meson install --destdir` puts the programs, their man pages and the
# systemd unit in place; every page renders without a warning (man -l, or
# groff where man is missing) and names every long option its program's
# --help names (the page is made from --help: one source).
set -euo pipefail
: "${MESON:?set MESON to the meson program}"
: "${BUILD_ROOT:?set BUILD_ROOT to the build directory}"

D=$(mktemp -d "${TMPDIR:-/tmp}/dynamo-install.XXXXXX")
trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$MESON" install -C "$BUILD_ROOT" --no-rebuild --destdir "$D" --quiet \
	> "$D.log" 2>&1 || { cat "$D.log" >&2; rm -f "$D.log"; fail "meson install"; }
rm -f "$D.log"

# installed PATTERN: the one file under $D whose path matches PATTERN.
installed() {
	local f
	f=$(find "$D" -path "$1" \( -type f -o -type l \))
	[ -n "$f" ] && [ "$(wc -l <<<"$f")" = 1 ] ||
		fail "want one installed file like $1, found: '${f}'"
	echo "$f"
}

progs=(dynamod dynamoctl)
[ -z "${DYNAMOFS:-}" ] || progs+=(dynamofs)
installed '*/bin/dynamo-bench' > /dev/null
for p in "${progs[@]}"; do
	bin=$(installed "*/bin/$p")
	[ -x "$bin" ] || fail "$bin is not executable"
	page=$(installed "*/man8/$p.8")
	if command -v man > /dev/null; then
		out=$(MANWIDTH=80 man --warnings -l "$page" 2> "$D/err") ||
			fail "man -l $page failed: $(cat "$D/err")"
	else
		out=$(groff -man -Tutf8 -ww "$page" 2> "$D/err") ||
			fail "groff $page failed: $(cat "$D/err")"
	fi
	[ ! -s "$D/err" ] || fail "$page renders with warnings: $(cat "$D/err")"
	grep -q '^NAME' <<<"$out" && grep -q '^SYNOPSIS' <<<"$out" ||
		fail "$page: no NAME or SYNOPSIS"
	# Every long option of --help is on the page, as typed (ASCII dashes).
	for o in $("$bin" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
		grep -qF -- "$o" <<<"$out" || fail "$page does not name $o"
	done
	echo "$page: $(wc -l <<<"$out") lines" >&2
done

unit=$(installed '*/systemd/system/dynamod@.service')
exec=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ -x "$D$exec" ] || fail "$unit: ExecStart $exec is not the installed dynamod"
grep -q -- '--config /etc/dynamo/%i.conf' "$unit" || fail "$unit: no --config"
echo ok
