#!/bin/sh
# tests/docker/test_image.sh - builds docker/Dockerfile and runs the image for real (scripts/test docker).
#
#   tests/docker/test_image.sh            build, then check the running container; exit 0 if all passed
#
# No Docker engine or image registry is needed: podman builds and runs the image (chroot isolation, runc,
# host network), from a Debian 12 base image imported from a debootstrap rootfs (minbase, slimmed like
# debian:bookworm-slim: no docs, man pages, locales or apt lists). The base is made once (about 30 s)
# and cached as a tarball in $VISIOND_DOCKER_CACHE (default /tmp/visiond-docker-cache).
#
# Checks: the runtime image is at most 170 MB (its size is printed); without a keys file the container
# exits 78 with a message that says how to give one; with a keys file mounted at
# /run/secrets/visiond_keys the daemon runs as a non-root user (id -u in the container and the Uid of
# its process on the host), answers /healthz and /readyz, the image's HEALTHCHECK command passes,
# /v1/detect needs the key and finds the dog in ../shared/images/dog.jpg, /v1/verify matches two photos
# of one person and not of two, and SIGTERM (podman stop) exits 0; `docker compose config` accepts
# docker/compose.yaml when the client has compose, else its essential settings are checked.
# Cold (no base, no cache): 6.5 minutes measured on 2 cores shared with other jobs (load ~15), mostly
# debootstrap, apt-get and the compiler; 1.3 minutes when only the sources changed. podman keeps the image
# and the build stages' layers to build faster next time (each changed source tree adds about 250 MB in
# /var/lib/containers; `podman image prune -f` frees them, and the next build is cold again).
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
shared="$root/../shared"
cache=${VISIOND_DOCKER_CACHE:-${TMPDIR:-/tmp}/visiond-docker-cache}
base=localhost/debian:bookworm
image=localhost/visiond:test
max_bytes=170000000
failed=0
passed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1" >&2; }
check() { # description, then a command: ok if it succeeds
    what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

if [ "$(id -u)" -ne 0 ]; then
    echo "test_image: needs root (debootstrap, and podman building with chroot isolation)" >&2
    exit 1
fi
for tool in podman runc debootstrap curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "test_image: $tool not found (scripts/install-deps installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
name="visiond-test-$$"
# podman reads default ulimits from containers.conf; this machine's cannot be applied by runc.
printf '[containers]\ndefault_ulimits = []\n' > "$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
pod() { podman --runtime runc "$@"; }
cleanup() {
    pod rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# ---- the base image ----
if ! podman image exists "$base"; then
    if [ ! -s "$cache/bookworm-minbase.tar" ]; then
        echo "== debootstrap bookworm minbase (cached in $cache)"
        mkdir -p "$cache"
        rootfs="$cache/rootfs.$$"
        debootstrap --variant=minbase bookworm "$rootfs" >"$cache/debootstrap.log" 2>&1 ||
            { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
        # What debian:bookworm-slim leaves out, also for packages installed later.
        rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
            "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
        find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
        printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
            'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
            'path-include /usr/share/locale/locale.alias' > "$rootfs/etc/dpkg/dpkg.cfg.d/slim"
        tar -C "$rootfs" -cf "$cache/bookworm-minbase.tar.part" .
        mv "$cache/bookworm-minbase.tar.part" "$cache/bookworm-minbase.tar"
        rm -rf "$rootfs"
    fi
    podman import -q "$cache/bookworm-minbase.tar" "$base" >/dev/null
fi

# ---- the image ----
# The build context's models/ must hold the default models (the build has no network to ../shared).
if [ -d "$shared/models" ]; then
    scripts/fetch-models --from "$shared/models" >/dev/null
else
    scripts/fetch-models >/dev/null
fi
echo "== podman build docker/Dockerfile"
start=$(date +%s)
# --format docker: OCI images cannot carry HEALTHCHECK.
if ! pod build --isolation=chroot --network=host --format docker --build-arg BASE="$base" \
        -f docker/Dockerfile -t "$image" . >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    echo "test_image: podman build failed" >&2
    exit 1
fi
echo "built in $(($(date +%s) - start)) s"
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image size: $size bytes ($((size / 1000000)) MB; limit $((max_bytes / 1000000)) MB)"
check "image size $size <= $max_bytes bytes" [ "$size" -le "$max_bytes" ]
user=$(podman image inspect --format '{{.Config.User}}' "$image")
check "image USER is non-root ($user)" sh -c 'u=${1%%:*}; [ -n "$u" ] && [ "$u" != 0 ] && [ "$u" != root ]' sh "$user"
health=$(podman image inspect --format '{{.Config.Healthcheck.Test}}' "$image")
check "image HEALTHCHECK probes /healthz ($health)" sh -c 'case "$1" in *probe*/healthz*) ;; *) exit 1 ;; esac' sh "$health"

check "the runtime image has no compiler, apt lists or docs" pod run --rm --entrypoint sh "$image" -c \
    '! command -v cc && ! command -v gcc && ! command -v cmake && [ -z "$(ls /var/lib/apt/lists)" ] && [ ! -e /usr/share/doc ]'

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# ---- no keys: a clear refusal ----
status=0
pod run --rm --network=host -e VISIOND_PORT="$port" "$image" >"$work/nokeys.out" 2>&1 || status=$?
check "without keys the container exits 78 (got $status)" [ "$status" = 78 ]
check "without keys it says how to give them" grep -q '/run/secrets/visiond_keys' "$work/nokeys.out"
# (podman's complaints that it has no systemd to time the HEALTHCHECK are left out.)
grep -v 'systemd connection' "$work/nokeys.out" | sed 's/^/    | /'


status=0
pod run --rm --network=host -e VISIOND_KEYS=/run/keys "$image" >"$work/missing.out" 2>&1 || status=$?
check "with VISIOND_KEYS naming no file it exits 78 and says so (got $status)" \
    sh -c '[ "$1" = 78 ] && grep -q "/run/keys (VISIOND_KEYS) does not exist" "$2"' sh "$status" "$work/missing.out"

# Commands other than serve need no keys: the offline CLI on a mounted photo.
pod run --rm -v "$shared/images/dog.jpg:/tmp/dog.jpg:ro" "$image" detect /tmp/dog.jpg >"$work/cli.json" 2>/dev/null || true
check "visiond detect in the container finds the dog" grep -q '"label":"dog"' "$work/cli.json"

# ---- with a keys file ----
key=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
printf '# test key\n%s\n' "$key" > "$work/keys"
chmod 644 "$work/keys"
if ! pod run -d --name "$name" --network=host -e VISIOND_PORT="$port" -e VISIOND_WORKERS=2 \
        -v "$work/keys:/run/secrets/visiond_keys:ro" "$image" >/dev/null 2>"$work/run.err"; then
    cat "$work/run.err" >&2
    exit 1
fi
url="http://127.0.0.1:$port"
i=0
until curl -sf "$url/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 120 ] || [ "$(podman inspect --format '{{.State.Running}}' "$name")" != true ]; then
        pod logs "$name" >&2 || true
        echo "test_image: the container did not answer /healthz within 60 s" >&2
        exit 1
    fi
    sleep 0.5
done
ok "/healthz answers 200"
check "/readyz answers 200" curl -sf -o /dev/null "$url/readyz"
check "the image's HEALTHCHECK command passes" pod exec "$name" visiond-entrypoint probe /healthz
check "the probe fails on an answer other than 200 (a 404)" sh -c '! "$@" 2>/dev/null' sh \
    podman --runtime runc exec "$name" visiond-entrypoint probe /no-such-route
uid_in=$(pod exec "$name" id -u)
check "id -u in the container is not 0 ($uid_in)" [ "$uid_in" -ne 0 ]
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
uid_host=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline")
check "the daemon process ($cmdline, pid $pid on the host) runs as uid $uid_host, not 0" \
    sh -c 'case "$1" in "visiond serve"*) ;; *) exit 1 ;; esac; [ "$2" -ne 0 ]' sh "$cmdline" "$uid_host"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/jpeg' \
    --data-binary @"$shared/images/dog.jpg" "$url/v1/detect")
check "/v1/detect without a key is 401 (got $code)" [ "$code" = 401 ]
curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: image/jpeg' \
    --data-binary @"$shared/images/dog.jpg" "$url/v1/detect" >"$work/detect.json" || true
echo "    | $(cut -c1-300 "$work/detect.json")"
check "/v1/detect finds a dog (confidence > 0.5) in dog.jpg" /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if any(x["label"] == "dog" and x["confidence"] > 0.5 for x in d["detections"]) else 1)' "$work/detect.json"
johns="$shared/faces/dlib_johns"
verify() { # image1 image2 -> prints "verified distance"
    curl -sf -H "X-API-Key: $key" -F image1=@"$1" -F image2=@"$2" -F aligned=true "$url/v1/verify" |
        /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["verified"], d["distance"])'
}
same=$(verify "$johns/John_Simm/000288_00470387.jpg" "$johns/John_Simm/000297_00470170.jpg" || echo error)
check "/v1/verify: two photos of John Simm match ($same)" [ "${same%% *}" = True ]
other=$(verify "$johns/John_Simm/000288_00470387.jpg" "$(ls "$johns"/John_Savage/*.jpg | head -1)" || echo error)
check "/v1/verify: John Simm and John Savage do not ($other)" [ "${other%% *}" = False ]

# SIGTERM (podman stop) drains and exits 0.
pod stop -t 20 "$name" >/dev/null 2>&1 || true
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
check "podman stop: the daemon exits 0 (got $code)" [ "$code" = 0 ]
pod logs "$name" 2>&1 | grep -E '"listening on|"stopped' | sed 's/^/    | /' || true

# ---- compose ----
if docker compose version >/dev/null 2>&1; then
    printf 'placeholder-key-0123456789\n' > "$work/keys.compose"
    printf 'placeholder-password\n' > "$work/pg.compose"
    check "docker compose config accepts docker/compose.yaml" \
        env VISIOND_KEYS_FILE="$work/keys.compose" VISIOND_PG_PASSWORD_FILE="$work/pg.compose" \
        docker compose -f docker/compose.yaml config -q
else
    # No compose here: check the parts the set-up relies on.
    check "docker/compose.yaml: replicas with keys secret, models volume, /readyz healthcheck, one postgres gallery; nginx waits for them" \
        /usr/bin/python3 - docker/compose.yaml <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
v, n = doc["services"]["visiond"], doc["services"]["nginx"]
assert v["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}, v["build"]
assert v["secrets"] == ["visiond_keys", "postgres_password"] and "visiond_keys" in doc["secrets"]
# the replicas share one PostgreSQL gallery (issue 15): the postgres service, waited for, its password
# a secret file, never written in the compose file
pg = doc["services"]["postgres"]
assert pg["image"].split(":")[0] == "postgres" and "/" not in pg["image"], pg["image"]
assert v["environment"]["VISIOND_GALLERY"] == "${VISIOND_GALLERY:-postgres://visiond@postgres:5432/visiond}", \
    v["environment"]["VISIOND_GALLERY"]
assert v["environment"]["VISIOND_GALLERY_PASSWORD_FILE"] == "/run/secrets/postgres_password"
assert v["depends_on"]["postgres"]["condition"] == "service_healthy"
assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
assert "POSTGRES_PASSWORD" not in pg["environment"] and pg["secrets"] == ["postgres_password"]
assert "file" in doc["secrets"]["postgres_password"]
assert any(m.endswith(":/var/lib/postgresql/data") for m in pg["volumes"]), pg["volumes"]
assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
assert any(m.endswith(":/opt/visiond/models:ro") for m in v["volumes"]), v["volumes"]
assert v["healthcheck"]["test"] == ["CMD", "visiond-entrypoint", "probe", "/readyz"]
assert n["depends_on"]["visiond"]["condition"] == "service_healthy"
assert "./nginx.conf:/etc/nginx/visiond.conf:ro" in n["volumes"] and "/etc/nginx/visiond.conf" in n["command"]
PY
fi

echo "test_image: $passed checks passed, $failed failed"
[ "$failed" = 0 ]
