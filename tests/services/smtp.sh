#!/usr/bin/env bash
# Starts / stops a throwaway SMTP sink on loopback for the integration tests:
# Debian's aiosmtpd with its Mailbox handler, which accepts every message
# and stores it in a Maildir, except for recipients named to be refused
# (unknown-…, greylist-…, spam-…: see smtp_policy.py).
#
#   tests/services/smtp.sh start RUN_DIR   -> prints two lines:
#                                             127.0.0.1:PORT
#                                             RUN_DIR/smtp/mail   (the Maildir)
#                                           and, with SONGDA_SMTP_TLS=1, a third:
#                                             RUN_DIR/smtp/tls/cert.pem (the CA to trust)
#   tests/services/smtp.sh stop  RUN_DIR
#
# SONGDA_SMTP_TLS=1 (off by default) also offers STARTTLS: a throwaway
# self-signed certificate for CN=127.0.0.1 with subjectAltName IP:127.0.0.1
# is made in RUN_DIR/smtp/tls (openssl), and aiosmtpd gets --tlscert/--tlskey
# with --no-requiretls, so clients may still send without TLS. Whoever runs
# the tests exports the cert's path as SONGDA_TEST_SMTP_CA.
#
# Each accepted message becomes one file in MAILDIR/new/ (written to tmp/
# and renamed, so a reader never sees half a message): the message as
# parsed and re-serialised by Python's email package, with the SMTP envelope
# added as headers X-MailFrom, X-RcptTo (all recipients, ", "-separated)
# and X-Peer. No AUTH; TLS only with SONGDA_SMTP_TLS=1. Needs Debian's python3-aiosmtpd
# (scripts/lib/deps.sh group "services").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

READY_TIMEOUT=30

start() {
  local run_dir=$1 dir port
  local -a tls_args=()
  "$SONGDA_PY" -c 'import aiosmtpd.handlers' 2>/dev/null ||
    svc_die "$SONGDA_PY has no aiosmtpd (scripts/lib/deps.sh: songda_install_deps services)"
  dir=$run_dir/smtp
  [[ -f $dir/pid ]] && svc_die "$dir/pid exists: an SMTP sink already runs from this run dir"
  mkdir -p "$dir/mail/new" "$dir/mail/cur" "$dir/mail/tmp"
  port=$(svc_free_ports 1)
  if [[ ${SONGDA_SMTP_TLS:-0} == 1 ]]; then
    command -v openssl >/dev/null || svc_die "openssl not found (needed for SONGDA_SMTP_TLS=1)"
    mkdir -p "$dir/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:TRUE" \
      -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" >"$dir/tls/openssl.log" 2>&1 ||
      svc_die "openssl could not make a certificate; see $dir/tls/openssl.log"
    tls_args=(--tlscert "$dir/tls/cert.pem" --tlskey "$dir/tls/key.pem" --no-requiretls)
  fi

  # -n: stay root rather than setuid to nobody (who could not write here).
  svc_launch "$dir/pid" "$dir/smtp.log" \
    env PYTHONPATH="$HERE" "$SONGDA_PY" -m aiosmtpd -n -l "127.0.0.1:$port" "${tls_args[@]}" \
    -c smtp_policy.PolicyMailbox "$dir/mail"
  if ! svc_wait_ready smtp "$dir/pid" "$dir/smtp.log" "$READY_TIMEOUT" svc_port_open "$port"; then
    svc_stop "$dir/pid" "$dir/mail" 5
    exit 1
  fi
  if ((${#tls_args[@]} > 0)); then
    printf '127.0.0.1:%s\n%s\n%s\n' "$port" "$dir/mail" "$dir/tls/cert.pem" | tee "$dir/address"
  else
    printf '127.0.0.1:%s\n%s\n' "$port" "$dir/mail" | tee "$dir/address"
  fi
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
