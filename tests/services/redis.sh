#!/usr/bin/env bash
# Starts / stops a throwaway Redis server on loopback for the integration
# tests (Debian's redis-server, own port, own directory).
#
#   tests/services/redis.sh start RUN_DIR   -> prints redis://127.0.0.1:PORT/0
#   tests/services/redis.sh stop  RUN_DIR
#
# All state (AOF files, log, pid) lives in RUN_DIR/redis; RDB snapshots are
# off and the AOF is written there, nothing anywhere else. Needs
# redis-server, redis-cli and /usr/bin/python3 (scripts/lib/deps.sh group
# "services").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

READY_TIMEOUT=30

# What our server's command line reads: redis-server rewrites its argv into
# "redis-server HOST:PORT", so the run dir is no longer to be seen there.
redis_mark() {
  printf 'redis-server 127.0.0.1:%s\n' "$1"
}

redis_ready() {
  [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

start() {
  local run_dir=$1 dir port
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    svc_die "redis-server/redis-cli not found (scripts/lib/deps.sh: songda_install_deps services)"
  fi
  dir=$run_dir/redis
  [[ -f $dir/pid ]] && svc_die "$dir/pid exists: a Redis already runs from this run dir"
  mkdir -p "$dir"
  port=$(svc_free_ports 1)
  echo "$port" >"$dir/port"

  # A config file rather than flags, so that nothing of /etc/redis applies.
  cat >"$dir/redis.conf" <<EOF
# Throwaway Redis for tests, written by tests/services/redis.sh.
bind 127.0.0.1
port $port
protected-mode yes
daemonize no
dir $dir
logfile $dir/redis.log
save ""
appendonly yes
appendfsync everysec
databases 16
EOF
  svc_launch "$dir/pid" "$dir/stdout.log" redis-server "$dir/redis.conf"
  if ! svc_wait_ready redis "$dir/pid" "$dir/redis.log" "$READY_TIMEOUT" redis_ready "$port"; then
    svc_stop "$dir/pid" "$(redis_mark "$port")" 5
    exit 1
  fi
  printf 'redis://127.0.0.1:%s/0\n' "$port" | tee "$dir/url"
}

stop() {
  local dir=$1/redis
  [[ -f $dir/port ]] || return 0
  svc_stop "$dir/pid" "$(redis_mark "$(<"$dir/port")")" 15
}

(($# == 2)) || svc_usage
case $1 in
  start) mkdir -p "$2" && start "$(cd "$2" && pwd)" ;;
  stop) [[ ! -d $2 ]] || stop "$(cd "$2" && pwd)" ;;
  *) svc_usage ;;
esac
