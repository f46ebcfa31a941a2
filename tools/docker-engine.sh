#!/usr/bin/env bash
# A Docker engine for the container and `sam local` tests (`make docker-engine`; `make test` calls it).
#
# An engine that answers is used as it is. Otherwise, as root on a machine with apt (CI, our machines): Debian's
# docker.io is installed if dockerd is missing, and dockerd started in the background, its log in $DOCKERD_LOG.
# As root with apt, debootstrap is installed too: `make images` makes the stand-in base images with it where
# Docker Hub cannot be reached. Anyone else without an engine is told what to do, and the script exits 1.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/spaceport-dockerd.log}
engine_up() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  engine_up && exit 0
  echo "No Docker engine reachable. Install one and start it (Debian: sudo apt-get install docker.io), or run" \
    "\`sudo make docker-engine\`; then \`make images sam-build\`." >&2
  exit 1
fi

missing=()
command -v dockerd >/dev/null || engine_up || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
engine_up && exit 0

echo "Starting dockerd (log: $DOCKERD_LOG)"
setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
for _ in $(seq 60); do
  engine_up && exit 0
  sleep 0.5
done
echo "dockerd did not come up; the end of $DOCKERD_LOG:" >&2
tail -n 20 "$DOCKERD_LOG" >&2
exit 1
