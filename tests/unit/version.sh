#!/bin/bash
# version.sh - what --version prints: cmake/version.cmake writes the git
# revision of the source tree (git describe --always --dirty), "unknown"
# for a tree outside any git checkout (a tarball) and for one unpacked
# inside another project's checkout; every binary prints the version and
# the revision it was built with. Usage: version.sh BUILD_DIR
set -euo pipefail

BUILD=$(cd "${1:?usage: version.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/rtcms-version-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
CHECKS=0
fail() { echo "version.sh: FAILED: $*" >&2; exit 1; }

# revision_of SOURCE_DIR: the revision version.cmake finds there
revision_of() {
	rm -f "$DIR/v.h"
	cmake -DSOURCE_DIR="$1" -DOUTPUT="$DIR/v.h" -DVERSION=9.8.7 -P "$SRC/cmake/version.cmake"
	grep -q '^#define RTCMS_VERSION "9.8.7"$' "$DIR/v.h" || fail "no version in $(cat "$DIR/v.h")"
	sed -n 's/^#define RTCMS_GIT_REVISION "\(.*\)"$/\1/p' "$DIR/v.h"
}

mkdir -p "$DIR/tarball"
[ "$(revision_of "$DIR/tarball")" = unknown ] || fail "a tree without git: $(revision_of "$DIR/tarball")"
CHECKS=$((CHECKS + 1))
if command -v git >/dev/null && git -C "$SRC" rev-parse --show-toplevel >/dev/null 2>&1; then
	want=$(git -C "$SRC" describe --always --dirty)
	[ "$(revision_of "$SRC")" = "$want" ] || fail "the source tree: $(revision_of "$SRC"), git says $want"
	CHECKS=$((CHECKS + 1))
	# a tarball unpacked inside some other checkout does not take its revision
	git init -q "$DIR/other" && mkdir -p "$DIR/other/rtcms-0.1.0"
	[ "$(revision_of "$DIR/other/rtcms-0.1.0")" = unknown ] || fail "a tree inside another checkout"
	CHECKS=$((CHECKS + 1))
else
	echo "version.sh: not a git checkout: the revision of this tree is not checked"
fi

built=$(sed -n 's/^#define RTCMS_GIT_REVISION "\(.*\)"$/\1/p' "$BUILD/generated/rtcms_version.h")
version=$(sed -n 's/^project(rtcms VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
for b in rtcms-agent rtcms-manager rtcms-store rtcmsctl; do
	out=$("$BUILD/$b" --version)
	[ "$out" = "$b $version (git $built)" ] || fail "$b --version: '$out', expected '$b $version (git $built)'"
	CHECKS=$((CHECKS + 1))
	grep -q -- "--version" <<<"$("$BUILD/$b" --help)" || fail "$b --help does not name --version"
	CHECKS=$((CHECKS + 1))
done
echo "version.sh: $CHECKS checks passed"
