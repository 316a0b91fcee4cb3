package main

// The saved objects of tapline's dashboard. Field names are those of the
// pair documents (analyzer/compare.go, mapping in analyzer/template.go).

// Saved-object ids: stable, so that importing again with overwrite
// replaces the objects instead of adding copies.
const (
	dataViewID       = "tapline-data-view"
	mismatchRateID   = "tapline-mismatch-rate"
	verdictsID       = "tapline-verdicts"
	topRoutesID      = "tapline-top-mismatching-routes"
	statusMatrixID   = "tapline-status-matrix"
	latencyID        = "tapline-latency"
	mismatchSearchID = "tapline-mismatches"
	errorKindsID     = "tapline-target-errors"
	dashboardID      = "tapline-overview"
)

// candidates selects the documents of the targets under test: the
// baseline's documents measure noise and would dilute every rate.
const candidates = "role:candidate"

func objects() []savedObject {
	return []savedObject{
		dataView(),
		mismatchSearch(),
		mismatchRate(),
		verdicts(),
		topRoutes(),
		statusMatrix(),
		latency(),
		errorKinds(),
		dashboard(),
	}
}

// dataView is the data view over the pair data stream (the analyzer's
// default "tapline-pairs"), timed by the capture time of each request.
func dataView() savedObject {
	labels := map[string]string{
		"latency_ms.production": "production latency (ms)",
		"latency_ms.target":     "target latency (ms)",
		"latency_ms.delta":      "latency target − production (ms)",
		"status.production":     "production status",
		"status.target":         "target status",
	}
	attrs := map[string]any{}
	for f, l := range labels {
		attrs[f] = map[string]any{"customLabel": l}
	}
	return newObject("index-pattern", dataViewID, map[string]any{
		"title":           "tapline-pairs*",
		"name":            "tapline pairs",
		"timeFieldName":   "@timestamp",
		"fields":          "[]",
		"fieldAttrs":      jsonString(attrs),
		"fieldFormatMap":  "{}",
		"runtimeFieldMap": "{}",
		"sourceFilters":   "[]",
		"typeMeta":        "{}",
	})
}

// lensObject is a Lens visualization with one layer over the data view.
func lensObject(id, title, description, visType, layerID string, l layer, q string, vis map[string]any) savedObject {
	return newObject("lens", id, map[string]any{
		"title":             title,
		"description":       description,
		"visualizationType": visType,
		"state": map[string]any{
			"datasourceStates":   map[string]any{"formBased": map[string]any{"layers": map[string]layer{layerID: l}}},
			"visualization":      vis,
			"query":              kql(q),
			"filters":            []any{},
			"internalReferences": []any{},
			"adHocDataViews":     map[string]any{},
		},
	}, reference{ID: dataViewID, Name: "indexpattern-datasource-layer-" + layerID, Type: "index-pattern"})
}

// mismatchRate: per interval and candidate target, the share of
// comparisons with a regression.
func mismatchRate() savedObject {
	var l layer
	tgt := l.add("target", terms("target", "string", 10, termsOrder{}, "target"))
	t := l.add("time", dateHistogram())
	rate := addShareFormula(&l, "rate", "mismatch rate", "verdict:mismatch")
	return lensObject(mismatchRateID, "[Tapline] Mismatch rate over time",
		"Share of candidate comparisons with at least one regression (verdict:mismatch), per target.",
		"lnsXY", "pairs", l, candidates,
		xyState(xyLayer{id: "pairs", seriesType: "line", x: t, split: tgt, y: []string{rate}}, "mismatch rate"))
}

// verdicts: how the comparisons ended, over time: no difference, noise
// only, a regression, or no answer from the target.
func verdicts() savedObject {
	var l layer
	v := l.add("verdict", terms("verdict", "string", 5, termsOrder{byColumn: "count"}, "verdict"))
	t := l.add("time", dateHistogram())
	n := l.add("count", count("comparisons"))
	return lensObject(verdictsID, "[Tapline] Noise vs regression",
		"Candidate comparisons by verdict: match, noise_only (every difference is noise), mismatch (a regression), target_error.",
		"lnsXY", "pairs", l, candidates,
		xyState(xyLayer{id: "pairs", seriesType: "bar_stacked", x: t, split: v, y: []string{n}}, "comparisons"))
}

// topRoutes: the endpoints with the most regressions.
func topRoutes() savedObject {
	var l layer
	r := l.add("route", terms("route", "string", 15, termsOrder{byColumn: "count"}, "route"))
	n := l.add("count", count("mismatches"))
	return lensObject(topRoutesID, "[Tapline] Top mismatching routes",
		"Routes (method and path template) with the most comparisons that found a regression.",
		"lnsXY", "pairs", l, "verdict:mismatch",
		xyState(xyLayer{id: "pairs", seriesType: "bar_horizontal", x: r, y: []string{n}}, "mismatches"))
}

// statusMatrix: production status × target status; off the diagonal,
// the target answered with another status than production did.
func statusMatrix() savedObject {
	var l layer
	p := l.add("production", terms("status.production", "number", 10, termsOrder{byColumn: "count"}, "production status"))
	tg := l.add("target", terms("status.target", "number", 10, termsOrder{byColumn: "count"}, "target status"))
	n := l.add("count", count("comparisons"))
	return lensObject(statusMatrixID, "[Tapline] Production × target status",
		"Candidate comparisons by production status (rows) and target status (columns).",
		"lnsHeatmap", "pairs", l, candidates, heatmapState("pairs", tg, p, n))
}

