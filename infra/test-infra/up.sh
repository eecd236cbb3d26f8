#!/usr/bin/env bash
# Makes every server tradecore's integration tests need reachable on loopback, and says what it
# did, one line per server. Idempotent: run it as often as you like (`npm run test:all` runs it
# before vitest). See docs/test-infrastructure.md.
#
#   PostgreSQL :5432, MariaDB :3306, Redis :6379, RabbitMQ :5672
#       used as they are when listening; a stopped one is started with this machine's own start
#       command; otherwise the run fails naming the missing server.
#   Apache Kafka 3.9 (KRaft, one node) :9092, controller :9093
#   mongo-java-server (MongoDB wire protocol, in memory) :27017
#       used as they are when listening (docker compose, say); otherwise fetched once from Maven
#       Central into the infra cache and started in the background, outliving this script.
#
# Environment:
#   TRADECORE_INFRA_CACHE   cache folder (default ~/.cache/tradecore-infra): jars, Kafka data,
#                           pid files (run/), logs (logs/)
#   TRADECORE_MAVEN_REPO    Maven local repository to fetch through (default: Maven's own, ~/.m2)
#   TRADECORE_INFRA_WAIT    seconds to wait for each server to listen and answer (default 90)
#   JAVA_HOME               the JDK to run Kafka and the Mongo server with (17 or newer)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${TRADECORE_INFRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tradecore-infra}
wait_seconds=${TRADECORE_INFRA_WAIT:-90}
run_dir=$cache/run
log_dir=$cache/logs
mkdir -p "$run_dir" "$log_dir"

kafka_port=9092
kafka_controller_port=9093
mongo_port=27017

pom_value() { sed -n "s:.*<$2>\\(.*\\)</$2>.*:\\1:p" "$1" | head -n 1; }
kafka_version=$(pom_value "$here/kafka/pom.xml" kafka.version)
mongo_server_version=$(pom_value "$here/mongo/pom.xml" mongo-java-server.version)
kafka_home=$cache/kafka-$kafka_version
mongo_home=$cache/mongo-java-server-$mongo_server_version

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
# elapsed T0_MS: the time since T0_MS (from now_ms), as seconds with one decimal.
elapsed() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}
started_at=$(now_ms)
failures=0
ready=()

