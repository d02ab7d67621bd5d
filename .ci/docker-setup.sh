#!/usr/bin/env bash
# Provision what the docker test tier needs, idempotently:
#   1. a Docker engine (use the running one; else apt-get install docker.io docker-compose
#      debootstrap and start dockerd in the background, pid in $STATE_DIR/dockerd.pid),
#   2. the base image toolgrad-base:bookworm (debootstrap minbase + python3 + python3-venv,
#      imported with `docker import`; reused when present: no image registry is needed),
#   3. the simulator image (`toolgrad sim image --base toolgrad-base:bookworm`).
# Each phase prints how long it took. .ci/docker-teardown.sh undoes 1 (only if we started it).
#
# Environment: TOOLGRAD_CI_STATE (default /tmp/toolgrad-ci), PYTHON (default .venv/bin/python),
# TOOLGRAD_BASE_IMAGE (default toolgrad-base:bookworm), DEBIAN_MIRROR (default: from apt sources).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${TOOLGRAD_CI_STATE:-/tmp/toolgrad-ci}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
BASE_IMAGE="${TOOLGRAD_BASE_IMAGE:-toolgrad-base:bookworm}"
SUITE=bookworm
mkdir -p "$STATE_DIR"

log() { printf '[docker-setup] %s\n' "$*" >&2; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
TOTAL_START="$(now)"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    log "need root for: $*"; return 1; fi
}

engine_up() { docker info >/dev/null 2>&1; }

# --- 1. packages and engine ------------------------------------------------------------------------
install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  if [ "${#missing[@]}" -eq 0 ]; then
    log "packages: already installed"
    return
  fi
  local start; start="$(now)"
  log "packages: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >"$STATE_DIR/apt.log" 2>&1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1 || { tail -20 "$STATE_DIR/apt.log" >&2; return 1; }
  log "packages: done in $(took "$start") s"
}

# Start dockerd with the given extra flags; true once `docker info` answers within 60 s.
try_dockerd() {
  log "dockerd: starting${*:+ with $*} (log: $STATE_DIR/dockerd.log)"
  # setsid + nohup exec in place (a background job leads no process group), so $! is dockerd's
  # pid (sudo's when not root; sudo relays signals): teardown stops it by that pid.
  if [ "$(id -u)" -eq 0 ]; then
    setsid nohup dockerd "$@" >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  else
    sudo -n setsid nohup dockerd "$@" >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  fi
  echo $! >"$STATE_DIR/dockerd.pid"
  for _ in $(seq 1 120); do
    engine_up && return 0
    kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null || break
    sleep 0.5
  done
  log "dockerd did not come up${*:+ with $*}; its last log lines:"
  tail -5 "$STATE_DIR/dockerd.log" >&2 || true
  as_root kill "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null || true
  sleep 1
  rm -f "$STATE_DIR/dockerd.pid"
  return 1
}

start_engine() {
  if engine_up; then
    log "engine: already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    return
  fi
  install_packages
  local start; start="$(now)"
  # Fallbacks for kernels or sandboxes without netfilter or overlayfs.
  try_dockerd ||
    { log "retrying without iptables (containers still publish ports through docker-proxy)"; try_dockerd --iptables=false; } ||
    { log "retrying with the vfs storage driver (slower, but needs no overlayfs)"; try_dockerd --iptables=false --storage-driver=vfs; } ||
    { log "no Docker engine could be started"; return 1; }
  log "engine: up in $(took "$start") s ($(docker info --format '{{.Driver}}' 2>/dev/null) storage)"
}

# --- 2. base image -----------------------------------------------------------------------------------
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  # one-line format: deb [options] URI SUITE COMPONENTS...
  uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v s="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == s) { print $i; exit } }')"
  if [ -z "$uri" ]; then
    # deb822 format: a stanza whose Suites list the plain suite (not -security / -updates only)
    uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$SUITE" '
      /^[[:space:]]*$/ { if (found && u != "") { print u; exit } u = ""; found = 0; next }
      /^URIs:/ { u = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) found = 1 }
      END { if (found && u != "") print u }' | head -1)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

build_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image: $BASE_IMAGE present, reused"
    return
  fi
  command -v debootstrap >/dev/null 2>&1 || install_packages
  local start mirror rootfs
  start="$(now)"
  mirror="$(debian_mirror)"
  rootfs="$STATE_DIR/rootfs"
  as_root rm -rf "$rootfs"
  log "base image: debootstrap --variant=minbase --include=python3,python3-venv $SUITE from $mirror"
  as_root debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$rootfs" "$mirror" \
    >"$STATE_DIR/debootstrap.log" 2>&1 || { tail -20 "$STATE_DIR/debootstrap.log" >&2; return 1; }
  # Package caches are of no use in the image.
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  log "base image: debootstrap done in $(took "$start") s; importing"
  as_root tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
  log "base image: $BASE_IMAGE built in $(took "$start") s"
}

# --- 3. simulator image ------------------------------------------------------------------------------
build_sim_image() {
  local start; start="$(now)"
  log "simulator image: toolgrad sim image --base $BASE_IMAGE"
  (cd "$ROOT" && "$PYTHON" -m benchmarks.cli.app sim image --base "$BASE_IMAGE")
  log "simulator image: done in $(took "$start") s"
}

start_engine
build_base_image
build_sim_image
log "all done in $(took "$TOTAL_START") s"