// latency: p50 and p95 of the recorded production latency next to the
// replayed target's.
func latency() savedObject {
	var l layer
	t := l.add("time", dateHistogram())
	p50p := l.add("prod-p50", percentile("latency_ms.production", 50, "production p50"))
	p95p := l.add("prod-p95", percentile("latency_ms.production", 95, "production p95"))
	p50t := l.add("target-p50", percentile("latency_ms.target", 50, "target p50"))
	p95t := l.add("target-p95", percentile("latency_ms.target", 95, "target p95"))
	return lensObject(latencyID, "[Tapline] Latency p50 / p95, production vs target",
		"Percentiles of latency_ms.production (as recorded) and latency_ms.target (as replayed), in milliseconds.",
		"lnsXY", "pairs", l, candidates,
		xyState(xyLayer{
			id: "pairs", seriesType: "line", x: t, y: []string{p50p, p95p, p50t, p95t},
			colors: map[string]string{p50p: "#54B399", p95p: "#209280", p50t: "#D6BF57", p95t: "#E7664C"},
		}, "latency (ms)"))
}

// errorKinds: the requests a target did not answer, by kind of error
// (timeout, connection_refused, paused by the circuit breaker, ...), over
// time. Results of 1.0 replayers have no kind and are left out.
func errorKinds() savedObject {
	var l layer
	k := l.add("kind", terms("error_kind", "string", 10, termsOrder{byColumn: "count"}, "error kind"))
	t := l.add("time", dateHistogram())
	n := l.add("count", count("target errors"))
	return lensObject(errorKindsID, "[Tapline] Target errors by kind",
		"Candidate requests without a response (verdict:target_error), by error_kind: timeout, connection_refused, connection_reset, tls, dns, request, other; not sent: paused, production, middleware.",
		"lnsXY", "pairs", l, candidates+" and verdict:target_error",
		xyState(xyLayer{id: "pairs", seriesType: "bar_stacked", x: t, split: k, y: []string{n}}, "target errors"))
}

// mismatchSearch: the comparisons with a regression, newest first, for
// reading one by one in Discover.
func mismatchSearch() savedObject {
	const indexRef = "kibanaSavedObjectMeta.searchSourceJSON.index"
	return newObject("search", mismatchSearchID, map[string]any{
		"title":            "[Tapline] Mismatches",
		"description":      "Comparisons with at least one regression: route, target, the regressed difference keys, exchange id.",
		"columns":          []string{"route", "target", "regressions", "status.production", "status.target", "exchange_id"},
		"sort":             [][]string{{"@timestamp", "desc"}},
		"grid":             map[string]any{},
		"hideChart":        false,
		"isTextBasedQuery": false,
		"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": jsonString(map[string]any{
			"query":        kql("verdict:mismatch"),
			"filter":       []any{},
			"highlightAll": true,
			"version":      true,
			"indexRefName": indexRef,
		})},
	}, reference{ID: dataViewID, Name: indexRef, Type: "index-pattern"})
}

// panel places one saved object on the dashboard's 48-column grid.
type panel struct {
	ref        savedObject
	x, y, w, h int
}

// dashboard shows every visualization and the mismatch list.
func dashboard() savedObject {
	panels := []panel{
		{mismatchRate(), 0, 0, 24, 12},
		{verdicts(), 24, 0, 24, 12},
		{topRoutes(), 0, 12, 24, 15},
		{statusMatrix(), 24, 12, 24, 15},
		{latency(), 0, 27, 24, 13},
		{errorKinds(), 24, 27, 24, 13},
		{mismatchSearch(), 0, 40, 48, 16},
	}
	type gridData struct {
		X int    `json:"x"`
		Y int    `json:"y"`
		W int    `json:"w"`
		H int    `json:"h"`
		I string `json:"i"`
	}
	type panelJSON struct {
		Version          string         `json:"version"`
		Type             string         `json:"type"`
		GridData         gridData       `json:"gridData"`
		PanelIndex       string         `json:"panelIndex"`
		EmbeddableConfig map[string]any `json:"embeddableConfig"`
		PanelRefName     string         `json:"panelRefName"`
	}
	var pj []panelJSON
	var refs []reference
	for i, p := range panels {
		idx := string(rune('1' + i))
		refName := "panel_" + idx
		pj = append(pj, panelJSON{
			// The embeddable state version of the panel; Kibana 8.19's own
			// sample dashboards still carry 8.8.0.
			Version: "8.8.0", Type: p.ref.Type,
			GridData:   gridData{X: p.x, Y: p.y, W: p.w, H: p.h, I: idx},
			PanelIndex: idx, EmbeddableConfig: map[string]any{"enhancements": map[string]any{}},
			PanelRefName: refName,
		})
		// Kibana 8 names a panel's reference "<panelIndex>:<panelRefName>".
		refs = append(refs, reference{ID: p.ref.ID, Name: idx + ":" + refName, Type: p.ref.Type})
	}
	return newObject("dashboard", dashboardID, map[string]any{
		"title":       "[Tapline] Production vs staging",
		"description": "How the replayed targets answered compared with production: regressions, noise, status codes and latency.",
		"panelsJSON":  jsonString(pj),
		"optionsJSON": jsonString(map[string]any{
			"useMargins": true, "syncColors": false, "syncCursor": true, "syncTooltips": false, "hidePanelTitles": false,
		}),
		"timeRestore":     true,
		"timeFrom":        "now-24h",
		"timeTo":          "now",
		"refreshInterval": map[string]any{"pause": true, "value": 60000},
		"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": jsonString(map[string]any{
			"query": kql(""), "filter": []any{},
		})},
	}, refs...)
}
