#!/usr/bin/env bash
# Local dev/test stack for tapline: a real single-node Apache Kafka (KRaft)
# and a real single-node Elasticsearch, both from Maven Central, no Docker.
#
#   deploy/local/stack.sh up [kafka|es]            start both (or one; reuse running ones), wait until really ready
#   deploy/local/stack.sh down [--wipe] [kafka|es] stop both (or one) by pid; --wipe also deletes their data
#   deploy/local/stack.sh status                   show what runs; exit 0 if both are up, 3 otherwise
#
# Kafka 4.1.2 : 127.0.0.1:9092 (controller 127.0.0.1:9093), runs as the calling user.
# ES 8.19.16  : 127.0.0.1:9200 (transport 127.0.0.1:9300), integ-test distribution;
#               refuses to run as root, so root runs it as the system user tapline-es.
#
# State (pid files, logs, data, the unzipped ES) lives in
# ${TAPLINE_STACK_DIR:-/var/tmp/tapline-stack}: outside the checkout, so it
# survives clean checkouts, and traversable by the ES user. The Kafka jars are
# cached in ${TAPLINE_STACK_CACHE:-/var/tmp/tapline-stack}, shared by instances.
#
# A second, private instance (internal/stacktest.Private: fault tests stop and
# start their own broker and node) is the same script with another state dir
# and other ports: TAPLINE_KAFKA_PORT, TAPLINE_KAFKA_CONTROLLER_PORT,
# TAPLINE_ES_PORT, TAPLINE_ES_TRANSPORT_PORT (defaults above).
#
# Secure mode, TAPLINE_STACK_SECURE=1: Kafka's client listener is SASL_SSL
# (SCRAM-SHA-512, also SCRAM-SHA-256 and PLAIN) and ES has security on, with
# TLS on HTTP (https://) and users in the file realm. A CA, a server
# certificate for 127.0.0.1/localhost and the passwords are generated once
# per state dir into $STATE/secure (ca.crt is what clients trust; the
# *-password files hold one password each). A state dir stays in the mode
# it was first started in until `down --wipe`.
# See deploy/local/README.md for details and measured start-up times.
set -euo pipefail

# ---------------------------------------------------------------- settings --
KAFKA_VERSION=4.1.2             # must match deploy/local/kafka/pom.xml
ES_VERSION=8.19.16
JAVA17=${TAPLINE_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
ES_USER=${TAPLINE_ES_USER:-tapline-es}
KAFKA_PORT=${TAPLINE_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${TAPLINE_KAFKA_CONTROLLER_PORT:-9093}
ES_PORT=${TAPLINE_ES_PORT:-9200}
ES_TRANSPORT_PORT=${TAPLINE_ES_TRANSPORT_PORT:-9300}
SECURE=${TAPLINE_STACK_SECURE:-0}
[[ $SECURE == 1 ]] || SECURE=0
KAFKA_TIMEOUT=90                # seconds from launch until the produce/fetch round trip must succeed
ES_TIMEOUT=180                  # seconds from launch until _cluster/health must be yellow
STOP_TIMEOUT=30                 # seconds between TERM and KILL on down
MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)   # deploy/local
ROOT=$(cd "$HERE/../.." && pwd)                      # repo root (go.mod)
STATE=${TAPLINE_STACK_DIR:-/var/tmp/tapline-stack}
CACHE=${TAPLINE_STACK_CACHE:-/var/tmp/tapline-stack}

KAFKA_LIB=$CACHE/kafka-$KAFKA_VERSION/lib           # jar cache, shared by instances
KAFKA_DIR=$STATE/kafka                              # config, data, log, pid
KAFKA_PID=$KAFKA_DIR/kafka.pid
KAFKA_LOG=$KAFKA_DIR/kafka.log

# Maven's local repository. Maven takes ~ from the passwd entry (Java's
# user.home), not from $HOME, so do the same and pass it explicitly.
M2_REPO=${TAPLINE_M2_REPO:-$(getent passwd "$(id -u)" | cut -d: -f6)/.m2/repository}
ES_ZIP=$M2_REPO/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip
ES_DIR=$STATE/es                                    # owned by the ES user
ES_HOME=$ES_DIR/elasticsearch-$ES_VERSION
ES_PID=$ES_DIR/es.pid                               # written by ES itself (-p)
ES_LAUNCH_LOG=$ES_DIR/launch.log                    # output of bin/elasticsearch -d
ES_LOG=$ES_DIR/logs/tapline-local.log               # server log (cluster.name=tapline-local)
SEC_DIR=$STATE/secure                               # secure mode: CA, server certificate, passwords
MODE=$( ((SECURE)) && echo secure || echo plain)

# ----------------------------------------------------------------- helpers --
now() { echo "${EPOCHREALTIME/,/.}"; }                              # seconds, µs precision
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[$1] ${*:2}"; }
die() { echo "stack.sh: $*" >&2; exit 1; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# port_owner PORT: best-effort description of who listens there.
port_owner() {
	local o
	o=$(ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1)
	echo "${o:-unknown process}"
}

# our_pid NAME PIDFILE: print the pid if the file names a live process that
# really is our service (guards against a recycled pid); otherwise nothing.
our_pid() {
	local pid pattern
	[[ -s $2 ]] || return 0
	pid=$(tr -dc '0-9' <"$2")
	[[ -n $pid ]] || return 0
	case $1 in
	kafka) pattern='kafka\.Kafka' ;;
	es) pattern='org\.elasticsearch' ;;
	esac
	if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$pattern"; then
		echo "$pid"
	fi
}

