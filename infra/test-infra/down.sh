#!/usr/bin/env bash
# Stops the servers infra/test-infra/up.sh started in the background (Kafka and the Mongo-wire
# server), by the pid files in the infra cache. Leaves the machine's own services (PostgreSQL,
# MariaDB, Redis, RabbitMQ) and anything up.sh did not start alone. Kafka's data stays in the
# cache; the Mongo server keeps nothing. See docs/test-infrastructure.md.
set -euo pipefail

cache=${TRADECORE_INFRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tradecore-infra}

# stop NAME MAINCLASS
stop() {
  local pidfile=$cache/run/$1.pid pid _
  if [[ ! -f $pidfile ]]; then
    echo "$1: not started by up.sh"
    return
  fi
  pid=$(<"$pidfile")
  if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null ||
    ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"; then
    echo "$1: not running (stale pid file removed)"
    rm -f "$pidfile"
    return
  fi
  kill "$pid"
  for _ in {1..150}; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    echo "$1: pid $pid did not stop within 30 s and was killed"
  else
    echo "$1: stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop kafka kafka.Kafka
stop mongo TestMongoServer
