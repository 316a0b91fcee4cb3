package kibana

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	kibanaobjects "github.com/tapline/tapline/deploy/kibana"
)

// goldenFieldCaps are the field capabilities of the pair mapping, from
// testdata/field_caps.json (a real node's answer; see mapping_test.go).
func goldenFieldCaps(t *testing.T) map[string]FieldCap {
	t.Helper()
	raw, err := os.ReadFile(fieldCapsGolden)
	if err != nil {
		t.Fatal(err)
	}
	caps, err := parseFieldCaps(raw)
	if err != nil {
		t.Fatal(err)
	}
	return caps
}

func decodeObjects(t *testing.T, ndjson []byte) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(ndjson), []byte("\n")) {
		var o map[string]any
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

func encodeObjects(t *testing.T, objs []map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// export is the committed export, decoded, for a test case to break.
type export []map[string]any

func (e export) obj(t *testing.T, typ, id string) map[string]any {
	for _, o := range e {
		if o["type"] == typ && o["id"] == id {
			return o
		}
	}
	t.Fatalf("no %s %s in the export", typ, id)
	return nil
}

func attrs(o map[string]any) map[string]any { return o["attributes"].(map[string]any) }

// column is a column of the Lens object's "pairs" layer.
func column(t *testing.T, e export, id, col string) map[string]any {
	st := attrs(e.obj(t, "lens", id))["state"].(map[string]any)
	layers := st["datasourceStates"].(map[string]any)["formBased"].(map[string]any)["layers"].(map[string]any)
	return layers["pairs"].(map[string]any)["columns"].(map[string]any)[col].(map[string]any)
}

// editNested rewrites the JSON held in a string attribute of o.
func editNested(t *testing.T, holder map[string]any, key string, edit func(v any) any) {
	var v any
	if err := json.Unmarshal([]byte(holder[key].(string)), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(edit(v))
	if err != nil {
		t.Fatal(err)
	}
	holder[key] = string(b)
}

func refs(o map[string]any) []any { return o["references"].([]any) }

// TestCommittedObjectsValidate: the export passes against the golden
// mapping, so each defect below is the only one of its case.
func TestCommittedObjectsValidate(t *testing.T) {
	for _, err := range Validate(kibanaobjects.NDJSON, goldenFieldCaps(t)) {
		t.Error(err)
	}
}

// TestValidateFindsDefects: each case breaks one thing in the committed
// export and Validate must report it, and only what follows from it.
func TestValidateFindsDefects(t *testing.T) {
	firstLine, _, _ := bytes.Cut(kibanaobjects.NDJSON, []byte("\n"))
	cases := []struct {
		name string
		raw  []byte // instead of the edited export
		edit func(t *testing.T, e export)
		want []string // substrings of one error expected
		// errors is how many errors the defect causes; 0 means 1.
		errors int
	}{
		{name: "line is not JSON", raw: []byte(`{"type":"lens","id":"x"` + "\n"),
			want: []string{"line 1: not a JSON object"}},
		{name: "object without id", edit: func(t *testing.T, e export) { delete(e.obj(t, "lens", "tapline-latency"), "id") },
			// the dashboard's reference to it then dangles too
			want: []string{"id and type are required"}, errors: 2},
		{name: "duplicate object", raw: append(append([]byte{}, kibanaobjects.NDJSON...), firstLine...),
			want: []string{"line 10 (index-pattern tapline-data-view): same type and id as line 1"}},
		{name: "broken reference", edit: func(t *testing.T, e export) {
			refs(e.obj(t, "dashboard", "tapline-overview"))[2].(map[string]any)["id"] = "tapline-top-routes"
		}, want: []string{`reference "3:panel_3" points to lens tapline-top-routes, which is not in the file`}},
		{name: "reference to a missing data view", edit: func(t *testing.T, e export) {
			refs(e.obj(t, "lens", "tapline-latency"))[0].(map[string]any)["id"] = "logs-*"
		}, want: []string{"(lens tapline-latency)", "points to index-pattern logs-*"}},
		{name: "unparsable panelsJSON", edit: func(t *testing.T, e export) {
			attrs(e.obj(t, "dashboard", "tapline-overview"))["panelsJSON"] = `[{"panelIndex":"1",`
		}, want: []string{"attribute panelsJSON does not parse as JSON"}},
		{name: "unparsable searchSourceJSON", edit: func(t *testing.T, e export) {
			meta := attrs(e.obj(t, "search", "tapline-mismatches"))["kibanaSavedObjectMeta"].(map[string]any)
			meta["searchSourceJSON"] = `{"query":`
		}, want: []string{"attribute kibanaSavedObjectMeta.searchSourceJSON does not parse as JSON"}},
		{name: "unparsable data view fieldAttrs", edit: func(t *testing.T, e export) {
			attrs(e.obj(t, "index-pattern", "tapline-data-view"))["fieldAttrs"] = "{latency}"
		}, want: []string{"attribute fieldAttrs does not parse as JSON"}},
		{name: "panelRefName without its reference", edit: func(t *testing.T, e export) {
			editNested(t, attrs(e.obj(t, "dashboard", "tapline-overview")), "panelsJSON", func(v any) any {
				v.([]any)[0].(map[string]any)["panelRefName"] = "panel_9"
				return v
			})
			// and the panel's real reference is left unused
		}, want: []string{`panelRefName "panel_9" has no reference "1:panel_9"`}, errors: 2},
		{name: "panel type differs from its reference", edit: func(t *testing.T, e export) {
			editNested(t, attrs(e.obj(t, "dashboard", "tapline-overview")), "panelsJSON", func(v any) any {
				v.([]any)[6].(map[string]any)["type"] = "lens"
				return v
			})
		}, want: []string{`is a lens panel but its reference "7:panel_7" is a search`}},
		{name: "dashboard reference no panel uses", edit: func(t *testing.T, e export) {
			d := e.obj(t, "dashboard", "tapline-overview")
			d["references"] = append(refs(d), map[string]any{"id": "tapline-latency", "name": "8:panel_8", "type": "lens"})
		}, want: []string{`reference "8:panel_8" (lens tapline-latency) is used by no panel`}},
		{name: "lens layer without its data view reference", edit: func(t *testing.T, e export) {
			refs(e.obj(t, "lens", "tapline-verdicts"))[0].(map[string]any)["name"] = "indexpattern-datasource-layer-other"
			// and the renamed reference is used by nothing
		}, want: []string{`layer "pairs" has no data view reference "indexpattern-datasource-layer-pairs"`}, errors: 2},
		{name: "formula helper column missing", edit: func(t *testing.T, e export) {
			column(t, e, "tapline-mismatch-rate", "rate")["references"] = []any{"rateX9"}
		}, want: []string{`column "rate" references column "rateX9"`}},
		{name: "accessor names no column", edit: func(t *testing.T, e export) {
			st := attrs(e.obj(t, "lens", "tapline-status-matrix"))["state"].(map[string]any)
			st["visualization"].(map[string]any)["valueAccessor"] = "sum"
		}, want: []string{`layer "pairs" shows column "sum"`}},
		{name: "terms ordered by a missing column", edit: func(t *testing.T, e export) {
			params := column(t, e, "tapline-top-mismatching-routes", "route")["params"].(map[string]any)
			params["orderBy"].(map[string]any)["columnId"] = "avg"
		}, want: []string{`column "route" is ordered by column "avg"`}},
		{name: "unknown field", edit: func(t *testing.T, e export) {
			column(t, e, "tapline-top-mismatching-routes", "route")["sourceField"] = "routes"
		}, want: []string{`terms uses field "routes", which the mapping does not have`}},
		{name: "percentile on a keyword", edit: func(t *testing.T, e export) {
			column(t, e, "tapline-latency", "prod-p95")["sourceField"] = "route"
		}, want: []string{`column "prod-p95": percentile on field "route", which is keyword; it needs number`}},
		{name: "date histogram on a number", edit: func(t *testing.T, e export) {
			column(t, e, "tapline-latency", "time")["sourceField"] = "latency_ms.delta"
		}, want: []string{`date_histogram on field "latency_ms.delta", which is float; it needs date`}},
		{name: "terms on a text field", edit: func(t *testing.T, e export) {
			column(t, e, "tapline-top-mismatching-routes", "route")["sourceField"] = "url"
		}, want: []string{`terms on field "url", which is text and not aggregatable`}},
		{name: "KQL on an unknown field", edit: func(t *testing.T, e export) {
			st := attrs(e.obj(t, "lens", "tapline-verdicts"))["state"].(map[string]any)
			st["query"].(map[string]any)["query"] = "role:candidate and verdicts:mismatch"
		}, want: []string{`state.query: KQL query "role:candidate and verdicts:mismatch" uses field "verdicts"`}},
		{name: "KQL in a column filter", edit: func(t *testing.T, e export) {
			column(t, e, "tapline-mismatch-rate", "rateX0")["filter"].(map[string]any)["query"] = "verdict_:mismatch"
		}, want: []string{`column "rateX0" filter: KQL query "verdict_:mismatch" uses field "verdict_"`}},
		{name: "search column unknown", edit: func(t *testing.T, e export) {
			attrs(e.obj(t, "search", "tapline-mismatches"))["columns"] = []any{"route", "regression"}
		}, want: []string{`columns: column uses field "regression"`}},
		{name: "search sorted on text", edit: func(t *testing.T, e export) {
			attrs(e.obj(t, "search", "tapline-mismatches"))["sort"] = []any{[]any{"error", "desc"}}
		}, want: []string{`sort: sort on field "error", which is text and not aggregatable`}},
		{name: "search query on unknown field", edit: func(t *testing.T, e export) {
			meta := attrs(e.obj(t, "search", "tapline-mismatches"))["kibanaSavedObjectMeta"].(map[string]any)
			editNested(t, meta, "searchSourceJSON", func(v any) any {
				v.(map[string]any)["query"].(map[string]any)["query"] = `verdict:"mismatch" and regresions:status`
				return v
			})
		}, want: []string{`uses field "regresions"`}},
		{name: "search without data view", edit: func(t *testing.T, e export) {
			meta := attrs(e.obj(t, "search", "tapline-mismatches"))["kibanaSavedObjectMeta"].(map[string]any)
			editNested(t, meta, "searchSourceJSON", func(v any) any {
				v.(map[string]any)["indexRefName"] = "kibanaSavedObjectMeta.searchSourceJSON.indexx"
				return v
			})
		}, want: []string{`indexRefName "kibanaSavedObjectMeta.searchSourceJSON.indexx" names no reference`}},
		{name: "data view time field not a date", edit: func(t *testing.T, e export) {
			attrs(e.obj(t, "index-pattern", "tapline-data-view"))["timeFieldName"] = "exchange_id"
		}, want: []string{`time field on field "exchange_id", which is keyword; it needs date`}},
		{name: "visualization agg on wrong type", raw: []byte(
			`{"type":"index-pattern","id":"dv","attributes":{"title":"tapline-pairs*"},"references":[]}` + "\n" +
				`{"type":"visualization","id":"v","attributes":{"title":"t","visState":"{\"type\":\"line\",\"aggs\":[{\"id\":\"1\",\"type\":\"avg\",\"params\":{\"field\":\"verdict\"}}]}",` +
				`"kibanaSavedObjectMeta":{"searchSourceJSON":"{\"indexRefName\":\"kibanaSavedObjectMeta.searchSourceJSON.index\"}"}},` +
				`"references":[{"name":"kibanaSavedObjectMeta.searchSourceJSON.index","type":"index-pattern","id":"dv"}]}` + "\n"),
			want: []string{`visState agg "1": avg on field "verdict", which is keyword; it needs number`}},
	}
	caps := goldenFieldCaps(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nd := tc.raw
			if nd == nil {
				e := export(decodeObjects(t, kibanaobjects.NDJSON))
				tc.edit(t, e)
				nd = encodeObjects(t, e)
			}
			errs := Validate(nd, caps)
			var found bool
			for _, err := range errs {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(err.Error(), w)
				}
				found = found || ok
			}
			if !found {
				t.Fatalf("no error containing %q; got %d errors: %v", tc.want, len(errs), errs)
			}
			if n := max(tc.errors, 1); len(errs) != n {
				t.Errorf("got %d errors, want %d: %v", len(errs), n, errs)
			}
		})
	}
}

