#!/usr/bin/env bash
# Starts / stops a throwaway single-node Apache Kafka broker (KRaft mode,
# broker and controller in one JVM) on loopback, for the integration tests.
#
#   tests/services/kafka.sh start RUN_DIR   -> prints 127.0.0.1:PORT
#   tests/services/kafka.sh stop  RUN_DIR
#
# The broker's jars come from Maven Central through kafka/pom.xml and are
# cached in ${SONGDA_CACHE:-$HOME/.cache/songda}/kafka-<version>/libs; a
# marker file there (the POM's sha256) makes later runs skip Maven. All
# state (config, data, logs, pid) lives in RUN_DIR/kafka. Needs java >= 17,
# mvn, kcat and /usr/bin/python3 (scripts/lib/deps.sh group "services").
# Environment: SONGDA_CACHE, JAVA (default: java), SONGDA_KAFKA_HEAP
# (default 512m), SONGDA_KAFKA_JVM_OPTS (default "-XX:TieredStopAtLevel=1
# -XX:+UseSerialGC"; empty for the JVM's defaults), SONGDA_KAFKA_LOG_LEVEL
# (see kafka/log4j2.properties).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

POM=$HERE/kafka/pom.xml
LOG4J_CONF=$HERE/kafka/log4j2.properties
READY_TIMEOUT=90

kafka_version() {
  local v
  v=$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$POM" | head -n 1)
  [[ -n $v ]] || svc_die "no <kafka.version> in $POM"
  printf '%s\n' "$v"
}

# ensure_libs: prints the folder holding the broker's jars, fetching them
# with Maven first unless the cache is complete for this very POM.
ensure_libs() {
  local home stamp tmp
  home=${SONGDA_CACHE:-$HOME/.cache/songda}/kafka-$(kafka_version)
  stamp=$(sha256sum "$POM" | cut -d' ' -f1)
  if [[ -f $home/.complete && $(<"$home/.complete") == "$stamp" ]]; then
    printf '%s\n' "$home/libs"
    return 0
  fi
  mkdir -p "$home"
  # One fetch at a time when several test runs start together.
  exec 9>"$home/.lock"
  flock -w 900 9 || svc_die "timed out waiting for the lock on $home"
  if ! [[ -f $home/.complete && $(<"$home/.complete") == "$stamp" ]]; then
    command -v mvn >/dev/null || svc_die "mvn not found (scripts/lib/deps.sh: songda_install_deps services)"
    printf '%s: fetching Kafka %s from Maven into %s\n' "${0##*/}" "$(kafka_version)" "$home" >&2
    tmp=$home/libs.tmp
    rm -rf "$tmp"
    if ! mvn -B -q --no-transfer-progress -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$home/mvn.log" 2>&1; then
      tail -n 40 "$home/mvn.log" >&2
      svc_die "Maven could not fetch the Kafka runtime (full log: $home/mvn.log)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || svc_die "Maven left no kafka_2.13 jar in $tmp"
    rm -rf "$home/libs"
    mv "$tmp" "$home/libs"
    printf '%s\n' "$stamp" >"$home/.complete"
  fi
  exec 9>&-
  printf '%s\n' "$home/libs"
}

# kafka_ready PORT: the broker answers a metadata request and lists itself.
kafka_ready() {
  timeout 10 kcat -b "127.0.0.1:$1" -L -m 2 2>/dev/null | grep -q '^ *1 brokers:'
}

start() {
  local run_dir=$1 dir libs port cport ports cluster_id java=${JAVA:-java}
  command -v "$java" >/dev/null || svc_die "java not found"
  command -v kcat >/dev/null || svc_die "kcat not found (scripts/lib/deps.sh: songda_install_deps services)"
  dir=$run_dir/kafka
  [[ -f $dir/pid ]] && svc_die "$dir/pid exists: a broker already runs from this run dir"
  mkdir -p "$dir/data"
  libs=$(ensure_libs)

  mapfile -t ports < <(svc_free_ports 2)
  port=${ports[0]}
  cport=${ports[1]}

  cat >"$dir/server.properties" <<EOF
# Single-node KRaft broker for tests, written by tests/services/kafka.sh.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF

  # Light JVMs: the machine has 2 cores, shared with the tests themselves.
  # C1 only and the serial GC start faster and burn less CPU; a test broker
  # needs no peak throughput. SONGDA_KAFKA_JVM_OPTS replaces them.
  local -a jvm tuning
  read -r -a tuning <<<"${SONGDA_KAFKA_JVM_OPTS--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
  jvm=("${tuning[@]}" -Djava.awt.headless=true "-Dlog4j2.configurationFile=$LOG4J_CONF"
    "-Dsongda.kafka.log=$dir/broker.log" -cp "$libs/*")
  cluster_id=$("$java" "${jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$dir/format.log") ||
    svc_die "StorageTool random-uuid failed (see $dir/format.log)"
  if ! "$java" "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$dir/server.properties" >>"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2
    svc_die "StorageTool format failed"
  fi

  svc_launch "$dir/pid" "$dir/stdout.log" \
    "$java" "-Xmx${SONGDA_KAFKA_HEAP:-512m}" "${jvm[@]}" kafka.Kafka "$dir/server.properties"
  if ! svc_wait_ready kafka "$dir/pid" "$dir/broker.log" "$READY_TIMEOUT" kafka_ready "$port"; then
    if [[ -s $dir/stdout.log ]]; then
      printf 'last lines of %s:\n' "$dir/stdout.log" >&2
      tail -n 20 "$dir/stdout.log" >&2
    fi
    svc_stop "$dir/pid" "$dir/server.properties" 5
    exit 1
  fi
  printf '127.0.0.1:%s\n' "$port" | tee "$dir/brokers"
}

stop() {
  local dir=$1/kafka
  svc_stop "$dir/pid" "$dir/server.properties" 15
}

(($# == 2)) || svc_usage
case $1 in
  start) mkdir -p "$2" && start "$(cd "$2" && pwd)" ;;
  stop) [[ ! -d $2 ]] || stop "$(cd "$2" && pwd)" ;;
  *) svc_usage ;;
esac
