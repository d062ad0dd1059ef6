#!/bin/bash
# install.sh - `cmake --install` into a temporary prefix: the installed
# files (binaries, librtcms shared and static, headers, pkg-config file,
# CMake package, systemd units naming the installed binaries, example
# configs, bash completion, man pages; rtcms(3) with the headers in
# component dev), then an out-of-tree C program
# built against the prefix with pkg-config and with CMake's
# find_package(rtcms), run; the pkg-config file still right after the
# prefix is moved. Exits 77 (skipped) at the end, the rest checked, when
# the build has no man pages (scdoc missing), and at once in a sanitizer
# build. Usage: install.sh BUILD_DIR
set -euo pipefail

BUILD=$(cd "${1:?usage: install.sh BUILD_DIR}" && pwd)
DIR=$(mktemp -d /tmp/rtcms-install-XXXXXX)
P=$DIR/prefix
CHECKS=0
trap 'rm -rf "$DIR"' EXIT
ok() { CHECKS=$((CHECKS + 1)); }
fail() { echo "install.sh: FAILED: $*" >&2; exit 1; }

# a sanitizer build's librtcms needs its runtime loaded first: a plain
# program cannot use it. The plain build (make test) runs this test.
if grep -qE '^RTCMS_(SANITIZE|TSAN):BOOL=ON$' "$BUILD/CMakeCache.txt"; then
	echo "install.sh: SKIPPED: $BUILD is a sanitizer build (an uninstrumented" \
	     "program cannot load its librtcms); the plain build runs this test"
	exit 77
fi

cmake --install "$BUILD" --prefix "$P" >"$DIR/install.log" 2>&1 ||
	fail "cmake --install: $(tail -20 "$DIR/install.log")"