# close_fds: close every fd above 2 in the current (sub)shell. Used right
# before exec'ing a daemon so it keeps no inherited pipe (a caller waiting for
# EOF on it would hang) and not fd 9, the stack lock.
close_fds() {
	local fd
	for fd in "/proc/$BASHPID/fd"/*; do
		fd=${fd##*/}
		if ((fd > 2)); then eval "exec $fd>&-"; fi
	done
}

# tail_log FILE...: last ~80 lines of each existing file, for failure reports.
tail_log() {
	local f
	for f in "$@"; do
		[[ -f $f ]] || continue
		echo "----- last 80 lines of $f -----"
		tail -n 80 "$f"
	done
	echo "-----"
}

# report_logs SVC FILE...: remember which logs explain SVC's failure; cmd_up
# prints their tails once both parallel start-ups have finished (so the two
# outputs do not interleave).
report_logs() {
	local svc=$1
	shift
	printf '%s\n' "$@" >"$STATE/.failed-$svc"
}

# ------------------------------------------------------------ secure mode --

# ensure_secure: in secure mode, make (once per state dir) a CA, a server
# certificate for 127.0.0.1 and localhost signed by it (PEM, and PKCS#12
# for Kafka), and random passwords: Kafka's "admin" (the broker itself) and
# "tapline" (clients), ES's "admin" (superuser) and "tapline" (role
# tapline_writer), and the PKCS#12 store's. Runs under the lock, before the
# services start.
ensure_secure() {
	((SECURE)) || return 0
	[[ -s $SEC_DIR/server.p12 && -s $SEC_DIR/es-admin.netrc ]] && return 0
	local t0 f
	t0=$(now)
	command -v openssl >/dev/null || die "secure mode needs openssl"
	rm -rf "$SEC_DIR.tmp"
	mkdir -p "$SEC_DIR.tmp" && chmod 755 "$SEC_DIR.tmp" || die "cannot create $SEC_DIR.tmp"
	(
		cd "$SEC_DIR.tmp" || exit 1
		umask 077
		for f in kafka-admin kafka es-admin es keystore; do
			openssl rand -hex 16 >"$f-password" || exit 1
		done
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tapline local stack CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-keyout ca.key -out ca.crt 2>/dev/null &&
			openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null &&
			printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
				"extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext &&
			openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
				-extfile server.ext -out server.crt 2>/dev/null &&
			openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.crt -name server \
				-passout "file:keystore-password" -out server.p12 &&
			# curl reads the ES superuser from here (-u would show the password in ps).
			printf 'machine 127.0.0.1 login admin password %s\n' "$(cat es-admin-password)" >es-admin.netrc &&
			chmod 644 ca.crt server.crt &&
			rm -f server.csr server.ext ca.srl
	) || die "generating the secure-mode certificates and passwords in $SEC_DIR.tmp failed"
	rm -rf "$SEC_DIR" && mv "$SEC_DIR.tmp" "$SEC_DIR" || die "cannot create $SEC_DIR"
	echo "stack.sh: secure mode: CA, server certificate (127.0.0.1, localhost) and passwords made in $SEC_DIR in $(since "$t0")s"
}