say() { printf '%-9s %-16s %s\n' "$1" "127.0.0.1:$2" "$3"; }
fail() {
  say "$1" "$2" "failed: $3"
  failures=$((failures + 1))
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_port PORT SECONDS [PID]: until PORT listens; gives up early when PID dies.
wait_port() {
  local deadline=$((SECONDS + $2))
  until listening "$1"; do
    if [[ -n ${3:-} ]] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.2
  done
}

# Serialise concurrent runs (two terminals, say), so neither starts a duplicate server.
if command -v flock >/dev/null; then
  exec 9>"$cache/up.lock"
  flock -w 600 9 || {
    echo "up.sh: another up.sh has held $cache/up.lock for 10 minutes" >&2
    exit 1
  }
fi

# --- Servers this machine runs as system services --------------------------------------------

# system_service NAME PORT WHAT COMMAND: COMMAND is the machine's own start command, empty when
# the server is not installed here.
system_service() {
  local name=$1 port=$2 what=$3 command=$4 t0
  t0=$(now_ms)
  if listening "$port"; then
    say "$name" "$port" "already listening"
    ready+=("$name")
  elif [[ -z $command ]]; then
    fail "$name" "$port" "$what is not listening and is not installed on this machine; start one on 127.0.0.1:$port (e.g. docker compose up -d)"
  else
    # 9>&-: a daemon must not inherit (and hold) the lock of this script.
    if ! bash -c "$command" >>"$log_dir/$name-start.log" 2>&1 </dev/null 9>&-; then
      fail "$name" "$port" "$what did not start: \`$command\` failed (see $log_dir/$name-start.log)"
    elif wait_port "$port" "$wait_seconds"; then
      say "$name" "$port" "started with \`$command\` ($(elapsed "$t0"))"
      ready+=("$name")
    else
      fail "$name" "$port" "$what was started with \`$command\` but did not listen within $wait_seconds s (see $log_dir/$name-start.log)"
    fi
  fi
}

installed() { command -v "$1" >/dev/null 2>&1 || [[ -x $1 ]]; }

pg_start=''
if installed pg_ctlcluster && [[ -d /etc/postgresql ]]; then
  # shellcheck disable=SC2016 # expanded when the command runs, as on the machine page
  pg_start='pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
fi
mariadb_start=''
if installed /usr/sbin/mariadbd && installed start-stop-daemon; then
  mariadb_start='start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd'
fi
redis_start=''
if installed redis-server; then
  redis_start='redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
fi
rabbitmq_start=''
if installed rabbitmq-server; then rabbitmq_start='rabbitmq-server -detached'; fi

system_service postgres 5432 PostgreSQL "$pg_start"
system_service mariadb 3306 MariaDB "$mariadb_start"
system_service redis 6379 Redis "$redis_start"
system_service rabbitmq 5672 RabbitMQ "$rabbitmq_start"

# --- Servers this script runs from the Maven cache ---------------------------------------------

java_bin=java
if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then java_bin=$JAVA_HOME/bin/java; fi
javac_bin=${java_bin%java}javac

# ours PIDFILE MAINCLASS: prints the pid when PIDFILE names a live process running MAINCLASS.
ours() {
  local pid
  [[ -f $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  echo "$pid"
}

# fetched DIR POM: the jars in DIR/lib were copied from exactly this POM.
fetched() { [[ -f $1/lib/.pom.sha256 ]] && [[ $(<"$1/lib/.pom.sha256") == "$(sha256sum <"$2")" ]]; }

# fetch NAME DIR POM: copies POM's runtime dependencies into DIR/lib with Maven (in the background;
# the caller waits).
fetch() {
  local name=$1 dir=$2 pom=$3
  local args=(-q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime
    "-DoutputDirectory=$dir/lib.partial")
  if [[ -n ${TRADECORE_MAVEN_REPO:-} ]]; then args+=("-Dmaven.repo.local=$TRADECORE_MAVEN_REPO"); fi
  rm -rf "$dir/lib.partial"
  mkdir -p "$dir"
  if mvn "${args[@]}" >"$log_dir/$name-fetch.log" 2>&1; then
    sha256sum <"$pom" >"$dir/lib.partial/.pom.sha256"
    rm -rf "${dir:?}/lib"
    mv "$dir/lib.partial" "$dir/lib"
  else
    return 1
  fi
}

need_kafka=false need_mongo=false
kafka_pid=$(ours "$run_dir/kafka.pid" kafka.Kafka || true)
mongo_pid=$(ours "$run_dir/mongo.pid" TestMongoServer || true)
if ! listening "$kafka_port" && [[ -z $kafka_pid ]]; then need_kafka=true; fi
if ! listening "$mongo_port" && [[ -z $mongo_pid ]]; then need_mongo=true; fi
# The Mongo-wire server keeps everything in its heap: one an earlier up.sh started can have filled
# it (OutOfMemoryError) and still hold its port while answering nothing. Ours and not answering:
# stop it and start a fresh one (its data was only test data, and is gone either way).
if [[ -n $mongo_pid ]] && listening "$mongo_port" && [[ -x $root/node_modules/.bin/tsx ]] &&
  ! "$root/node_modules/.bin/tsx" "$here/ready.ts" --timeout=15 mongo >/dev/null 2>&1; then
  echo "mongo     127.0.0.1:$mongo_port  pid $mongo_pid (started by an earlier up.sh) does not answer: restarting it"
  kill "$mongo_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$mongo_pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$mongo_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do listening "$mongo_port" || break; sleep 0.2; done
  mongo_pid='' need_mongo=true
fi

java_problem=''
if $need_kafka || $need_mongo; then
  if ! installed "$java_bin" || ! installed mvn; then
    java_problem="needs java (17+) and mvn on PATH to run from Maven Central artifacts"
  elif ! "$java_bin" -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then
    java_problem="needs Java 17 or newer ($java_bin is $("$java_bin" -version 2>&1 | head -n 1))"
  fi
fi

# Fetch what is missing, Kafka and the Mongo server in parallel, printing progress meanwhile.
fetches=()
if [[ -z $java_problem ]]; then
  if $need_kafka && ! fetched "$kafka_home" "$here/kafka/pom.xml"; then
    echo "fetching Apache Kafka $kafka_version (kafka_2.13 and its runtime dependencies) from Maven Central into $kafka_home ..."
    fetch kafka "$kafka_home" "$here/kafka/pom.xml" &
    fetches+=("kafka:$!")
  fi
  if $need_mongo && ! fetched "$mongo_home" "$here/mongo/pom.xml"; then
    echo "fetching mongo-java-server $mongo_server_version from Maven Central into $mongo_home ..."
    fetch mongo "$mongo_home" "$here/mongo/pom.xml" &
    fetches+=("mongo:$!")
  fi
fi
fetch_failed=()
if ((${#fetches[@]} > 0)); then
  t0=$(now_ms)
  ticks=0
  for entry in "${fetches[@]}"; do
    pid=${entry#*:}
    while kill -0 "$pid" 2>/dev/null; do
      sleep 1
      ticks=$((ticks + 1))
      if ((ticks % 15 == 0)); then echo "  ... still fetching ($(elapsed "$t0"))"; fi
    done
    wait "$pid" || fetch_failed+=("${entry%%:*}")
  done
  echo "  fetched in $(elapsed "$t0")"
fi

# start NAME PIDFILE COMMAND...: runs COMMAND in its own session, detached from this script's
# terminal and output, with its pid in PIDFILE and its output in logs/NAME.log.
start() {
  local name=$1 pidfile=$2
  shift 2
  rm -f "$pidfile"
  echo "--- $(date -Is) up.sh starts: $*" >>"$log_dir/$name.log"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$log_dir/$name.log" 2>&1 </dev/null 9>&- &
  local _
  for _ in {1..50}; do
    [[ -s $pidfile ]] && break
    sleep 0.02
  done
}

kafka_t0=$(now_ms)
kafka_note=''
if ! $need_kafka; then
  :
elif [[ -n $java_problem ]]; then
  fail kafka "$kafka_port" "Apache Kafka is not listening and up.sh $java_problem"
elif [[ " ${fetch_failed[*]} " == *" kafka "* ]]; then
  fail kafka "$kafka_port" "could not fetch Apache Kafka $kafka_version with Maven (see $log_dir/kafka-fetch.log)"
elif listening "$kafka_controller_port"; then
  fail kafka "$kafka_port" "the KRaft controller port 127.0.0.1:$kafka_controller_port is taken by another process"
else
  mkdir -p "$kafka_home/config" "$kafka_home/data"
  sed -e "s:@DATA_DIR@:$kafka_home/data:" -e "s:@BROKER_PORT@:$kafka_port:" \
    -e "s:@CONTROLLER_PORT@:$kafka_controller_port:" "$here/kafka/server.properties" \
    >"$kafka_home/config/server.properties"
  cp "$here/kafka/log4j.properties" "$kafka_home/config/log4j.properties"
  kafka_java=("$java_bin" -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$kafka_home/config/log4j.properties" "-Dkafka.logs.dir=$log_dir"
    -cp "$kafka_home/lib/*")
  if [[ ! -f $kafka_home/data/meta.properties ]]; then
    # A cluster id as Kafka's Uuid.randomUuid makes it: 16 random bytes, URL-safe base64, no
    # leading '-'. Saves a JVM start over `StorageTool random-uuid`.
    cluster_id=-
    while [[ $cluster_id == -* ]]; do
      cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    if "${kafka_java[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
      -c "$kafka_home/config/server.properties" >>"$log_dir/kafka.log" 2>&1; then
      kafka_note='storage formatted, '
    else
      fail kafka "$kafka_port" "formatting the KRaft storage in $kafka_home/data failed (see $log_dir/kafka.log)"
      need_kafka=false
    fi
  fi
  if $need_kafka; then
    start kafka "$run_dir/kafka.pid" "${kafka_java[@]}" kafka.Kafka "$kafka_home/config/server.properties"
    kafka_pid=$(<"$run_dir/kafka.pid")
  fi
fi

mongo_t0=$(now_ms)
if ! $need_mongo; then
  :
elif [[ -n $java_problem ]]; then
  fail mongo "$mongo_port" "the Mongo-wire server is not listening and up.sh $java_problem"
elif [[ " ${fetch_failed[*]} " == *" mongo "* ]]; then
  fail mongo "$mongo_port" "could not fetch mongo-java-server $mongo_server_version with Maven (see $log_dir/mongo-fetch.log)"
else
  source_sha=$(sha256sum <"$here/mongo/TestMongoServer.java")
  if [[ ! -f $mongo_home/classes/.source.sha256 || $(<"$mongo_home/classes/.source.sha256") != "$source_sha" ]]; then
    rm -rf "$mongo_home/classes"
    if "$javac_bin" -d "$mongo_home/classes" -cp "$mongo_home/lib/*" "$here/mongo/TestMongoServer.java" \
      >"$log_dir/mongo-compile.log" 2>&1; then
      echo "$source_sha" >"$mongo_home/classes/.source.sha256"
    else
      fail mongo "$mongo_port" "compiling TestMongoServer.java failed (see $log_dir/mongo-compile.log)"
      need_mongo=false
    fi
  fi
  if $need_mongo; then
    start mongo "$run_dir/mongo.pid" "$java_bin" -Xms64m -Xmx2g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -Dorg.slf4j.simpleLogger.log.de.bwaldvogel.mongo.wire.MongoExceptionHandler=off \
      -cp "$mongo_home/classes:$mongo_home/lib/*" \
      TestMongoServer 127.0.0.1 "$mongo_port"
    mongo_pid=$(<"$run_dir/mongo.pid")
  fi
fi

# java_service NAME PORT PID STARTED_BY_THIS_RUN T0 NOTE: reports what happened to it.
java_service() {
  local name=$1 port=$2 pid=$3 started=$4 t0=$5 note=$6
  if $started; then
    if wait_port "$port" "$wait_seconds" "$pid"; then
      say "$name" "$port" "started (${note}pid $pid, log $log_dir/$name.log, $(elapsed "$t0"))"
      ready+=("$name")
    else
      if kill -0 "$pid" 2>/dev/null; then
        fail "$name" "$port" "started as pid $pid but it did not listen within $wait_seconds s; last lines of $log_dir/$name.log:"
      else
        fail "$name" "$port" "started as pid $pid but it exited; last lines of $log_dir/$name.log:"
      fi
      tail -n 15 "$log_dir/$name.log" | sed 's/^/    /'
    fi
  elif listening "$port"; then
    if [[ -n $pid ]]; then
      say "$name" "$port" "already listening (pid $pid, started by an earlier up.sh)"
    else
      say "$name" "$port" "already listening (not started by up.sh: used as it is)"
    fi
    ready+=("$name")
  elif [[ -n $pid ]]; then
    # An earlier up.sh started it and it is still coming up: wait for it, start no duplicate.
    if wait_port "$port" "$wait_seconds" "$pid"; then
      say "$name" "$port" "already starting (pid $pid, started by an earlier up.sh), now listening"
      ready+=("$name")
    else
      fail "$name" "$port" "pid $pid (started by an earlier up.sh) is not listening; see $log_dir/$name.log"
    fi
  fi
}

java_service kafka "$kafka_port" "$kafka_pid" "$need_kafka" "$kafka_t0" "$kafka_note"
java_service mongo "$mongo_port" "$mongo_pid" "$need_mongo" "$mongo_t0" ''

# --- Every listening server must answer over its protocol -------------------------------------

if ((${#ready[@]} > 0)); then
  if [[ ! -x $root/node_modules/.bin/tsx ]]; then
    echo "up.sh: node_modules/.bin/tsx is missing: run npm install first" >&2
    exit 1
  fi
  if ! "$root/node_modules/.bin/tsx" "$here/ready.ts" --timeout="$wait_seconds" "${ready[@]}"; then
    failures=$((failures + 1))
  fi
fi

if ((failures > 0)); then
  echo "up.sh: $failures server(s) not ready after $(elapsed "$started_at"); cache and logs in $cache" >&2
  exit 1
fi
echo "up.sh: all servers ready in $(elapsed "$started_at") (cache $cache)"
