#!/usr/bin/env bash
# Starts / stops a throwaway SMTP sink on loopback for the integration tests:
# Debian's aiosmtpd with its Mailbox handler, which accepts every message
# and stores it in a Maildir.
#
#   tests/services/smtp.sh start RUN_DIR   -> prints two lines:
#                                             127.0.0.1:PORT
#                                             RUN_DIR/smtp/mail   (the Maildir)
#   tests/services/smtp.sh stop  RUN_DIR
#
# Each accepted message becomes one file in MAILDIR/new/ (written to tmp/
# and renamed, so a reader never sees half a message): the message as
# parsed and re-serialised by Python's email package, with the SMTP envelope
# added as headers X-MailFrom, X-RcptTo (all recipients, ", "-separated)
# and X-Peer. No AUTH, no TLS. Needs Debian's python3-aiosmtpd
# (scripts/lib/deps.sh group "services").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

READY_TIMEOUT=30

start() {
  local run_dir=$1 dir port
  "$SONGDA_PY" -c 'import aiosmtpd.handlers' 2>/dev/null ||
    svc_die "$SONGDA_PY has no aiosmtpd (scripts/lib/deps.sh: songda_install_deps services)"
  dir=$run_dir/smtp
  [[ -f $dir/pid ]] && svc_die "$dir/pid exists: an SMTP sink already runs from this run dir"
  mkdir -p "$dir/mail/new" "$dir/mail/cur" "$dir/mail/tmp"
  port=$(svc_free_ports 1)

  # -n: stay root rather than setuid to nobody (who could not write here).
  svc_launch "$dir/pid" "$dir/smtp.log" \
    "$SONGDA_PY" -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$dir/mail"
  if ! svc_wait_ready smtp "$dir/pid" "$dir/smtp.log" "$READY_TIMEOUT" svc_port_open "$port"; then
    svc_stop "$dir/pid" "$dir/mail" 5
    exit 1
  fi
  printf '127.0.0.1:%s\n%s\n' "$port" "$dir/mail" | tee "$dir/address"
}

stop() {
  local dir=$1/smtp
  svc_stop "$dir/pid" "$dir/mail" 15
}

(($# == 2)) || svc_usage
case $1 in
  start) mkdir -p "$2" && start "$(cd "$2" && pwd)" ;;
  stop) [[ ! -d $2 ]] || stop "$(cd "$2" && pwd)" ;;
  *) svc_usage ;;
esac