# check_mode SVC DIR: a service's data dir stays in the mode (plain or
# secure) it was made in: Kafka's SCRAM users are written when the storage
# is formatted, ES's users and certificates into its config.
check_mode() {
	local svc=$1 file=$2/mode have
	if [[ -s $file ]]; then
		have=$(cat "$file")
	elif [[ $svc == kafka && -f $2/data/meta.properties ]] || [[ $svc == es && -n $(ls -A "$2/data" 2>/dev/null) ]]; then
		have=plain # data made before modes existed
	else
		return 0 # nothing made yet
	fi
	[[ $have == "$MODE" ]] && return 0
	say "$svc" "ERROR: $2 was made in $have mode, this is $MODE mode" \
		"(TAPLINE_STACK_SECURE=$SECURE); run 'down --wipe $svc' first, or use another TAPLINE_STACK_DIR"
	return 1
}

# --------------------------------------------------------------- artifacts --

# Kafka broker jars: every runtime dependency of kafka_2.13 (+ the slf4j
# binding, see pom.xml), copied once. The cache is keyed on the pom's
# checksum, so editing pom.xml re-copies.
fetch_kafka() {
	local stamp want
	want=$(sha256sum "$HERE/kafka/pom.xml" | cut -d' ' -f1)
	stamp=$KAFKA_LIB/.pom.sha256
	if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
		return 0
	fi
	# Instances share the cache: one copies, the others wait and reuse it.
	mkdir -p "$CACHE"
	exec 8>"$CACHE/.fetch-lock"
	flock -w 600 8 || { say kafka "ERROR: could not lock $CACHE/.fetch-lock"; return 1; }
	if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
		exec 8>&-
		return 0
	fi
	say kafka "copying Kafka $KAFKA_VERSION runtime jars from Maven Central into $KAFKA_LIB"
	local t0
	t0=$(now)
	rm -rf "$KAFKA_LIB.tmp"
	if ! mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$M2_REPO" -f "$HERE/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
		"$MVN_DEP_PLUGIN:copy-dependencies" \
		-DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB.tmp" </dev/null >"$STATE/mvn-kafka.log" 2>&1 ||
		[[ ! -f $KAFKA_LIB.tmp/kafka_2.13-$KAFKA_VERSION.jar ]]; then
		say kafka "ERROR: mvn copy-dependencies failed"
		report_logs kafka "$STATE/mvn-kafka.log"
		return 1
	fi
	rm -rf "$KAFKA_LIB" && mv "$KAFKA_LIB.tmp" "$KAFKA_LIB" && echo "$want" >"$stamp" &&
		say kafka "jars copied in $(since "$t0")s"
	exec 8>&-
}

# ES integ-test distribution zip, kept in ~/.m2 like any Maven artifact.
fetch_es() {
	[[ -f $ES_ZIP ]] && return 0
	say es "downloading Elasticsearch $ES_VERSION integ-test-zip from Maven Central"
	local t0
	t0=$(now)
	if ! mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$M2_REPO" "$MVN_DEP_PLUGIN:get" \
		-Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
		-Dtransitive=false </dev/null >"$STATE/mvn-es.log" 2>&1 || [[ ! -f $ES_ZIP ]]; then
		say es "ERROR: mvn dependency:get failed (expected $ES_ZIP)"
		report_logs es "$STATE/mvn-es.log"
		return 1
	fi
	say es "downloaded in $(since "$t0")s"
}

