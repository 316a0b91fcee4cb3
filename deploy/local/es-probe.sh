#!/usr/bin/env bash
# Probe what the Elasticsearch integ-test distribution started by
# deploy/local/stack.sh can and cannot do. That distribution carries only the
# server plus the transport-netty4, apm, x-pack-core and x-pack-security
# modules, so several well-known APIs are missing (see deploy/local/README.md).
#
#   deploy/local/es-probe.sh            # against ${ES_URL:-http://127.0.0.1:9200}
#
# Every line prints PASS or DIFF, the HTTP status and what was expected. The
# expectations record what ES 8.19.16 did when this was written; a DIFF after
# a version bump means the capability changed. Exit status 1 if any DIFF.
# Uses unique names and cleans up after itself as far as the API allows
# (a data stream cannot be deleted here: its write index is closed instead).
set -euo pipefail

E=${ES_URL:-http://127.0.0.1:9200}
ID=$(date +%s)-$RANDOM
DS=tapline-probe-ds-$ID       # data stream (auto-created through the template)
IDX=tapline-probe-idx-$ID     # plain index
BODY=$(mktemp)
trap 'rm -f "$BODY"' EXIT
diffs=0

# req METHOD PATH [JSON-BODY] -> sets $code, body in $BODY. NDJSON when PATH has _bulk.
req() {
	local ct=application/json
	[[ $2 == *_bulk* ]] && ct=application/x-ndjson
	if [[ $# -ge 3 ]]; then
		code=$(curl -s -o "$BODY" -w '%{http_code}' -X "$1" "$E$2" -H "Content-Type: $ct" --data-binary "$3")
	elif [[ $1 == HEAD ]]; then
		code=$(curl -s -o "$BODY" -w '%{http_code}' -I "$E$2")
	else
		code=$(curl -s -o "$BODY" -w '%{http_code}' -X "$1" "$E$2")
	fi
}

# check WANT-CODE [WANT-SUBSTRING] -- LABEL: compare the last response.
check() {
	local want=$1 sub=${2:-} label=$3 ok=1
	[[ $code == "$want" ]] || ok=0
	[[ -z $sub ]] || grep -qF -- "$sub" "$BODY" || ok=0
	if ((ok)); then
		printf 'PASS  %s  %s\n' "$code" "$label"
	else
		printf 'DIFF  %s  %s  (expected %s%s): %s\n' "$code" "$label" "$want" "${sub:+ and \"$sub\"}" "$(head -c 300 "$BODY")"
		diffs=$((diffs + 1))
	fi
}

echo "== $E"
echo "-- basics"
# go-elasticsearch v8 refuses a server whose responses lack this header.
curl -s -D "$BODY" -o /dev/null "$E/_cluster/health"
code=$(awk 'NR==1 {print $2}' "$BODY")
check 200 "X-elastic-product: Elasticsearch" "GET /_cluster/health carries the X-Elastic-Product: Elasticsearch header"
req GET /
check 405 "" "GET / (rest-root module absent: es.Info() fails; route matches only DELETE /{index})"
req HEAD /
check 405 "" "HEAD / (rest-root module absent: es.Ping() fails)"
req GET /_cat/plugins
check 200 "" "GET /_cat/plugins (empty: no plugins)"

echo "-- composable index template + auto-created data stream"
req PUT "/_index_template/$DS" '{"index_patterns":["'"$DS"'*"],"data_stream":{},"priority":500,"template":{"settings":{"number_of_replicas":0},"mappings":{"properties":{"n":{"type":"long"}}}}}'
check 200 '"acknowledged":true' "PUT /_index_template/$DS with \"data_stream\": {}"
req POST "/$DS/_bulk?refresh=true" $'{"create":{}}\n{"@timestamp":"2025-01-01T00:00:00Z","k":"a","n":1}\n{"create":{}}\n{"@timestamp":"2025-01-02T00:00:00Z","k":"b","n":5}\n{"create":{}}\n{"@timestamp":"2025-01-02T12:00:00Z","k":"b","n":9}\n'
check 200 '"errors":false' "POST /$DS/_bulk with create + @timestamp (data stream auto-created)"
req GET "/_resolve/index/$DS"
check 200 '"data_streams":[{"name":"'"$DS"'"' "GET /_resolve/index/$DS lists the data stream"
req GET "/$DS/_search" '{"size":0,"aggs":{"t":{"terms":{"field":"k.keyword"}},"h":{"date_histogram":{"field":"@timestamp","calendar_interval":"day"}},"p":{"percentiles":{"field":"n","percents":[50,99]}}}}'
check 200 '"p":{"values":{' "search + terms / date_histogram / percentiles aggs on the data stream"
req GET "/$DS/_search" '{"size":0,"aggs":{"c":{"composite":{"sources":[{"k":{"terms":{"field":"k.keyword"}}}]}},"u":{"cardinality":{"field":"k.keyword"}},"s":{"extended_stats":{"field":"n"}},"r":{"range":{"field":"n","ranges":[{"to":5}]}},"th":{"top_hits":{"size":1}}}}'
check 200 '"c":{"after_key"' "composite / cardinality / extended_stats / range / top_hits aggs"
req GET "/$DS/_search" '{"query":{"bool":{"filter":[{"term":{"k.keyword":"b"}},{"range":{"@timestamp":{"gte":"2025-01-02"}}}]}}}'
check 200 '"value":2' "bool/term/range query"
req GET "/$DS/_count"
check 200 '"count":3' "GET /$DS/_count"
req GET "/$DS/_field_caps?fields=@timestamp,k,k.keyword,n"
check 200 '"@timestamp":{"date"' "GET /$DS/_field_caps"
req GET "/$DS/_mapping"
check 200 '"n":{"type":"long"}' "GET /$DS/_mapping"

echo "-- deleting a data stream (modules/data-streams is absent)"
req GET "/_data_stream/$DS"
check 405 "" "GET /_data_stream/$DS"
req DELETE "/_data_stream/$DS"
check 405 "" "DELETE /_data_stream/$DS"
req POST "/_data_stream/_modify" '{"actions":[]}'
check 400 "no handler found" "POST /_data_stream/_modify"
req DELETE "/$DS"
check 404 '"excluded_ds":"true"' "DELETE /$DS (delete-index API skips data streams)"
req DELETE "/.ds-$DS-*"
check 400 "is the write index for data stream" "DELETE /.ds-$DS-* (the write index cannot be deleted)"
req DELETE "/_index_template/$DS"
check 400 "in use by a data streams" "DELETE /_index_template/$DS while the stream exists"
req POST "/$DS/_rollover"
check 200 '"rolled_over":true' "POST /$DS/_rollover"
old=$(sed -n 's/.*"old_index":"\([^"]*\)".*/\1/p' "$BODY")
new=$(sed -n 's/.*"new_index":"\([^"]*\)".*/\1/p' "$BODY")
req DELETE "/$old"
check 200 '"acknowledged":true' "DELETE /$old (a non-write backing index CAN be deleted)"
req POST "/$new/_close"
check 200 '"closed":true' "POST /$new/_close (the write index CAN be closed: frees its shard slot and heap)"
req GET "/$DS/_search"
check 400 "index_closed_exception" "search on the stream after its write index was closed"
req GET "/_resolve/index/$DS"
check 200 '"data_streams":[{"name":"'"$DS"'"' "the stream itself stays in cluster metadata (until stack.sh down --wipe)"

echo "-- plain index + its template: fully removable"
req PUT "/_index_template/$IDX" '{"index_patterns":["'"$IDX"'*"],"priority":500,"template":{"settings":{"number_of_replicas":0}}}'
check 200 '"acknowledged":true' "PUT /_index_template/$IDX (no data_stream)"
req POST "/$IDX/_doc?refresh=true" '{"@timestamp":"2025-01-01T00:00:00Z","k":"a"}'
check 201 '"result":"created"' "POST /$IDX/_doc (index auto-created from the template)"
req DELETE "/$IDX"
check 200 '"acknowledged":true' "DELETE /$IDX"
req DELETE "/_index_template/$IDX"
check 200 '"acknowledged":true' "DELETE /_index_template/$IDX"
req GET "/_resolve/index/$IDX*?expand_wildcards=all"
check 200 '{"indices":[],"aliases":[],"data_streams":[]}' "nothing left under $IDX"

echo "-- known gaps (modules that are not in the integ-test distribution)"
req PUT "/$IDX" '{"settings":{"number_of_replicas":0},"mappings":{"properties":{"n":{"type":"long"},"t":{"type":"date"}}}}'
check 200 "" "(setup) PUT /$IDX"
req POST "/$IDX/_doc/1?refresh=true" '{"n":1,"t":"2025-01-01"}'
check 201 "" "(setup) POST /$IDX/_doc/1"
req POST "/$IDX/_update/1" '{"script":{"source":"ctx._source.n += 1"}}'
check 400 "script_lang not supported [painless]" "scripted update (lang-painless absent)"
req POST "/$IDX/_delete_by_query" '{"query":{"match_all":{}}}'
check 400 "no handler found" "_delete_by_query (reindex module absent)"
req POST "/_reindex" '{"source":{"index":"'"$IDX"'"},"dest":{"index":"'"$IDX"'-copy"}}'
check 405 "" "_reindex (reindex module absent; path falls onto /{index})"
req PUT "/_ingest/pipeline/$IDX" '{"processors":[{"set":{"field":"x","value":"y"}}]}'
check 400 "No processor type exists with name [set]" "ingest pipeline with a set processor (ingest-common absent)"
req GET "/$IDX/_search" '{"size":0,"aggs":{"a":{"auto_date_histogram":{"field":"t"}}}}'
check 400 "Unknown aggregation type [auto_date_histogram]" "auto_date_histogram agg (aggregations module absent)"
req PUT "/$IDX-mot" '{"mappings":{"properties":{"m":{"type":"match_only_text"}}}}'
check 400 "does not exist" "match_only_text mapping (mapper-extras absent)"
req GET "/_ilm/policy"
check 405 "" "GET /_ilm/policy (ILM absent)"
req DELETE "/$IDX"
check 200 "" "(cleanup) DELETE /$IDX"

echo
if ((diffs)); then
	echo "es-probe: $diffs DIFF(s) from the recorded behaviour of ES 8.19.16"
	exit 1
fi
echo "es-probe: all checks match the recorded behaviour of ES 8.19.16"
