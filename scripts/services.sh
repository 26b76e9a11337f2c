#!/usr/bin/env bash
# Starts the real services that development, the integration tests and CI use, without Docker:
#   - Kafka: a single-node KRaft broker (broker + controller in one JVM) built from Apache Kafka's
#     Maven Central jars, on 127.0.0.1:9092 (controller 127.0.0.1:9093);
#   - Redis: the one already answering on 127.0.0.1:6379, or a redis-server started here (AOF on,
#     appendfsync everysec, data in .cache/redis/data, as production runs it);
#   - on request (`up pushgateway redis-exporter`): a Prometheus Pushgateway on 127.0.0.1:9091 (replay
#     progress) and the Redis exporter on 127.0.0.1:9121, from their Debian packages.
# The broker runs with the Prometheus JMX exporter agent (Maven Central) on 127.0.0.1:9404, with the
# rules in deploy/kafka/jmx-exporter.yml.
# Everything it downloads or writes lives under .cache/ (git-ignored). Every command is idempotent.
#
# Usage: scripts/services.sh up|down|status [kafka|redis|pushgateway|redis-exporter]...
#        scripts/services.sh logs [kafka|redis] [-f]
#        scripts/services.sh tools [debian-package...]   (default: kcat)
#        scripts/services.sh env                          (eval "$(scripts/services.sh env)")
#
# Environment:
#   KAFKA_VERSION           broker version, default 4.4.0 (4.x; 3.9.x works too)
#   KAFKA_PORT / KAFKA_CONTROLLER_PORT   default 9092 / 9093
#   TRACESIFT_KAFKA_DATA    data (log.dirs) directory, default .cache/kafka/data
#   KAFKA_HEAP              -Xms/-Xmx of the broker JVM, default 512m
#   KAFKA_START_TIMEOUT / KAFKA_STOP_TIMEOUT   seconds, default 120 / 60
#   REDIS_PORT              default 6379
#   KAFKA_JMX_EXPORTER_PORT broker metrics (JMX exporter agent), default 9404; 0 turns the agent off
#   PUSHGATEWAY_PORT / REDIS_EXPORTER_PORT   default 9091 / 9121
# Clients: `env` prints KAFKA_BROKERS, REDIS_URL and KAFKAJS_NO_PARTITIONER_WARNING=1 (kafkajs 2.x
# otherwise warns about its partitioner change on every producer it creates).
set -euo pipefail

# Newest release that kafkajs 2.2.4 passes test/kafka-smoke.int.test.ts against.
# Keep in step with <kafka.version> in scripts/kafka/pom.xml.
readonly KAFKA_VERSION_DEFAULT=4.4.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly CONF_DIR=$ROOT/scripts/kafka
readonly CACHE=$ROOT/.cache

KAFKA_VERSION=${KAFKA_VERSION:-$KAFKA_VERSION_DEFAULT}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-60}
REDIS_PORT=${REDIS_PORT:-6379}
KAFKA_JMX_EXPORTER_PORT=${KAFKA_JMX_EXPORTER_PORT:-9404}
PUSHGATEWAY_PORT=${PUSHGATEWAY_PORT:-9091}
REDIS_EXPORTER_PORT=${REDIS_EXPORTER_PORT:-9121}
# Served by Maven Central; the agent version the rules in deploy/kafka/jmx-exporter.yml were written for.
readonly JMX_EXPORTER_VERSION=1.0.1

