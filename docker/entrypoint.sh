#!/bin/bash
# visiond-entrypoint - the container image's entry point (docker/Dockerfile).
#
#   visiond-entrypoint [serve] [FLAGS...]   visiond serve, after finding the API keys file (the default)
#   visiond-entrypoint probe PATH           exit 0 if GET PATH on the local daemon answers 200, else 1
#                                           (the image's HEALTHCHECK and compose's readiness check)
#   visiond-entrypoint COMMAND ...          any other visiond command (detect, faces, verify, bench, ...)
#
# In the container visiond binds 0.0.0.0 (/etc/visiond/visiond.conf), and visiond serves nothing beyond
# loopback without API keys. The keys file is the first of: $VISIOND_KEYS, a --keys flag,
# /run/secrets/visiond_keys (a mounted file or a compose/swarm secret), /etc/visiond/keys. Without one
# this prints how to give one and exits 78 (EX_CONFIG) before visiond starts, so the message is about
# the container rather than visiond's own flags.
set -euo pipefail

keys_help() {
    cat >&2 <<'MSG'
visiond: no API keys file, so it will not start.
  In this container visiond listens on 0.0.0.0:8080, and it serves nothing beyond loopback without API
  keys: anyone who can reach the port could use it. Give it a file with one key per line (each at
  least 16 printable characters, no spaces), readable by uid 10001:
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' > keys && chmod 644 keys
    docker run -p 8080:8080 -v "$PWD/keys:/run/secrets/visiond_keys:ro" IMAGE
  or a compose/swarm secret named visiond_keys (docker/compose.yaml does this), or
  -e VISIOND_KEYS=/path/inside/the/container. Clients then send "Authorization: Bearer <key>".
MSG
    exit 78
}

# Exports VISIOND_KEYS for visiond, or explains what is missing and exits.
find_keys() {
    local arg
    # Loopback needs no keys (e.g. --network=host with VISIOND_BIND=127.0.0.1): visiond allows it.
    case "${VISIOND_BIND:-}" in 127.*|::1|localhost) return 0 ;; esac
    for arg in "$@"; do
        case "$arg" in --keys|--keys=*) return 0 ;; esac
    done
    if [ -z "${VISIOND_KEYS:-}" ]; then
        for f in /run/secrets/visiond_keys /etc/visiond/keys; do
            if [ -e "$f" ]; then
                export VISIOND_KEYS="$f"
                break
            fi
        done
    fi
    [ -n "${VISIOND_KEYS:-}" ] || keys_help
    if [ ! -e "$VISIOND_KEYS" ]; then
        echo "visiond: API keys file $VISIOND_KEYS (VISIOND_KEYS) does not exist in the container;" \
            "mount it there (docker run -v \"\$PWD/keys:$VISIOND_KEYS:ro\" ...)" >&2
        exit 78
    fi
    if [ ! -r "$VISIOND_KEYS" ]; then
        echo "visiond: API keys file $VISIOND_KEYS is not readable by uid $(id -u);" \
            "make it readable (chmod 644) or owned by uid $(id -u)" >&2
        exit 78
    fi
}

# HTTP/1.0 GET over bash's /dev/tcp: the image has no curl, and needs none.
probe() {
    local path=${1:-/healthz} status
    exec 3<>"/dev/tcp/127.0.0.1/${VISIOND_PORT:-8080}" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$path" >&3
    IFS= read -r -t 5 status <&3 || exit 1
    case "$status" in
    "HTTP/1."?" 200 "*) exit 0 ;;
    *) echo "$path: $status" >&2; exit 1 ;;
    esac
}

# The gallery's PostgreSQL password from a file (a compose/swarm secret, docker/compose.yaml), for libpq
# as PGPASSWORD, so that it is in neither VISIOND_GALLERY's URI nor the compose file.
gallery_password() {
    local f=${VISIOND_GALLERY_PASSWORD_FILE:-}
    [ -n "$f" ] && [ -z "${PGPASSWORD:-}" ] || return 0
    if [ ! -r "$f" ]; then
        echo "visiond: gallery password file $f (VISIOND_GALLERY_PASSWORD_FILE) is missing or not" \
            "readable by uid $(id -u)" >&2
        exit 78
    fi
    PGPASSWORD=$(cat "$f")
    export PGPASSWORD
}

cmd=${1:-serve}
case "$cmd" in
probe)
    shift
    probe "$@"
    ;;
serve|-*)
    if [ "$cmd" = serve ]; then shift || true; fi
    find_keys "$@"
    gallery_password
    exec visiond serve "$@"
    ;;
*)
    gallery_password
    exec visiond "$@"
    ;;
esac
