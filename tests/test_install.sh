#!/bin/sh
# test_install.sh - `cmake --install` (what `make install` runs) puts the expected files in place, and the
# installed binary runs with the installed configuration (issue 7, acceptance 4):
#   - DESTDIR + --prefix /usr: exactly usr/bin/visiond, the two units, etc/visiond/visiond.conf and the
#     man page; the service's ExecStart names the installed binary;
#   - the installed visiond.conf sets nothing (every line commented out), names every setting of the
#     config table (`visiond serve --print-config` lists them), and its commented values are the real
#     defaults: uncommented, they give the same effective configuration as no file at all;
#   - the installed binary reads the installed file (--print-config) and serves with it: /healthz and a
#     detect on an ephemeral port (models from ./models by flag), exit 0 on SIGTERM;
#   - visiond(8) passes `mandoc -T lint` at warning level (or renders with groff without warnings) and
#     documents every setting.
#
# usage: sh tests/test_install.sh path/to/visiond   (from the project root, as ctest runs it; the build
#        directory is the binary's)
set -u

VISIOND=${1:?usage: sh tests/test_install.sh path/to/visiond}
BUILD=$(cd "$(dirname "$VISIOND")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/visiond-install.XXXXXX") || exit 1
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM
fails=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
S=$T/stage

if ! DESTDIR=$S cmake --install "$BUILD" --prefix /usr >"$T/install.log" 2>&1; then
    cat "$T/install.log"
    fail "cmake --install"
    exit 1
fi
expected="etc/visiond/visiond.conf
usr/bin/visiond
usr/lib/systemd/system/visiond.service
usr/lib/systemd/system/visiond.socket
usr/share/man/man8/visiond.8"
got=$(cd "$S" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
if [ "$got" = "$expected" ]; then ok "installed tree: $(echo "$got" | tr '\n' ' ')"; else fail "installed tree: $got"; fi
[ -x "$S/usr/bin/visiond" ] || fail "usr/bin/visiond is not executable"
grep -qx 'ExecStart=/usr/bin/visiond serve' "$S/usr/lib/systemd/system/visiond.service" &&
    ok "ExecStart=/usr/bin/visiond serve" || fail "ExecStart does not name /usr/bin/visiond"

# ---- the configuration file ----
CONF=$S/etc/visiond/visiond.conf
BIN=$S/usr/bin/visiond
: >"$T/empty.conf"
"$BIN" serve --config "$T/empty.conf" --print-config >"$T/defaults.txt" 2>&1 || fail "print-config with no settings"
keys=$(grep -v '^#' "$T/defaults.txt" | sed -n 's/^\([a-z_][a-z_0-9]*\) *=.*/\1/p')
[ "$(echo "$keys" | wc -l)" -ge 17 ] || fail "print-config lists too few settings: $keys"
missing=""
for k in $keys; do
    grep -Eq "^# $k =( |\$)" "$CONF" || missing="$missing $k"
done
if [ -z "$missing" ]; then ok "visiond.conf names all $(echo "$keys" | wc -l) settings"; else fail "visiond.conf lacks:$missing"; fi
if grep -Eq '^[[:space:]]*[a-z_]+[[:space:]]*=' "$CONF"; then
    fail "visiond.conf sets something: $(grep -E '^[[:space:]]*[a-z_]+[[:space:]]*=' "$CONF" | head -3)"
else
    ok "visiond.conf sets nothing (every setting commented out)"
fi
if "$BIN" serve --config "$CONF" --print-config >"$T/installed.txt" 2>&1 &&
    grep -q "config file: $CONF" "$T/installed.txt"; then
    ok "the installed binary reads the installed config"
else
    fail "print-config with the installed config: $(cat "$T/installed.txt")"
fi
# Uncommented, the documented values must be the defaults (settings defaulting to the core count aside).
sed 's/^# \([a-z_][a-z_0-9]* = \)/\1/' "$CONF" >"$T/uncommented.conf"
if "$BIN" serve --config "$T/uncommented.conf" --print-config >"$T/uncommented.txt" 2>&1; then
    values() { grep -v '^#' "$1" | grep -v '(online cores)' | sed 's/ *#.*//; s/  */ /g'; }
    cores=$(grep '(online cores)' "$T/defaults.txt" | sed 's/ *=.*//')
    diffs=$(values "$T/defaults.txt" >"$T/a"; values "$T/uncommented.txt" | grep -v -x -F -f "$T/a" |
        grep -v -E "^($(echo $cores | tr ' ' '|')) =")
    if [ -z "$diffs" ]; then ok "the commented values are the defaults"; else fail "documented != default: $diffs"; fi
else
    fail "visiond.conf uncommented is not valid: $(cat "$T/uncommented.txt")"
fi

# ---- the installed binary serves with the installed config ----
"$BIN" serve --config "$CONF" --port 0 --models models --workers 1 2>"$T/serve.log" &
PID=$!
port=""
for _ in $(seq 1 600); do
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$T/serve.log" | head -1)
    [ -n "$port" ] || ! kill -0 "$PID" 2>/dev/null && break
    sleep 0.1
done
if [ -n "$port" ] && [ "$(curl -s "http://127.0.0.1:$port/healthz")" = '{"status":"ok"}' ] &&
    curl -sf -H 'Content-Type: image/jpeg' --data-binary @../shared/images/dog.jpg \
        "http://127.0.0.1:$port/v1/detect" | grep -q '"label":"dog"'; then
    ok "installed binary + installed config: /healthz and /v1/detect answer"
else
    fail "installed binary did not serve: $(tail -5 "$T/serve.log")"
fi
kill -TERM "$PID" 2>/dev/null
wait "$PID"
rc=$?
PID=""
[ "$rc" -eq 0 ] && ok "exit 0 on SIGTERM" || fail "exit $rc on SIGTERM"
if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/serve.log"; then
    fail "sanitizer report: $(grep -E -A20 'Sanitizer|runtime error' "$T/serve.log" | head -30)"
fi

# ---- the man page ----
MAN=$S/usr/share/man/man8/visiond.8
if command -v mandoc >/dev/null 2>&1; then
    out=$(mandoc -T lint -W warning "$MAN" 2>&1) && [ -z "$out" ] && ok "mandoc -T lint: no warnings" ||
        fail "mandoc -T lint: $out"
else
    out=$(groff -man -ww -z "$MAN" 2>&1) && [ -z "$out" ] && ok "groff -ww: no warnings (mandoc not installed)" ||
        fail "groff: $out"
fi
man -l "$MAN" 2>/dev/null | grep -q 'VISIOND(8)' && ok "man -l renders it" || fail "man -l does not render visiond.8"
missing=""
for k in $keys; do
    grep -q "^\.BI $k " "$MAN" || missing="$missing $k"
done
if [ -z "$missing" ]; then ok "visiond(8) documents every setting"; else fail "visiond(8) lacks:$missing"; fi
for s in SIGHUP SIGTERM READY=1 LISTEN_FDS /etc/visiond/visiond.conf; do
    grep -q "$s" "$MAN" || fail "visiond(8) does not mention $s"
done

echo "$fails failures"
[ "$fails" -eq 0 ]