# TRACESIFT_KAFKA_HOME runs a second broker beside the default one (the fault suite's own, with
# its own ports, pid, logs and data); the downloaded jars stay shared.
readonly KAFKA_HOME=${TRACESIFT_KAFKA_HOME:-$CACHE/kafka}
readonly KAFKA_LIBS=$CACHE/kafka/$KAFKA_VERSION/libs
KAFKA_DATA=${TRACESIFT_KAFKA_DATA:-$KAFKA_HOME/data}
[[ $KAFKA_DATA == /* ]] || KAFKA_DATA=$PWD/$KAFKA_DATA
readonly KAFKA_PROPS=$KAFKA_HOME/server.properties
readonly KAFKA_PID_FILE=$KAFKA_HOME/kafka.pid
readonly KAFKA_LOG=$KAFKA_HOME/broker.log
# JVM output before logging is configured (bad flags, missing classes) goes here.
readonly KAFKA_OUT=$KAFKA_HOME/broker.out
readonly REDIS_HOME=$CACHE/redis
# Exists only while a redis-server started by this script runs; holds its pid.
readonly REDIS_OURS=$REDIS_HOME/started-by-services.pid

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A pid that is alive and whose command line contains $2.
pid_matches() {
  local pid=$1 needle=$2
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$needle"
}

wait_for_exit() { # pid timeout-seconds
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Serialises up/down across concurrent callers (two shells, parallel CI steps). fd 9 must not leak
# into the daemons, or they would hold the lock for their whole life.
with_lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/services.lock"
  flock -w 600 9 || die "another scripts/services.sh is still running (lock $CACHE/services.lock)"
}

# ---------------------------------------------------------------- apt

APT_UPDATED=
apt_install() { # package...
  [[ $EUID -eq 0 ]] || die "not root: install with 'sudo apt-get install -y $*'"
  local out
  out=$(mktemp)
  if [[ -z $APT_UPDATED ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$out" 2>&1 || { cat "$out" >&2; rm -f "$out"; die "apt-get update failed"; }
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$out" 2>&1 ||
    { cat "$out" >&2; rm -f "$out"; die "apt-get install $* failed"; }
  rm -f "$out"
}

# The binary that shows a Debian package is installed.
package_binary() {
  case $1 in
    kafkacat) echo kafkacat ;;
    redis-server | redis) echo redis-server ;;
    redis-tools) echo redis-cli ;;
    prometheus-pushgateway) echo prometheus-pushgateway ;;
    prometheus-redis-exporter) echo prometheus-redis-exporter ;;
    *) echo "$1" ;;
  esac
}

cmd_tools() {
  (($#)) || set -- kcat
  local pkg missing=()
  for pkg in "$@"; do
    command -v "$(package_binary "$pkg")" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
}

# ---------------------------------------------------------------- kafka

kafka_major() { echo "${KAFKA_VERSION%%.*}"; }

kafka_pid() { # prints the pid of the broker this script started, if it still runs
  local pid
  [[ -f $KAFKA_PID_FILE ]] || return 1
  pid=$(<"$KAFKA_PID_FILE")
  pid_matches "$pid" "-Dtracesift.kafka.version=" && pid_matches "$pid" "kafka.Kafka" && echo "$pid"
}

kafka_running_version() { # pid
  tr '\0' '\n' <"/proc/$1/cmdline" | sed -n 's/^-Dtracesift\.kafka\.version=//p'
}

kafka_ensure_libs() {
  [[ -f $KAFKA_LIBS/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (Maven 3.8+ is needed to fetch the Kafka jars)"
  command -v java >/dev/null || die "java not found (Kafka ${KAFKA_VERSION} needs Java 17)"
  local tmp=$KAFKA_LIBS.tmp.$$ args=() out
  if [[ $(kafka_major) == 3 ]]; then args+=(-Dkafka.logging=reload4j); fi
  log "downloading Kafka $KAFKA_VERSION jars into ${KAFKA_LIBS#"$ROOT"/}"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # The first run fills ~/.m2 (about 65 MB); later versions and re-downloads are mostly local.
  # Maven's output is shown only when it fails.
  if ! out=$(mvn -B -q -Dstyle.color=never -f "$CONF_DIR/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" \
    -Dkafka.version="$KAFKA_VERSION" "${args[@]}" 2>&1); then
    printf '%s\n' "$out" >&2
    rm -rf "$tmp"
    die "could not download org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after download"; }
  touch "$tmp/.complete"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

# The JMX exporter agent jar (one file, no dependencies), fetched once into .cache/kafka/jmx.
kafka_jmx_agent() {
  local dir=$KAFKA_HOME/jmx jar out
  jar=$dir/jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar
  if [[ ! -f $jar ]]; then
    log "downloading the Prometheus JMX exporter agent $JMX_EXPORTER_VERSION"
    mkdir -p "$dir"
    if ! out=$(mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      "-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION" -DoutputDirectory="$dir" 2>&1); then
      printf '%s\n' "$out" >&2
      die "could not download io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION"
    fi
  fi
  echo "$jar"
}

# Java options shared by the storage tool and the broker: logging backend and its config.
kafka_java_opts() {
  local opts=(-Djava.awt.headless=true "-Dkafka.logs.dir=$KAFKA_HOME")
  if [[ $(kafka_major) == 3 ]]; then
    opts+=("-Dlog4j.configuration=file:$CONF_DIR/log4j.properties")
  else
    opts+=("-Dlog4j2.configurationFile=$CONF_DIR/log4j2.properties")
  fi
  printf '%s\n' "${opts[@]}"
}

kafka_render_props() {
  local line
  mkdir -p "$KAFKA_HOME"
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line//@PORT@/$KAFKA_PORT}
    line=${line//@CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT}
    line=${line//@DATA_DIR@/$KAFKA_DATA}
    printf '%s\n' "$line"
  done <"$CONF_DIR/server.properties" >"$KAFKA_PROPS.tmp"
  mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
}

# Kafka's Uuid format: 16 random bytes, URL-safe base64 without padding, never starting with '-'.
kafka_cluster_id() {
  local file=$KAFKA_HOME/cluster.id id
  if [[ ! -s $file ]]; then
    id=-
    while [[ $id == -* ]]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    echo "$id" >"$file"
  fi
  cat "$file"
}

# Formats the data dir unless it already holds this cluster id and was formatted by this version
# (a newer broker's metadata.version makes an older one refuse to start, and vice versa is messy).
kafka_ensure_storage() {
  local cid marker=$KAFKA_DATA/tracesift-formatted-by out
  cid=$(kafka_cluster_id)
  if [[ -f $KAFKA_DATA/meta.properties ]] && grep -qx "cluster.id=$cid" "$KAFKA_DATA/meta.properties" &&
    [[ -f $marker ]] && [[ $(<"$marker") == "$KAFKA_VERSION" ]]; then
    return 0
  fi
  if [[ -d $KAFKA_DATA ]] && [[ -n $(ls -A "$KAFKA_DATA") ]]; then
    # TRACESIFT_KAFKA_DATA may point anywhere: only ever wipe what a format here produced.
    [[ -f $KAFKA_DATA/meta.properties || -f $marker ]] ||
      die "$KAFKA_DATA is not empty and holds no Kafka data; refusing to wipe it"
    log "reformatting ${KAFKA_DATA#"$ROOT"/} (other cluster id or other Kafka version)"
  fi
  rm -rf "$KAFKA_DATA"
  mkdir -p "$KAFKA_DATA"
  local opts
  mapfile -t opts < <(kafka_java_opts)
  # Static quorum (controller.quorum.voters), so no --standalone.
  if ! out=$(java "${opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
    -t "$cid" -c "$KAFKA_PROPS" 2>&1); then
    printf '%s\n' "$out" >&2
    die "formatting $KAFKA_DATA failed"
  fi
  echo "$KAFKA_VERSION" >"$marker"
}

# Prints why, the log tails, stops a half-started broker (a later `up` must not take it for a
# ready one) and exits.
kafka_fail_start() { # message [pid]
  log "$1; last lines of the broker log:"
  tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
  if [[ -s $KAFKA_OUT ]]; then
    log "JVM output (${KAFKA_OUT#"$ROOT"/}):"
    tail -n 20 "$KAFKA_OUT" >&2
  fi
  if [[ -n ${2:-} ]] && kill -0 "$2" 2>/dev/null; then
    kill -TERM "$2" 2>/dev/null || true
    wait_for_exit "$2" "$KAFKA_STOP_TIMEOUT" || kill -KILL "$2" 2>/dev/null || true
  fi
  rm -f "$KAFKA_PID_FILE"
  exit 1
}

kafka_up() {
  local pid running
  if pid=$(kafka_pid); then
    running=$(kafka_running_version "$pid")
    [[ $running == "$KAFKA_VERSION" ]] ||
      log "warning: Kafka $running is running (pid $pid), not $KAFKA_VERSION; run 'down' first to switch"
    return 0
  fi
  rm -f "$KAFKA_PID_FILE"
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$port" && die "127.0.0.1:$port is already in use by another process (not a broker started by this script)"
  done
  command -v java >/dev/null || die "java not found (Kafka ${KAFKA_VERSION} needs Java 17)"

  kafka_ensure_libs
  kafka_render_props
  # A fresh log per start (the previous one stays as broker.log.prev), so readiness only ever sees
  # this run's lines; a format below logs into it too.
  if [[ -f $KAFKA_LOG ]]; then mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"; fi
  kafka_ensure_storage

  local opts agent=()
  mapfile -t opts < <(kafka_java_opts)
  if ((KAFKA_JMX_EXPORTER_PORT > 0)); then
    port_open "$KAFKA_JMX_EXPORTER_PORT" && die "127.0.0.1:$KAFKA_JMX_EXPORTER_PORT (JMX exporter) is already in use; set KAFKA_JMX_EXPORTER_PORT"
    agent=("-javaagent:$(kafka_jmx_agent)=127.0.0.1:$KAFKA_JMX_EXPORTER_PORT:$ROOT/deploy/kafka/jmx-exporter.yml")
  fi
  # The GC flags are the ones kafka-run-class.sh uses. setsid detaches the broker from this shell's
  # process group; the inner bash writes its own pid and then becomes java, so the pid file is right
  # whether or not setsid had to fork.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID_FILE" \
    java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    "${opts[@]}" "${agent[@]}" "-Dtracesift.kafka.version=$KAFKA_VERSION" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >"$KAFKA_OUT" 2>&1 9>&- &

  # Readiness: the broker logs "Kafka Server started" once it is unfenced and serving; then the
  # client port must accept connections, then a real client must get a group coordinator.
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  pid=
  while :; do
    [[ -n $pid ]] || pid=$(kafka_pid) || pid=
    if [[ -n $pid ]] && grep -q "Kafka Server started" "$KAFKA_LOG" 2>/dev/null && port_open "$KAFKA_PORT"; then
      break
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      kafka_fail_start "Kafka $KAFKA_VERSION exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      kafka_fail_start "Kafka $KAFKA_VERSION not ready after ${KAFKA_START_TIMEOUT}s; stopping it" "$pid"
    fi
    sleep 0.25
  done
  kafka_probe "$pid" "$((deadline - SECONDS))"
  log "kafka $KAFKA_VERSION up on 127.0.0.1:$KAFKA_PORT (pid $pid); client env: eval \"\$(scripts/services.sh env)\""
}

# Client probe (scripts/kafka/ReadyProbe.java, compiled once per version against its jars): waits
# until the group coordinator has loaded, so the first consumer group of a test does not see
# COORDINATOR_LOAD_IN_PROGRESS.
kafka_probe() { # broker-pid seconds-left
  local classes=$KAFKA_HOME/$KAFKA_VERSION/probe src=$CONF_DIR/ReadyProbe.java out
  if [[ ! $classes/ReadyProbe.class -nt $src ]]; then
    rm -rf "$classes"
    out=$(javac -nowarn -d "$classes" -cp "$KAFKA_LIBS/*" "$src" 2>&1) ||
      { printf '%s\n' "$out" >&2; die "could not compile $src"; }
  fi
  local secs=$(($2 > 5 ? $2 : 5))
  # Logging config of neither backend: the client's own chatter stays out of broker.log and is
  # printed only if the probe fails.
  if ! out=$(java -XX:TieredStopAtLevel=1 -Dlog4j2.level=WARN -cp "$KAFKA_LIBS/*:$classes" \
    ReadyProbe "127.0.0.1:$KAFKA_PORT" "$secs" 2>&1 9>&-); then
    printf '%s\n' "$out" | tail -n 20 >&2
    kafka_fail_start "Kafka $KAFKA_VERSION started but its client probe failed; stopping it" "$1"
  fi
}

kafka_down() {
  local pid
  if ! pid=$(kafka_pid); then
    rm -f "$KAFKA_PID_FILE"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for_exit "$pid" "$KAFKA_STOP_TIMEOUT"; then
    log "warning: Kafka (pid $pid) ignored SIGTERM for ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for_exit "$pid" 10 || die "could not stop Kafka (pid $pid)"
  fi
  rm -f "$KAFKA_PID_FILE"
  log "kafka stopped (pid $pid)"
}

kafka_status() {
  local pid
  if pid=$(kafka_pid) && port_open "$KAFKA_PORT"; then
    # The data dir of the running broker, which a later TRACESIFT_KAFKA_DATA may not match.
    local data
    data=$(sed -n 's/^log\.dirs=//p' "$KAFKA_PROPS" 2>/dev/null || true)
    printf 'kafka  up    %-7s pid %-7s 127.0.0.1:%s  data %s\n' \
      "$(kafka_running_version "$pid")" "$pid" "$KAFKA_PORT" "${data#"$ROOT"/}"
  elif [[ -n ${pid:-} ]]; then
    printf 'kafka  starting %-7s pid %-7s 127.0.0.1:%s (port not open yet)\n' \
      "$(kafka_running_version "$pid")" "$pid" "$KAFKA_PORT"
    return 1
  else
    local libs=not-downloaded
    [[ -f $KAFKA_LIBS/.complete ]] && libs=jars-cached
    printf 'kafka  down  %-7s pid -       127.0.0.1:%s  (%s)\n' "$KAFKA_VERSION" "$KAFKA_PORT" "$libs"
    return 1
  fi
}

# ---------------------------------------------------------------- redis

redis_ping() {
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 && IFS= read -r -t 2 line <&3 && printf '%s' "$line") 2>/dev/null) || return 1
  [[ $reply == +PONG* ]]
}

redis_our_pid() {
  local pid
  [[ -f $REDIS_OURS ]] || return 1
  pid=$(<"$REDIS_OURS")
  pid_matches "$pid" "redis-server" && echo "$pid"
}

redis_info() { # field
  command -v redis-cli >/dev/null || return 1
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' | sed -n "s/^$1://p"
}

redis_up() {
  if redis_ping; then
    redis_our_pid >/dev/null || rm -f "$REDIS_OURS"
    return 0
  fi
  rm -f "$REDIS_OURS"
  if ! command -v redis-server >/dev/null; then
    log "redis-server not installed; installing it"
    apt_install redis-server
    # Debian's package may have started its own service on install.
    redis_ping && return 0
  fi
  local data=$REDIS_HOME/data logs=/var/log/redis
  if ! mkdir -p "$logs" 2>/dev/null || [[ ! -w $logs ]]; then logs=$REDIS_HOME; fi
  mkdir -p "$REDIS_HOME" "$data"
  local out
  # As production runs it (deploy/README.md): AOF with an fsync a second, no RDB snapshots.
  if ! out=$(redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly yes --appendfsync everysec --dir "$data" --logfile "$logs/ci.log" --pidfile "$REDIS_HOME/redis.pid" 2>&1 9>&-); then
    printf '%s\n' "$out" >&2
    die "redis-server failed to start"
  fi
  local deadline=$((SECONDS + 30))
  until redis_ping; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$logs/ci.log" >&2 2>/dev/null || true
      die "Redis not answering on 127.0.0.1:$REDIS_PORT after 30s"
    fi
    sleep 0.1
  done
  # The pid file is written once the daemon runs; the ping above proves it does.
  local pid
  pid=$(cat "$REDIS_HOME/redis.pid" 2>/dev/null || redis_info process_id || true)
  echo "$pid" >"$REDIS_OURS"
  echo "$logs/ci.log" >"$REDIS_HOME/log-path"
  log "redis up on 127.0.0.1:$REDIS_PORT (pid $pid, started here)"
}

redis_down() {
  local pid
  if pid=$(redis_our_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    wait_for_exit "$pid" 30 || die "Redis (pid $pid) did not stop"
    log "redis stopped (pid $pid)"
  elif redis_ping; then
    log "redis left running on 127.0.0.1:$REDIS_PORT (not started by this script)"
  fi
  rm -f "$REDIS_OURS"
}

redis_status() {
  if redis_ping; then
    local owner=external pid
    redis_our_pid >/dev/null && owner=started-here
    pid=$(redis_info process_id || echo '?')
    printf 'redis  up    %-7s pid %-7s 127.0.0.1:%s  (%s)\n' "$(redis_info redis_version || echo '?')" "$pid" "$REDIS_PORT" "$owner"
  else
    printf 'redis  down  %-7s pid -       127.0.0.1:%s\n' - "$REDIS_PORT"
    return 1
  fi
}

# ---------------------------------------------------------------- pushgateway, redis-exporter

# Daemons from Debian packages, each with a pid file and a log under .cache/<name>/.
daemon_pid() { # name binary
  local file=$CACHE/$1/pid pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  pid_matches "$pid" "$2" && echo "$pid"
}

daemon_up() { # name binary port args...
  local name=$1 binary=$2 port=$3
  shift 3
  daemon_pid "$name" "$binary" >/dev/null && return 0
  port_open "$port" && die "127.0.0.1:$port is already in use (wanted for $name)"
  command -v "$binary" >/dev/null || cmd_tools "$(basename "$binary")"
  mkdir -p "$CACHE/$name"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$CACHE/$name/pid" "$binary" "$@" \
    </dev/null >"$CACHE/$name/$name.log" 2>&1 9>&- &
  local deadline=$((SECONDS + 30))
  until port_open "$port"; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$CACHE/$name/$name.log" >&2 || true
      die "$name not listening on 127.0.0.1:$port after 30s"
    fi
    sleep 0.2
  done
  log "$name up on 127.0.0.1:$port"
}

daemon_down() { # name binary
  local pid
  if pid=$(daemon_pid "$1" "$2"); then
    kill -TERM "$pid" 2>/dev/null || true
    wait_for_exit "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
    log "$1 stopped (pid $pid)"
  fi
  rm -f "$CACHE/$1/pid"
}

daemon_status() { # name binary port
  local pid
  if pid=$(daemon_pid "$1" "$2") && port_open "$3"; then
    printf '%-6s up    %-7s pid %-7s 127.0.0.1:%s\n' "$1" - "$pid" "$3"
  else
    printf '%-6s down  %-7s pid -       127.0.0.1:%s\n' "$1" - "$3"
    return 1
  fi
}

pushgateway_up() {
  daemon_up pushgateway prometheus-pushgateway "$PUSHGATEWAY_PORT" "--web.listen-address=127.0.0.1:$PUSHGATEWAY_PORT"
}
pushgateway_down() { daemon_down pushgateway prometheus-pushgateway; }
pushgateway_status() { daemon_status pushgateway prometheus-pushgateway "$PUSHGATEWAY_PORT"; }

redis-exporter_up() {
  daemon_up redis-exporter prometheus-redis-exporter "$REDIS_EXPORTER_PORT" \
    "-web.listen-address=127.0.0.1:$REDIS_EXPORTER_PORT" "-redis.addr=redis://127.0.0.1:$REDIS_PORT"
}
redis-exporter_down() { daemon_down redis-exporter prometheus-redis-exporter; }
redis-exporter_status() { daemon_status redis-exporter prometheus-redis-exporter "$REDIS_EXPORTER_PORT"; }

# ---------------------------------------------------------------- commands

cmd_env() {
  cat <<EOF
export PUSHGATEWAY_URL=http://127.0.0.1:$PUSHGATEWAY_PORT
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export KAFKAJS_NO_PARTITIONER_WARNING=1
EOF
}

cmd_logs() {
  local which=kafka follow=
  for arg in "$@"; do
    case $arg in
      kafka | redis) which=$arg ;;
      -f | --follow) follow=1 ;;
      *) die "logs: unknown argument '$arg'" ;;
    esac
  done
  local file=$KAFKA_LOG
  if [[ $which == redis ]]; then
    file=$(cat "$REDIS_HOME/log-path" 2>/dev/null || echo /var/log/redis/ci.log)
  fi
  [[ -f $file ]] || die "no log at $file"
  if [[ -n $follow ]]; then exec tail -n 50 -F "$file"; fi
  tail -n 100 "$file"
}

check_services() { # service names must be kafka, redis, pushgateway or redis-exporter
  local s
  for s in "$@"; do
    [[ $s =~ ^(kafka|redis|pushgateway|redis-exporter)$ ]] || die "unknown service '$s' (kafka, redis, pushgateway, redis-exporter)"
  done
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  local s rc=0
  case $cmd in
    up | down | status)
      (($#)) || set -- kafka redis
      check_services "$@"
      if [[ $cmd == status ]]; then
        # Exits 3 when a service is down, like an LSB init script.
        for s in "$@"; do "${s}_status" || rc=3; done
        return "$rc"
      fi
      with_lock
      # Not inside || or if: errexit must stay in force in the service functions.
      for s in "$@"; do "${s}_${cmd}"; done
      ;;
    logs) cmd_logs "$@" ;;
    tools) cmd_tools "$@" ;;
    env) cmd_env ;;
    *)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
      [[ $cmd == -h || $cmd == --help || $cmd == help ]] || exit 2
      ;;
  esac
}

main "$@"
