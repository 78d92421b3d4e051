# shellcheck shell=bash
# Helpers shared by the test-service scripts in tests/services/ (kafka.sh,
# redis.sh, smtp.sh): free loopback ports, waiting for readiness, and
# stopping a process by the pid it recorded in its run dir.
# Source it; it defines functions only and changes no shell option.

# Debian's interpreter on purpose: python3-aiosmtpd lives there, and a
# python3 earlier in PATH (pyenv, venv) may not have it.
SONGDA_PY=/usr/bin/python3

svc_die() {
  printf '%s: error: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# svc_free_ports N: prints N distinct free TCP ports on 127.0.0.1, one a line.
# The sockets are all held open together, so the ports differ; another
# process may still grab one before the service binds it (rare).
svc_free_ports() {
  "$SONGDA_PY" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}

# svc_port_open PORT: true when something accepts TCP connections on it.
svc_port_open() {
  "$SONGDA_PY" - "$1" <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

# svc_alive PID: true while PID runs. A zombie counts as gone: the services
# are orphans once their start script exits, and PID 1 of a container may
# never reap them.
svc_alive() {
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# svc_launch PIDFILE LOGFILE CMD ARGS...: starts CMD in the background,
# detached from our stdin/stdout/stderr (so that `$(svc.sh start ...)` does
# not wait for it), and records its pid.
svc_launch() {
  local pidfile=$1 logfile=$2
  shift 2
  "$@" </dev/null >>"$logfile" 2>&1 &
  echo "$!" >"$pidfile"
}

# svc_wait_ready NAME PIDFILE LOGFILE TIMEOUT_S CHECK ARGS...: polls CHECK
# until it succeeds. Fails (printing the tail of LOGFILE) when the process
# dies or TIMEOUT_S passes.
svc_wait_ready() {
  local name=$1 pidfile=$2 logfile=$3 timeout=$4 pid deadline
  shift 4
  pid=$(<"$pidfile")
  deadline=$((SECONDS + timeout))
  while ! "$@" >/dev/null 2>&1; do
    if ! svc_alive "$pid"; then
      printf '%s: %s (pid %s) exited before it was ready; last lines of %s:\n' \
        "${0##*/}" "$name" "$pid" "$logfile" >&2
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      printf '%s: %s (pid %s) not ready after %ss; last lines of %s:\n' \
        "${0##*/}" "$name" "$pid" "$timeout" "$logfile" >&2
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# svc_stop PIDFILE MARK [GRACE_S]: sends TERM to the pid in PIDFILE, then
# KILL after GRACE_S (default 15) seconds. It only signals the process when
# its command line contains MARK (the service's run dir), so a stale pid
# file never hits a process that reused the number. Removes PIDFILE.
svc_stop() {
  local pidfile=$1 mark=$2 grace=${3:-15} pid deadline
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && svc_alive "$pid" &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$mark"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while svc_alive "$pid" && ((SECONDS < deadline)); do
      sleep 0.2
    done
    if svc_alive "$pid"; then
      printf '%s: pid %s still running after %ss, sending KILL\n' "${0##*/}" "$pid" "$grace" >&2
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while svc_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}

# svc_usage: the shared `start RUN_DIR | stop RUN_DIR` usage line.
svc_usage() {
  printf 'usage: %s start|stop RUN_DIR\n' "${0##*/}" >&2
  exit 2
}