# ------------------------------------------------------------------- Kafka --
start_kafka() {
	local t0 tl pid java_opts prebuild
	t0=$(now) # start of this function: the READY time includes fetch and format
	mkdir -p "$KAFKA_DIR"

	# Compile the readiness checker while the jars are fetched and the broker
	# boots (about 30 s with an empty Go build cache), so `go run` below finds
	# it in the build cache.
	(
		close_fds
		cd "$ROOT"
		exec go build -o /dev/null ./deploy/local/kafkaready
	) </dev/null >"$KAFKA_DIR/kafkaready-build.log" 2>&1 &
	prebuild=$!

	pid=$(our_pid kafka "$KAFKA_PID")
	if [[ -n $pid ]] && port_open $KAFKA_PORT; then
		check_mode kafka "$KAFKA_DIR" || return 1
		say kafka "already running (pid $pid), reusing it"
	elif [[ -n $pid ]]; then
		say kafka "pid $pid is alive but port $KAFKA_PORT does not answer yet; waiting for it"
	else
		if [[ -f $KAFKA_PID ]]; then
			say kafka "removing stale pid file (pid $(cat "$KAFKA_PID") is gone)"
			rm -f "$KAFKA_PID"
		fi
		local p
		for p in $KAFKA_PORT $KAFKA_CONTROLLER_PORT; do
			if port_open "$p"; then
				say kafka "ERROR: port $p is already in use by something that stack.sh did not start ($(port_owner "$p"))"
				return 1
			fi
		done

		fetch_kafka || return 1

		java_opts=(-Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
			-Djava.awt.headless=true
			"-Dlog4j2.configurationFile=$HERE/kafka/log4j2.properties")
		check_mode kafka "$KAFKA_DIR" || return 1
		local listener=PLAINTEXT scram=()
		if ((SECURE)); then
			listener=SASL_SSL
			# On the command line for the few seconds of the format: the
			# tool takes them no other way. Local test passwords only.
			scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$SEC_DIR/kafka-admin-password")]"
				--add-scram "SCRAM-SHA-512=[name=tapline,password=$(cat "$SEC_DIR/kafka-password")]"
				--add-scram "SCRAM-SHA-256=[name=tapline,password=$(cat "$SEC_DIR/kafka-password")]")
		fi
		# Mode 600 before anything is written: in secure mode it holds the
		# admin and keystore passwords (a redirection keeps an existing
		# file's mode).
		(umask 077 && : >"$KAFKA_DIR/server.properties.tmp")
		(
			sed -e "s#@DATA@#$KAFKA_DIR/data#" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
				-e "s#@LISTENER@#$listener#g" "$HERE/kafka/server.properties"
			if ((SECURE)); then
				sed -e "s#@TLS@#$SEC_DIR#g" -e "s#@ADMIN_PASSWORD@#$(cat "$SEC_DIR/kafka-admin-password")#g" \
					-e "s#@CLIENT_PASSWORD@#$(cat "$SEC_DIR/kafka-password")#g" \
					-e "s#@KEYSTORE_PASSWORD@#$(cat "$SEC_DIR/keystore-password")#g" "$HERE/kafka/secure.properties"
			fi
		) >"$KAFKA_DIR/server.properties.tmp" && mv "$KAFKA_DIR/server.properties.tmp" "$KAFKA_DIR/server.properties"

		# Format the storage once (KRaft needs a formatted log dir; static voter,
		# so no --standalone). -g tolerates an already formatted dir. The
		# cluster id is kept in cluster.id; `down --wipe` removes both.
		if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
			if [[ ! -s $KAFKA_DIR/cluster.id ]]; then
				# random-uuid prints the id as its last line (log4j may print before it).
				"$JAVA17/bin/java" "${java_opts[@]}" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool random-uuid \
					2>&1 | tail -n 1 >"$KAFKA_DIR/cluster.id"
				if ! grep -Eq '^[A-Za-z0-9_-]{22}$' "$KAFKA_DIR/cluster.id"; then
					say kafka "ERROR: kafka.tools.StorageTool random-uuid failed"
					mv "$KAFKA_DIR/cluster.id" "$KAFKA_DIR/format.log"
					report_logs kafka "$KAFKA_DIR/format.log"
					return 1
				fi
			fi
			say kafka "formatting $KAFKA_DIR/data (cluster id $(cat "$KAFKA_DIR/cluster.id"))"
			local tf
			tf=$(now)
			if ! "$JAVA17/bin/java" "${java_opts[@]}" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format -g \
				-t "$(cat "$KAFKA_DIR/cluster.id")" -c "$KAFKA_DIR/server.properties" "${scram[@]}" >"$KAFKA_DIR/format.log" 2>&1; then
				say kafka "ERROR: kafka.tools.StorageTool format failed"
				report_logs kafka "$KAFKA_DIR/format.log"
				return 1
			fi
			echo "$MODE" >"$KAFKA_DIR/mode"
			say kafka "formatted in $(since "$tf")s ($MODE mode)"
		fi

		# setsid: own session, so the broker does not get the caller's Ctrl-C.
		# Output goes to the log, other fds are closed (see close_fds). setsid
		# execs in place (a background job is no group leader), so $! is java.
		(
			close_fds
			exec setsid "$JAVA17/bin/java" "${java_opts[@]}" -cp "$KAFKA_LIB/*" \
				kafka.Kafka "$KAFKA_DIR/server.properties"
		) </dev/null >"$KAFKA_LOG" 2>&1 &
		pid=$!
		echo "$pid" >"$KAFKA_PID"
		say kafka "started Kafka $KAFKA_VERSION (pid $pid), log $KAFKA_LOG"
	fi
	tl=$(now) # the readiness timeout counts from here

	# Ready = a produce (acks=all) / fetch round trip through kafka-go.
	wait "$prebuild" || true # a build error shows up again in go run's output
	local left
	left=$(awk -v a="$tl" -v b="$(now)" -v t=$KAFKA_TIMEOUT 'BEGIN { l = t - (b - a); print (l < 5 ? 5 : int(l)) }')
	local secure_args=()
	if ((SECURE)); then
		secure_args=(-ca-file "$SEC_DIR/ca.crt" -sasl SCRAM-SHA-512 -username admin -password-file "$SEC_DIR/kafka-admin-password")
	fi
	if ! (cd "$ROOT" && go run ./deploy/local/kafkaready -brokers "127.0.0.1:$KAFKA_PORT" "${secure_args[@]}" \
		-timeout "${left}s" -pid "$pid" </dev/null 2>&1 | sed -u 's/^/[kafka] /'); then
		if [[ -z $(our_pid kafka "$KAFKA_PID") ]]; then
			say kafka "ERROR: the broker process exited during start-up"
		else
			say kafka "ERROR: not ready within ${KAFKA_TIMEOUT}s"
		fi
		report_logs kafka "$KAFKA_LOG"
		return 1
	fi
	say kafka "READY in $(since "$t0")s"
}

