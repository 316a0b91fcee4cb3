package analyzer

// indexTemplate is the composable index template that makes name a data
// stream with a deliberate mapping: identifiers and categories are
// keywords (aggregatable, exact), the URL is text with a keyword
// sub-field, latencies are numbers, and fields not listed here are kept in
// _source but not indexed (dynamic: false), so a new field never changes
// the mapping by accident.
func indexTemplate(name string) map[string]any {
	keyword := map[string]any{"type": "keyword", "ignore_above": 1024}
	pair := func(typ string) map[string]any {
		return map[string]any{"properties": map[string]any{
			"production": map[string]any{"type": typ},
			"target":     map[string]any{"type": typ},
		}}
	}
	return map[string]any{
		"index_patterns": []string{name},
		"data_stream":    map[string]any{},
		"priority":       200,
		"template": map[string]any{
			"settings": map[string]any{"number_of_shards": 1},
			"mappings": map[string]any{
				"dynamic": false,
				"properties": map[string]any{
					"@timestamp":  map[string]any{"type": "date"},
					"replayed_at": map[string]any{"type": "date"},
					"exchange_id": keyword,
					"target":      keyword,
					"role":        keyword,
					"route":       keyword,
					"session_key": keyword,
					"method":      keyword,
					"host":        keyword,
					"url": map[string]any{"type": "text", "fields": map[string]any{
						"keyword": map[string]any{"type": "keyword", "ignore_above": 2048},
					}},
					"path":   keyword,
					"status": pair("short"),
					"latency_ms": map[string]any{"properties": map[string]any{
						"production": map[string]any{"type": "float"},
						"target":     map[string]any{"type": "float"},
						"delta":      map[string]any{"type": "float"},
					}},
					// Bodies are cut to CompareConfig.BodyExcerpt before they
					// get here: searchable text, never a whole download.
					"body":          pair("text"),
					"regressions":   keyword,
					"noise":         keyword,
					"learned_noise": keyword,
					// The full comparison is kept for reading, not indexed.
					"detail":     map[string]any{"type": "object", "enabled": false},
					"body_size":  pair("long"),
					"verdict":    keyword,
					"diffs":      keyword,
					"error":      map[string]any{"type": "text"},
					"error_kind": keyword,
					"recorder":   keyword,
					"replayer":   keyword,
				},
			},
		},
	}
}
