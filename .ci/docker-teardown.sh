#!/usr/bin/env bash
# Undo what the docker tier left: containers and networks labelled toolgrad.sim=1, then the
# dockerd that .ci/docker-setup.sh started (its pid is in $STATE_DIR/dockerd.pid). An engine
# that was already running before setup is left running. Images are kept (they are a cache).
# Safe to run any number of times, with or without an engine.
set -uo pipefail

STATE_DIR="${TOOLGRAD_CI_STATE:-/tmp/toolgrad-ci}"
LABEL="toolgrad.sim=1"
log() { printf '[docker-teardown] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

if docker info >/dev/null 2>&1; then
  containers="$(docker ps -aq --filter "label=$LABEL")"
  if [ -n "$containers" ]; then
    log "removing containers: $(echo "$containers" | tr '\n' ' ')"
    echo "$containers" | xargs docker rm -f -v >/dev/null
  fi
  networks="$(docker network ls -q --filter "label=$LABEL")"
  if [ -n "$networks" ]; then
    log "removing networks: $(echo "$networks" | tr '\n' ' ')"
    echo "$networks" | xargs docker network rm >/dev/null || true
  fi
fi

pidfile="$STATE_DIR/dockerd.pid"
if [ -f "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    as_root kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd still running after 20 s: killing it"
      as_root kill -KILL "$pid" || true
    fi
  fi
  rm -f "$pidfile"
else
  log "no dockerd started by docker-setup.sh: leaving the engine as it is"
fi
exit 0