# ----------------------------------------------------------- Elasticsearch --

prepare_es() {
	if [[ $EUID -eq 0 ]]; then
		# ES refuses to start as root ("can not run elasticsearch as root").
		if ! id "$ES_USER" >/dev/null 2>&1; then
			say es "creating system user $ES_USER"
			useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER" || return 1
		fi
	elif [[ -d $ES_DIR && ! -O $ES_DIR ]]; then
		say es "ERROR: $ES_DIR belongs to $(stat -c %U "$ES_DIR") (made by a root run). Run as root," \
			"or use another TAPLINE_STACK_DIR when running as $(id -un)."
		return 1
	fi

	mkdir -p "$ES_DIR" || return 1
	if [[ ! -x $ES_HOME/bin/elasticsearch ]]; then
		fetch_es || return 1
		say es "unzipping $ES_ZIP"
		local t0
		t0=$(now)
		rm -rf "$ES_DIR/unzip.tmp"
		unzip -q "$ES_ZIP" -d "$ES_DIR/unzip.tmp" || return 1
		mv "$ES_DIR/unzip.tmp/elasticsearch-$ES_VERSION" "$ES_HOME" || return 1
		rmdir "$ES_DIR/unzip.tmp"
		say es "unzipped in $(since "$t0")s"
	fi
	mkdir -p "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp" || return 1
	check_mode es "$ES_DIR" || return 1
	if ((SECURE)); then
		configure_es_security || return 1
	fi
	echo "$MODE" >"$ES_DIR/mode"
	if [[ $EUID -eq 0 ]]; then
		# The ES user must write config/ (keystore), data, logs, tmp and the pid file,
		# and must be able to reach them (not possible under /root, for instance).
		chown -R "$ES_USER:" "$ES_DIR" || return 1
		if ! runuser -u "$ES_USER" -- test -w "$ES_DIR"; then
			say es "ERROR: user $ES_USER cannot reach $ES_DIR; put TAPLINE_STACK_DIR somewhere" \
				"every user can traverse (e.g. under /var/tmp)"
			return 1
		fi
	fi
}

# configure_es_security: secure mode. ES reads its certificates only from
# its config dir; the users go into the file realm (config/users), made
# with bin/elasticsearch-users, which reads the password from stdin. The
# role tapline_writer is what the analyzer and report need, no more.
configure_es_security() {
	local conf=$ES_HOME/config user pwfile role
	mkdir -p "$conf/certs" && cp "$SEC_DIR/ca.crt" "$SEC_DIR/server.crt" "$SEC_DIR/server.key" "$conf/certs/" || return 1
	# The node presents its certificate and the CA, as a self-configured
	# Elasticsearch does, so clients can trust it by the CA's fingerprint
	# (--es-ca-fingerprint) as well as by the CA file.
	cat "$SEC_DIR/server.crt" "$SEC_DIR/ca.crt" >"$conf/certs/server-chain.crt" || return 1
	cat >"$conf/roles.yml" <<-'EOF'
		# Written by deploy/local/stack.sh (secure mode). What tapline needs:
		# analyze installs its index template and bulk-creates pair documents
		# in a data stream (auto-created); report reads them.
		tapline_writer:
		  cluster: [monitor, manage_index_templates]
		  indices:
		    - names: ["tapline-*"]
		      privileges: [create_doc, create_index, auto_configure, read, view_index_metadata]
	EOF
	for user in admin tapline; do
		if grep -q "^$user:" "$conf/users" 2>/dev/null; then
			continue
		fi
		pwfile=$SEC_DIR/es-password role=tapline_writer
		[[ $user == admin ]] && pwfile=$SEC_DIR/es-admin-password role=superuser
		if ! printf '%s\n%s\n' "$(cat "$pwfile")" "$(cat "$pwfile")" |
			ES_JAVA_HOME="$JAVA17" "$ES_HOME/bin/elasticsearch-users" useradd "$user" -r "$role" >"$ES_DIR/users.log" 2>&1; then
			say es "ERROR: bin/elasticsearch-users useradd $user failed"
			report_logs es "$ES_DIR/users.log"
			return 1
		fi
	done
	say es "secure mode: TLS certificates and users admin (superuser) and tapline (tapline_writer) in $conf"
}

