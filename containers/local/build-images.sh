#!/usr/bin/env bash
# `make images`: the images that the container and `sam local` tests run, built on this machine.
#
# - The stage images (spaceport-sfm:local, spaceport-compress:local) from the real Dockerfiles, for linux/amd64.
#   Their base is the public one (each Dockerfile's BASE_IMAGE default) when this engine can pull it; otherwise a
#   local stand-in made here (containers/local/python), never pushed.
# - The Lambda runtime for `sam local invoke`: public.ecr.aws/lambda/python:3.11-x86_64 when it can be pulled;
#   otherwise the stand-in spaceport-local/lambda-python:3.11 (containers/local/lambda-python), which the tests
#   and the README's commands pass to sam with --invoke-image.
# - moto's server (spaceport-local/moto:<version of .venv's moto>), the local AWS of the `sam local` tests.
# - Not the train image: see containers/local/README.md.
#
# The stand-in bases are built only when missing (`docker rmi` one to rebuild it); the other images are rebuilt every
# time through Docker's layer cache, so they never run stale code (seconds when nothing changed). One build at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."

export DOCKER_BUILDKIT=0 # the classic builder: this machine's docker CLI has no buildx plugin
PLATFORM=linux/amd64
DEBIAN_STANDIN=spaceport-local/debian:bookworm
PYTHON_STANDIN=spaceport-local/python:3.11-bookworm
LAMBDA_PUBLIC=public.ecr.aws/lambda/python:3.11-x86_64
LAMBDA_STANDIN=spaceport-local/lambda-python:3.11
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*"; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
pullable() { have "$1" || timeout 120 docker pull --quiet --platform "$PLATFORM" "$1" >/dev/null 2>&1; }
default_base() { sed -n 's/^ARG BASE_IMAGE=//p' "$1" | head -n 1; }
# docker build, its output kept for when it fails (the classic builder's --quiet would drop the failing step's output).
build() {
  local output
  output=$(mktemp)
  docker build --platform "$PLATFORM" "$@" >"$output" 2>&1 || { tail -n 40 "$output" >&2; rm -f "$output"; exit 1; }
  rm -f "$output"
}

if ! docker info >/dev/null 2>&1; then
  echo "No Docker engine reachable. As root: make docker-engine (installs docker.io and starts dockerd)." >&2
  exit 1
fi

debian_standin() {
  have "$DEBIAN_STANDIN" && return
  [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || { echo "stand-ins are made on amd64 hosts" >&2; exit 1; }
  command -v debootstrap >/dev/null || { echo "debootstrap missing: make docker-engine installs it" >&2; exit 1; }
  local rootfs
  rootfs=$(mktemp -d /var/tmp/spaceport-debian.XXXXXX)
  log "debootstrap bookworm (minbase) from $DEBIAN_MIRROR"
  debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL spaceport.stand-in-for="debian:bookworm-slim" org.opencontainers.image.description="Built here by debootstrap; never pushed"' \
    --change 'CMD ["bash"]' - "$DEBIAN_STANDIN" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
  log "built $DEBIAN_STANDIN"
}

python_standin() {
  have "$PYTHON_STANDIN" && return
  debian_standin
  local context
  context=$(mktemp -d)
  cp containers/local/python/Dockerfile "$context/Dockerfile"
  cp "$CA_BUNDLE" "$context/ca-certificates.crt"
  log "building $PYTHON_STANDIN"
  build --build-arg DEBIAN_IMAGE="$DEBIAN_STANDIN" -t "$PYTHON_STANDIN" "$context"
  rm -rf "$context"
}

# The base for a stage Dockerfile: its public default when pullable, else the stand-in.
stage_base() {
  local public
  public=$(default_base "$1")
  if pullable "$public"; then
    echo "$public"
  else
    python_standin >&2
    echo "$PYTHON_STANDIN"
  fi
}

build_stage() {
  local stage=$1 base
  base=$(stage_base "containers/$stage/Dockerfile")
  log "building spaceport-$stage:local FROM $base"
  build --build-arg BASE_IMAGE="$base" -f "containers/$stage/Dockerfile" -t "spaceport-$stage:local" .
}

moto_server() {
  local version base
  version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("moto"))')
  base=$(stage_base containers/local/moto/Dockerfile)
  log "building spaceport-local/moto:$version FROM $base"
  build --build-arg BASE_IMAGE="$base" --build-arg MOTO_VERSION="$version" \
    -t "spaceport-local/moto:$version" -t spaceport-local/moto:local containers/local/moto
}

lambda_runtime() {
  if pullable "$LAMBDA_PUBLIC"; then
    log "using $LAMBDA_PUBLIC"
    return
  fi
  python_standin
  log "building $LAMBDA_STANDIN"
  build --build-arg BASE_IMAGE="$PYTHON_STANDIN" -t "$LAMBDA_STANDIN" containers/local/lambda-python
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sfm compress lambda moto)
for target in "${targets[@]}"; do
  start=$SECONDS
  case "$target" in
    sfm | compress) build_stage "$target" ;;
    lambda) lambda_runtime ;;
    moto) moto_server ;;
    *) echo "unknown image: $target (sfm, compress, lambda, moto)" >&2; exit 2 ;;
  esac
  log "$target ready in $((SECONDS - start)) s"
done