(cd "$P" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$DIR/files"
has() { grep -qxE -- "$1" "$DIR/files" || fail "not installed: $1 (installed: $(tr '\n' ' ' <"$DIR/files"))"; ok; }

for b in rtcms-agent rtcms-manager rtcms-store rtcmsctl; do
	has "bin/$b"
	grep -qE "^$b [0-9]+\.[0-9]+\.[0-9]+ \(git [^)]+\)$" <<<"$("$P/bin/$b" --version)" ||
		fail "installed $b --version: $("$P/bin/$b" --version)"; ok
done
has 'lib[^/]*(/[^/]+)?/librtcms\.so\.0(\.[0-9.]+)?'
has 'lib[^/]*(/[^/]+)?/librtcms\.so'
has 'lib[^/]*(/[^/]+)?/librtcms\.a'
has 'include/rtcms\.h'
has 'include/rtcms_error\.h'
has 'lib[^/]*(/[^/]+)?/pkgconfig/rtcms\.pc'
has 'lib[^/]*(/[^/]+)?/cmake/rtcms/rtcmsConfig\.cmake'
has 'lib[^/]*(/[^/]+)?/cmake/rtcms/rtcmsTargets\.cmake'
for d in agent manager store; do
	has "lib/systemd/system/rtcms-$d\.service"
	grep -qE "^ExecStart=$P/bin/rtcms-$d --config /etc/rtcms/$d.ini( --key %d/cluster.key)?$" "$P/lib/systemd/system/rtcms-$d.service" ||
		fail "rtcms-$d.service does not start the installed binary: $(grep ExecStart "$P/lib/systemd/system/rtcms-$d.service")"; ok
	has "share/doc/rtcms/examples/$d\.ini"
done
has 'share/bash-completion/completions/rtcmsctl'
has 'lib/sysusers\.d/rtcms\.conf'
bash -c "source '$P/share/bash-completion/completions/rtcmsctl' && complete -p rtcmsctl" >/dev/null ||
	fail "the installed completion does not register"; ok

# a program of a user of librtcms, outside this tree
mkdir -p "$DIR/app"
cat >"$DIR/app/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <rtcms.h>
#include <rtcms_error.h>

int main(void)
{
	/* librtcms without an agent: its error names and texts */
	const char *name = rtcms_errname(RTCMS_ENOENT);
	printf("librtcms says %s: %s\n", name, rtcms_strerror(RTCMS_ENOENT));
	return strcmp(name, "ENOENT") == 0 ? 0 : 1;
}
C
PCDIR=$(dirname "$(find "$P" -name rtcms.pc)")
libdir=$(PKG_CONFIG_PATH=$PCDIR pkg-config --variable=libdir rtcms)
[ "$(cd "$libdir" && pwd -P)" = "$(cd "$PCDIR/.." && pwd -P)" ] ||
	fail "pkg-config's libdir $libdir is not where rtcms.pc lies ($PCDIR/..)"; ok
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$DIR/app/app-pc" "$DIR/app/app.c" \
	$(PKG_CONFIG_PATH=$PCDIR pkg-config --cflags --libs rtcms) -Wl,-rpath,"$libdir" ||
	fail "cc with pkg-config --cflags --libs rtcms"; ok
grep -q "librtcms says ENOENT" <<<"$("$DIR/app/app-pc")" || fail "the pkg-config build does not run"; ok
grep -qF "$libdir/librtcms.so.0" <<<"$(ldd "$DIR/app/app-pc")" || fail "the pkg-config build does not use the installed librtcms: $(ldd "$DIR/app/app-pc")"; ok

cat >"$DIR/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(rtcms_user C)
find_package(rtcms 0.1 REQUIRED)
add_executable(app app.c)
target_link_libraries(app PRIVATE rtcms::rtcms)
add_executable(app-static app.c)
target_link_libraries(app-static PRIVATE rtcms::rtcms_static)
CM
cmake -S "$DIR/app" -B "$DIR/app/build" -DCMAKE_PREFIX_PATH="$P" >"$DIR/cmake.log" 2>&1 ||
	fail "find_package(rtcms) against $P: $(tail -20 "$DIR/cmake.log")"; ok
cmake --build "$DIR/app/build" >>"$DIR/cmake.log" 2>&1 || fail "the CMake build: $(tail -20 "$DIR/cmake.log")"; ok
grep -q "librtcms says ENOENT" <<<"$("$DIR/app/build/app")" || fail "the CMake build (rtcms::rtcms) does not run"; ok
grep -qF "$(cd "$libdir" && pwd)/librtcms.so.0" <<<"$(ldd "$DIR/app/build/app")" || fail "rtcms::rtcms is not the installed librtcms: $(ldd "$DIR/app/build/app")"; ok
grep -q "librtcms says ENOENT" <<<"$("$DIR/app/build/app-static")" || fail "the static build (rtcms::rtcms_static) does not run"; ok
if grep -q librtcms <<<"$(ldd "$DIR/app/build/app-static")"; then fail "rtcms::rtcms_static links librtcms.so"; fi; ok

# relocatable: the prefix moved, pkg-config follows it
mv "$P" "$DIR/moved"
PCDIR=${PCDIR/#$P/$DIR/moved}
read -r inc _ < <(PKG_CONFIG_PATH=$PCDIR pkg-config --cflags rtcms)
[ -f "${inc#-I}/rtcms.h" ] || fail "after a move, pkg-config --cflags rtcms gives $inc"; ok
mv "$DIR/moved" "$P"

# man pages: every binary's and every config file's
if [ ! -f "$BUILD/man/rtcmsctl.1" ]; then
	echo "install.sh: $CHECKS checks passed; SKIPPED the man pages: the build has none" \
	     "(scdoc was not found when $BUILD was configured: apt-get install scdoc," \
	     "or scripts/install-deps, then configure again)"
	exit 77
fi
for page in man1/rtcmsctl.1 man8/rtcms-agent.8 man8/rtcms-manager.8 man8/rtcms-store.8 \
	    man5/rtcms-agent.ini.5 man5/rtcms-manager.ini.5 man5/rtcms-store.ini.5 man3/rtcms.3; do
	has "share/man/$page"
	# rendered where man-db is installed (scdoc's output is roff)
	if command -v man >/dev/null; then
		[ -n "$(MANWIDTH=80 man -l "$P/share/man/$page" 2>/dev/null)" ] || fail "$page does not render"; ok
	fi
done
# the library's page goes with its headers (component dev), not with rtcmsctl
for c in dev tools; do
	cmake --install "$BUILD" --prefix "$DIR/$c" --component "$c" >>"$DIR/install.log" 2>&1 ||
		fail "cmake --install --component $c: $(tail -20 "$DIR/install.log")"
done
[ -f "$DIR/dev/share/man/man3/rtcms.3" ] && [ -f "$DIR/dev/include/rtcms.h" ] ||
	fail "component dev lacks rtcms(3) or rtcms.h: $(cd "$DIR/dev" && find . -type f | tr '\n' ' ')"; ok
[ ! -e "$DIR/tools/share/man/man3/rtcms.3" ] && [ -f "$DIR/tools/share/man/man1/rtcmsctl.1" ] ||
	fail "component tools: $(cd "$DIR/tools" && find . -type f | tr '\n' ' ')"; ok
echo "install.sh: $CHECKS checks passed"