# es_curl, es_base: how to reach ES: in secure mode https, the local CA and
# the admin user (from a netrc file, not the command line).
es_curl() {
	if ((SECURE)); then
		curl --cacert "$SEC_DIR/ca.crt" --netrc-file "$SEC_DIR/es-admin.netrc" "$@"
	else
		curl "$@"
	fi
}
es_base() { if ((SECURE)); then echo "https://127.0.0.1:$ES_PORT"; else echo "http://127.0.0.1:$ES_PORT"; fi; }

# es_health: 0 when _cluster/health is yellow/green AND the response carries
# the genuine-product header that go-elasticsearch v8 checks.
es_health() {
	local hdr
	hdr=$(es_curl -s -m 10 -o /dev/null -D - \
		"$(es_base)/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null) || return 1
	grep -q '^HTTP/1.1 200' <<<"$hdr" || return 1
	grep -qi '^x-elastic-product: *Elasticsearch' <<<"$hdr"
}

start_es() {
	local t0 tl pid launcher
	t0=$(now) # start of this function: the READY time includes download and unzip

	pid=$(our_pid es "$ES_PID")
	if [[ -n $pid ]] && port_open $ES_PORT; then
		check_mode es "$ES_DIR" || return 1
		say es "already running (pid $pid), reusing it"
	elif [[ -n $pid ]]; then
		say es "pid $pid is alive but port $ES_PORT does not answer yet; waiting for it"
	else
		if [[ -f $ES_PID ]]; then
			say es "removing stale pid file (pid $(cat "$ES_PID") is gone)"
			rm -f "$ES_PID"
		fi
		local p
		for p in $ES_PORT $ES_TRANSPORT_PORT; do
			if port_open "$p"; then
				say es "ERROR: port $p is already in use by something that stack.sh did not start ($(port_owner "$p"))"
				return 1
			fi
		done

		prepare_es || return 1
		local security=(-E xpack.security.enabled=false)
		if ((SECURE)); then
			security=(-E xpack.security.enabled=true
				-E xpack.security.http.ssl.enabled=true
				-E xpack.security.http.ssl.key=certs/server.key
				-E xpack.security.http.ssl.certificate=certs/server-chain.crt
				-E xpack.security.http.ssl.certificate_authorities=certs/ca.crt)
		fi
		# ES appends to its log; keep one previous run so a failure report
		# shows only this start.
		[[ -f $ES_LOG ]] && mv -f "$ES_LOG" "$ES_LOG.prev"

		# -d: daemonize once started; -p: ES writes (and on exit removes) its pid file.
		# The launcher stays in the foreground until the node has started, so
		# it runs in the background here and the wait loop below watches it.
		(
			close_fds
			cd "$ES_DIR"
			if [[ $EUID -eq 0 ]]; then set -- runuser -u "$ES_USER" --; else set --; fi
			exec setsid "$@" env \
				ES_JAVA_HOME="$JAVA17" \
				ES_JAVA_OPTS="-Xms512m -Xmx512m" \
				ES_TMPDIR="$ES_DIR/tmp" \
				"$ES_HOME/bin/elasticsearch" -d -p "$ES_PID" \
				-E cluster.name=tapline-local \
				-E node.name=es-1 \
				-E discovery.type=single-node \
				-E network.host=127.0.0.1 \
				-E http.port=$ES_PORT \
				-E transport.port=$ES_TRANSPORT_PORT \
				-E path.data="$ES_DIR/data" \
				-E path.logs="$ES_DIR/logs" \
				"${security[@]}" \
				-E cluster.routing.allocation.disk.threshold_enabled=false \
				-E action.destructive_requires_name=false
		) </dev/null >"$ES_LAUNCH_LOG" 2>&1 &
		launcher=$!
		tl=$(now)
		say es "starting Elasticsearch $ES_VERSION as user $(if [[ $EUID -eq 0 ]]; then echo "$ES_USER"; else id -un; fi)," \
			"logs $ES_LAUNCH_LOG and $ES_LOG"
	fi

	# Ready = _cluster/health?wait_for_status=yellow answers 200 with the
	# X-Elastic-Product header.
	while ! es_health; do
		if [[ -n ${launcher:-} ]] && ! kill -0 "$launcher" 2>/dev/null; then
			# The launcher has exited: fine if it daemonized (pid file written),
			# fatal if it failed.
			if ! wait "$launcher"; then
				say es "ERROR: bin/elasticsearch exited with an error"
				report_logs es "$ES_LAUNCH_LOG" "$ES_LOG"
				return 1
			fi
			launcher=
		fi
		if [[ -z ${launcher:-} && -z $(our_pid es "$ES_PID") ]]; then
			say es "ERROR: Elasticsearch is not running (no live pid in $ES_PID)"
			report_logs es "$ES_LAUNCH_LOG" "$ES_LOG"
			return 1
		fi
		if (($(awk -v a="${tl:-$t0}" -v b="$(now)" -v t=$ES_TIMEOUT 'BEGIN { print (b - a > t) }'))); then
			say es "ERROR: not ready within ${ES_TIMEOUT}s"
			report_logs es "$ES_LAUNCH_LOG" "$ES_LOG"
			return 1
		fi
		sleep 1
	done
	say es "READY in $(since "$t0")s (pid $(our_pid es "$ES_PID"))"
}

# ---------------------------------------------------------------- commands --

# Serialise up/down: `go test ./...` runs several test binaries at once and
# each may call `stack.sh up`. The second one waits here, then reuses.
lock() {
	mkdir -p "$STATE" || die "cannot create $STATE (set TAPLINE_STACK_DIR)"
	[[ -w $STATE ]] || die "$STATE is not writable by $(id -un) (set TAPLINE_STACK_DIR)"
	chmod 755 "$STATE" 2>/dev/null || true # the ES user must be able to traverse it
	exec 9>"$STATE/.lock"
	if ! flock -n 9; then
		echo "stack.sh: another stack.sh holds $STATE/.lock; waiting for it (up to 600s)"
		flock -w 600 9 || die "could not lock $STATE/.lock within 600s"
	fi
}

# install_missing installs, with apt as root, the system packages the stack
# needs when a fresh machine lacks them (CI runs on a clean machine).
install_missing() {
	local pkgs=()
	command -v mvn >/dev/null || pkgs+=(maven)
	[[ -x $JAVA17/bin/java ]] || pkgs+=(openjdk-17-jdk-headless)
	command -v unzip >/dev/null || pkgs+=(unzip)
	command -v flock >/dev/null || pkgs+=(util-linux)
	command -v curl >/dev/null || pkgs+=(curl)
	((SECURE)) && ! command -v openssl >/dev/null && pkgs+=(openssl)
	((${#pkgs[@]})) || return 0
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		die "missing: ${pkgs[*]}; install them (as root: apt-get install ${pkgs[*]})"
	fi
	echo "stack.sh: installing ${pkgs[*]} with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null; } ||
		die "apt-get install ${pkgs[*]} failed"
}

# services [kafka|es]: the services a command acts on (both by default).
services() {
	case ${1:-} in
	"") echo kafka es ;;
	kafka | es) echo "$1" ;;
	*) die "unknown service '$1' (want kafka or es)" ;;
	esac
}

cmd_up() {
	local t0 pk= pe= rc_k=0 rc_e=0 svc files want
	want=$(services "${1:-}")
	install_missing
	command -v go >/dev/null || die "go is not on PATH (needed for deploy/local/kafkaready)"
	command -v mvn >/dev/null || die "mvn is not on PATH (needed to fetch the artifacts)"
	[[ -x $JAVA17/bin/java ]] || die "no Java 17 at $JAVA17 (set TAPLINE_JAVA_HOME)"
	lock
	t0=$(now)
	rm -f "$STATE/.failed-kafka" "$STATE/.failed-es"
	ensure_secure

	# Start both in parallel; their progress lines are prefixed [kafka] / [es].
	if [[ $want == *kafka* ]]; then
		start_kafka &
		pk=$!
	fi
	if [[ $want == *es* ]]; then
		start_es &
		pe=$!
	fi
	[[ -z $pk ]] || wait "$pk" || rc_k=$?
	[[ -z $pe ]] || wait "$pe" || rc_e=$?

	if ((rc_k || rc_e)); then
		for svc in kafka es; do
			[[ -f $STATE/.failed-$svc ]] || continue
			mapfile -t files <"$STATE/.failed-$svc"
			echo "[$svc] FAILED; logs:"
			tail_log "${files[@]}"
			rm -f "$STATE/.failed-$svc"
		done
		echo "stack.sh up: FAILED after $(since "$t0")s (kafka rc=$rc_k, es rc=$rc_e)." \
			"Whatever did start is left running; stop it with: $0 down" >&2
		exit 1
	fi
	echo "stack.sh up: $want ready after $(since "$t0")s ($MODE mode)"
	echo "export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT ES_URL=$(es_base)"
	if ((SECURE)); then
		echo "secure mode: CA $SEC_DIR/ca.crt; Kafka SASL_SSL user tapline, password in $SEC_DIR/kafka-password;" \
			"ES user tapline, password in $SEC_DIR/es-password (superuser admin: $SEC_DIR/es-admin-password)"
	fi
}

# stop_one NAME PIDFILE: TERM, wait up to STOP_TIMEOUT s, then KILL.
stop_one() {
	local name=$1 file=$2 pid i
	pid=$(our_pid "$name" "$file")
	if [[ -z $pid ]]; then
		if [[ -f $file ]]; then
			say "$name" "not running (removing stale pid file)"
		else
			say "$name" "not running"
		fi
		rm -f "$file"
		return 0
	fi
	say "$name" "stopping pid $pid (TERM)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$name" "still alive after ${STOP_TIMEOUT}s, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$file"
	say "$name" "stopped"
}

cmd_down() {
	local wipe=0 svc=
	while (($#)); do
		case $1 in
		--wipe) wipe=1 ;;
		kafka | es) svc=$1 ;;
		*) die "usage: $0 down [--wipe] [kafka|es]" ;;
		esac
		shift
	done
	local want pk= pe=
	want=$(services "$svc")
	lock
	# Both in parallel: ES can take a few seconds to close.
	if [[ $want == *kafka* ]]; then
		stop_one kafka "$KAFKA_PID" &
		pk=$!
	fi
	if [[ $want == *es* ]]; then
		stop_one es "$ES_PID" &
		pe=$!
	fi
	wait $pk $pe
	if ((wipe)); then
		# Data only: the jar cache, the unzipped ES and the ES zip in ~/.m2 stay.
		if [[ $want == *kafka* ]]; then
			echo "wiping $KAFKA_DIR/data $KAFKA_DIR/cluster.id"
			rm -rf "$KAFKA_DIR/data" "$KAFKA_DIR/cluster.id" "$KAFKA_DIR/mode"
		fi
		if [[ $want == *es* ]]; then
			echo "wiping $ES_DIR/data $ES_DIR/logs $ES_DIR/tmp"
			rm -rf "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp" "$ES_DIR/mode"
		fi
	fi
}

