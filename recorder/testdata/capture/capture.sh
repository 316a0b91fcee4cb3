#!/usr/bin/env bash
# Regenerates the pcap fixtures from real HTTP traffic over loopback,
# captured with tcpdump (needs root or CAP_NET_RAW, and tcpdump):
#   loopback.pcap  a Go http.Client against a Go server (keep-alive, chunked, gzip, 200 kB body)
#   features.pcap  raw HTTP/1.x: pipelining, 100-continue, 204/304, trailers, upgrade, HTTP/1.0
# Each comes with a .want file: what the client itself saw, one line per exchange.
#   recorder/testdata/capture/capture.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
record() { # name port [flags]
	local name=$1 port=$2
	shift 2
	tcpdump -i lo -s 0 -U -w "$here/../$name.pcap" "tcp port $port" 2>/dev/null &
	local dump=$!
	sleep 1
	(cd "$here" && go run . -addr "127.0.0.1:$port" "$@") >"$here/../$name.want"
	sleep 1
	kill -INT "$dump"
	wait "$dump" || true
	echo "wrote $name.pcap and $name.want"
}
case "${1:-all}" in
loopback) record loopback 18080 ;;
features) record features 18081 -features ;;
all) record loopback 18080 && record features 18081 -features ;;
esac