// TestValidateWithoutFields: a nil field map checks structure only.
func TestValidateWithoutFields(t *testing.T) {
	e := export(decodeObjects(t, kibanaobjects.NDJSON))
	column(t, e, "tapline-latency", "prod-p95")["sourceField"] = "no_such_field"
	if errs := Validate(encodeObjects(t, e), nil); len(errs) != 0 {
		t.Fatalf("errors %v, want none without a mapping", errs)
	}
	if errs := Validate(nil, nil); len(errs) != 1 {
		t.Fatalf("empty export: %v, want one error", errs)
	}
}

func TestKQLFields(t *testing.T) {
	cases := []struct {
		q    string
		want []string
	}{
		{"", nil},
		{"verdict:mismatch", []string{"verdict"}},
		{"role : candidate and not verdict:match", []string{"role", "verdict"}},
		{"status.target >= 500 or latency_ms.delta>100", []string{"status.target", "latency_ms.delta"}},
		{`diffs:header:etag and route:"GET /users/{id}"`, []string{"diffs", "route"}},
		{`verdict:(mismatch or noise_only) and @timestamp < "now-1h"`, []string{"verdict", "@timestamp"}},
		{`"free text: with colon" and error`, nil},
		{"body.*:boom and *:x", nil},
		{`(role:candidate) and url.keyword:\/a\:b`, []string{"role", "url.keyword"}},
	}
	for _, tc := range cases {
		if got := kqlFields(tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("kqlFields(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestParseFieldCaps(t *testing.T) {
	caps, err := parseFieldCaps([]byte(`{"indices":["a","b"],"fields":{
		"route":{"keyword":{"type":"keyword","searchable":true,"aggregatable":true}},
		"body.target":{"text":{"type":"text","searchable":true,"aggregatable":false}},
		"code":{"keyword":{"type":"keyword","searchable":true,"aggregatable":true},"long":{"type":"long","searchable":true,"aggregatable":true}},
		"new":{"unmapped":{"type":"unmapped","searchable":false,"aggregatable":false},"float":{"type":"float","searchable":true,"aggregatable":true}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]FieldCap{
		"route":       {Type: "keyword", Searchable: true, Aggregatable: true},
		"body.target": {Type: "text", Searchable: true},
		"code":        {Type: "conflict", Searchable: true, Aggregatable: true},
		"new":         {Type: "float", Searchable: true, Aggregatable: true},
	}
	if !reflect.DeepEqual(caps, want) {
		t.Fatalf("caps %+v, want %+v", caps, want)
	}
	if _, err := parseFieldCaps([]byte(`{"error":"x"}`)); err == nil {
		t.Fatal("an answer without fields parsed")
	}
}
