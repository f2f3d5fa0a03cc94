# Sourced by tests/run and examples/quickstart.sh: installs the Debian
# packages the project needs, only those missing.
DYNAMO_PACKAGES=(
	gcc pkg-config meson ninja-build cmake
	libssl-dev libnng-dev liblmdb-dev libcmocka-dev libfuse3-dev fuse3
	clang iproute2 procps psmisc attr rsync git tar python3
	man-db
)

dynamo_install_deps() {
	local missing=() p
	for p in "${DYNAMO_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local sudo=()
	[ "$(id -u)" -ne 0 ] && sudo=(sudo)
	echo "installing: ${missing[*]}" >&2
	"${sudo[@]}" apt-get update -q >&2 &&
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q \
			--no-install-recommends "${missing[@]}" >&2
}