cmd_status() {
	local pid ok=1 health
	pid=$(our_pid kafka "$KAFKA_PID")
	if [[ -n $pid ]] && port_open $KAFKA_PORT; then
		echo "kafka: running, pid $pid, 127.0.0.1:$KAFKA_PORT (log $KAFKA_LOG)"
	elif [[ -n $pid ]]; then
		echo "kafka: starting? pid $pid alive but 127.0.0.1:$KAFKA_PORT not answering"; ok=0
	else
		ok=0
		echo -n "kafka: stopped"
		[[ -f $KAFKA_PID ]] && echo -n " (stale pid file $KAFKA_PID)"
		port_open $KAFKA_PORT && echo -n " but port $KAFKA_PORT is used by $(port_owner $KAFKA_PORT)"
		echo
	fi
	pid=$(our_pid es "$ES_PID")
	if [[ -n $pid ]] && port_open $ES_PORT; then
		health=$(es_curl -s -m 5 "$(es_base)/_cat/health?h=status" || true)
		echo "es:    running, pid $pid, $(es_base), health ${health:-unknown} (log $ES_LOG)"
	elif [[ -n $pid ]]; then
		echo "es:    starting? pid $pid alive but 127.0.0.1:$ES_PORT not answering"; ok=0
	else
		ok=0
		echo -n "es:    stopped"
		[[ -f $ES_PID ]] && echo -n " (stale pid file $ES_PID)"
		port_open $ES_PORT && echo -n " but port $ES_PORT is used by $(port_owner $ES_PORT)"
		echo
	fi
	echo "state dir: $STATE"
	((ok)) || exit 3
}

case ${1:-} in
up) cmd_up "${@:2}" ;;
down) cmd_down "${@:2}" ;;
status) cmd_status ;;
*)
	echo "usage: $0 up [kafka|es] | down [--wipe] [kafka|es] | status" >&2
	exit 2
	;;
esac
