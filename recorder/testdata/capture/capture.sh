#!/usr/bin/env bash
# Regenerates loopback.pcap: real HTTP traffic over loopback, captured with
# tcpdump. Needs root (or CAP_NET_RAW) and tcpdump. Run from anywhere:
#   recorder/testdata/capture/capture.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../loopback.pcap
port=18080
tcpdump -i lo -s 0 -U -w "$out" "tcp port $port" 2>/dev/null &
dump=$!
sleep 1
(cd "$here" && go run . -addr "127.0.0.1:$port") > "$here/../loopback.want"
sleep 1
kill -INT "$dump"; wait "$dump" || true
echo "wrote $out and loopback.want"
