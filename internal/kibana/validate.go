package kibana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Validate checks a saved-objects export without a Kibana and returns
// every defect it finds, each naming its line, object and place; none
// means the file is consistent.
//
// For every object: the line parses; id, type and attributes are there;
// every JSON-in-a-string attribute (panelsJSON, optionsJSON,
// kibanaSavedObjectMeta.searchSourceJSON, visState, a data view's fields,
// ...) parses; every reference has a name, type and id, names are unique
// and the (type, id) is an object of the file.
//
// Per type: a dashboard's panels each resolve their panelRefName to a
// reference of the panel's type, and it has no reference no panel uses; a
// Lens visualization's layers each have their data view reference, its
// columns' references, orderings and accessors name columns of the layer;
// a saved search's or visualization's indexRefName names a reference.
//
// With fields (from FieldCaps on the data the objects show) it also checks
// every field the objects use, against its type: a data view's time field
// is a date; Lens columns and visState aggregations use fields of the type
// their operation needs (date_histogram a date, percentile and average a
// number, terms an aggregatable keyword, number, ip or boolean); a saved
// search's columns exist and its sort fields are aggregatable; the fields
// of simple KQL queries (see kqlFields) exist and are searchable. With
// fields nil, field names are not checked.
func Validate(ndjson []byte, fields map[string]FieldCap) []error {
	v := &validator{fields: fields, byKey: map[string]*savedObject{}}
	objs := v.parse(ndjson)
	for _, o := range objs {
		v.checkReferences(o)
		v.checkNestedJSON(o, "", o.Attributes)
		switch o.Type {
		case "index-pattern":
			v.checkDataView(o)
		case "lens":
			v.checkLens(o)
		case "search":
			v.checkSearch(o)
		case "visualization":
			v.checkVisualization(o)
		case "dashboard":
			v.checkDashboard(o)
		}
	}
	return v.errs
}

// savedObject is one line of the export.
type savedObject struct {
	line       int
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Attributes json.RawMessage `json:"attributes"`
	References []reference     `json:"references"`
}

type reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

func (o *savedObject) ref(name string) *reference {
	for i := range o.References {
		if o.References[i].Name == name {
			return &o.References[i]
		}
	}
	return nil
}

type validator struct {
	fields map[string]FieldCap
	byKey  map[string]*savedObject // "type/id"
	errs   []error
}

func (v *validator) errorf(o *savedObject, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("line %d (%s %s): %s", o.line, o.Type, o.ID, fmt.Sprintf(format, args...)))
}

// parse reads the lines, keeps the well-formed objects and reports the
// others. The export summary line Kibana appends ({"exportedCount":...})
// and blank lines are skipped.
func (v *validator) parse(ndjson []byte) []*savedObject {
	var objs []*savedObject
	for i, line := range bytes.Split(ndjson, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		n := i + 1
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(line, &probe); err != nil {
			v.errs = append(v.errs, fmt.Errorf("line %d: not a JSON object: %v", n, err))
			continue
		}
		if _, ok := probe["exportedCount"]; ok && probe["type"] == nil {
			continue
		}
		o := &savedObject{line: n}
		if err := json.Unmarshal(line, o); err != nil {
			v.errs = append(v.errs, fmt.Errorf("line %d: not a saved object: %v", n, err))
			continue
		}
		switch {
		case o.ID == "" || o.Type == "":
			v.errorf(o, "id and type are required")
			continue
		case len(o.Attributes) == 0 || o.Attributes[0] != '{':
			v.errorf(o, "attributes must be a JSON object")
			continue
		}
		key := o.Type + "/" + o.ID
		if prev, dup := v.byKey[key]; dup {
			v.errorf(o, "same type and id as line %d", prev.line)
			continue
		}
		v.byKey[key] = o
		objs = append(objs, o)
	}
	if len(objs) == 0 && len(v.errs) == 0 {
		v.errs = append(v.errs, fmt.Errorf("no saved objects"))
	}
	return objs
}

func (v *validator) checkReferences(o *savedObject) {
	seen := map[string]bool{}
	for _, r := range o.References {
		switch {
		case r.Name == "" || r.Type == "" || r.ID == "":
			v.errorf(o, "reference %+v: name, type and id are required", r)
			continue
		case seen[r.Name]:
			v.errorf(o, "reference name %q is used twice", r.Name)
		}
		seen[r.Name] = true
		if v.byKey[r.Type+"/"+r.ID] == nil {
			v.errorf(o, "reference %q points to %s %s, which is not in the file", r.Name, r.Type, r.ID)
		}
	}
}

// jsonStringAttrs are attributes that hold JSON in a string without the
// "JSON" suffix that marks the others.
var jsonStringAttrs = map[string]map[string]bool{
	"index-pattern": {"fields": true, "fieldAttrs": true, "fieldFormatMap": true, "runtimeFieldMap": true, "sourceFilters": true, "typeMeta": true},
	"visualization": {"visState": true},
}

// checkNestedJSON walks the attributes and parses every string that holds
// JSON: keys ending in "JSON" at any depth, and the type's known others
// at the top.
func (v *validator) checkNestedJSON(o *savedObject, path string, raw json.RawMessage) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	for _, k := range sortedKeys(m) {
		val := m[k]
		p := k
		if path != "" {
			p = path + "." + k
		}
		var s string
		switch {
		case json.Unmarshal(val, &s) == nil:
			if strings.HasSuffix(k, "JSON") || (path == "" && jsonStringAttrs[o.Type][k]) {
				var x any
				if err := json.Unmarshal([]byte(s), &x); err != nil {
					v.errorf(o, "attribute %s does not parse as JSON: %v", p, err)
				}
			}
		case len(val) > 0 && val[0] == '{':
			v.checkNestedJSON(o, p, val)
		}
	}
}

// nested parses the JSON held in the string attribute at path (dotted)
// into dst. present is false when the attribute is absent; ok is false
// when it does not parse into dst (reported here, or by checkNestedJSON
// when it is not JSON at all).
func (v *validator) nested(o *savedObject, path string, dst any) (present, ok bool) {
	raw := o.Attributes
	for _, k := range strings.Split(path, ".") {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m[k] == nil {
			return false, false
		}
		raw = m[k]
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		v.errorf(o, "attribute %s must be a string holding JSON", path)
		return true, false
	}
	if !json.Valid([]byte(s)) {
		return true, false
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		v.errorf(o, "attribute %s: %v", path, err)
		return true, false
	}
	return true, true
}

// ---------------------------------------------------------------- fields --

// family is Kibana's type of an Elasticsearch field type.
func family(esType string) string {
	switch esType {
	case "keyword", "constant_keyword", "wildcard", "version", "text", "match_only_text":
		return "string"
	case "long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long":
		return "number"
	case "date", "date_nanos":
		return "date"
	}
	return esType
}

// fieldUse is how an object uses a field.
type fieldUse struct {
	what string // "percentile", "terms", "column", "sort", "KQL query", ...
	// families allowed; none: any type.
	families []string
	// aggregatable and searchable are required when true.
	aggregatable, searchable bool
}

var (
	useDate      = fieldUse{families: []string{"date"}, aggregatable: true}
	useNumber    = fieldUse{families: []string{"number"}, aggregatable: true}
	useBucket    = fieldUse{families: []string{"string", "number", "ip", "boolean"}, aggregatable: true}
	useAggregate = fieldUse{aggregatable: true}
)

// checkField reports a field that does not exist or does not fit use.
func (v *validator) checkField(o *savedObject, where, field string, use fieldUse) {
	if v.fields == nil {
		return
	}
	fc, ok := v.fields[field]
	if !ok {
		v.errorf(o, "%s: %s uses field %q, which the mapping does not have", where, use.what, field)
		return
	}
	if fc.Type == "conflict" {
		v.errorf(o, "%s: %s uses field %q, which has conflicting types across indices", where, use.what, field)
		return
	}
	if len(use.families) > 0 && !slices.Contains(use.families, family(fc.Type)) {
		v.errorf(o, "%s: %s on field %q, which is %s; it needs %s", where, use.what, field, fc.Type, strings.Join(use.families, " or "))
		return
	}
	if use.aggregatable && !fc.Aggregatable {
		v.errorf(o, "%s: %s on field %q, which is %s and not aggregatable", where, use.what, field, fc.Type)
	}
	if use.searchable && !fc.Searchable {
		v.errorf(o, "%s: %s on field %q, which is not searchable", where, use.what, field)
	}
}

// query is a Kibana query: {"query": "...", "language": "kuery"|"lucene"}.
type query struct {
	Query    any    `json:"query"`
	Language string `json:"language"`
}

// checkQuery checks the fields of a KQL query; Lucene and ES|QL are not
// read.
func (v *validator) checkQuery(o *savedObject, where string, q *query) {
	if q == nil || q.Language != "kuery" {
		return
	}
	s, _ := q.Query.(string)
	for _, f := range kqlFields(s) {
		v.checkField(o, where, f, fieldUse{what: fmt.Sprintf("KQL query %q", s), searchable: true})
	}
}

// ------------------------------------------------------------- data view --

func (v *validator) checkDataView(o *savedObject) {
	var a struct {
		Title         string `json:"title"`
		TimeFieldName string `json:"timeFieldName"`
	}
	if json.Unmarshal(o.Attributes, &a) != nil || a.Title == "" {
		v.errorf(o, "a data view needs a title (its index pattern)")
		return
	}
	if a.TimeFieldName != "" {
		u := useDate
		u.what = "time field"
		v.checkField(o, "timeFieldName", a.TimeFieldName, u)
	}
}

// ------------------------------------------------------------------ lens --

type lensColumn struct {
	OperationType string   `json:"operationType"`
	SourceField   string   `json:"sourceField"`
	Filter        *query   `json:"filter"`
	References    []string `json:"references"`
	Params        struct {
		OrderBy *struct {
			Type     string `json:"type"`
			ColumnID string `json:"columnId"`
		} `json:"orderBy"`
	} `json:"params"`
}

type lensLayer struct {
	Columns     map[string]lensColumn `json:"columns"`
	ColumnOrder []string              `json:"columnOrder"`
}

// lensOperationUse is what each Lens operation needs of its sourceField.
var lensOperationUse = map[string]fieldUse{
	"date_histogram":     useDate,
	"terms":              useBucket,
	"range":              useNumber,
	"percentile":         useNumber,
	"percentile_rank":    useNumber,
	"average":            useNumber,
	"median":             useNumber,
	"sum":                useNumber,
	"standard_deviation": useNumber,
	"min":                {families: []string{"number", "date"}, aggregatable: true},
	"max":                {families: []string{"number", "date"}, aggregatable: true},
	"unique_count":       useAggregate,
	"last_value":         useAggregate,
	"count":              useAggregate,
}

// lensAccessorKeys are the visualization-state keys that name columns of
// the layer they sit in.
var lensAccessorKeys = []string{"xAccessor", "yAccessor", "splitAccessor", "valueAccessor", "metricAccessor", "accessor", "sizeAccessor", "breakdownByAccessor", "maxAccessor", "minAccessor"}

func (v *validator) checkLens(o *savedObject) {
	var a struct {
		Title             string `json:"title"`
		VisualizationType string `json:"visualizationType"`
		State             *struct {
			DatasourceStates map[string]json.RawMessage `json:"datasourceStates"`
			Visualization    json.RawMessage            `json:"visualization"`
			Query            *query                     `json:"query"`
			Filters          []struct {
				Meta struct {
					Index string `json:"index"`
				} `json:"meta"`
			} `json:"filters"`
		} `json:"state"`
	}
	if err := json.Unmarshal(o.Attributes, &a); err != nil || a.State == nil || a.Title == "" || a.VisualizationType == "" {
		v.errorf(o, "a Lens visualization needs a title, a visualizationType and a state object")
		return
	}
	used := map[string]bool{}
	layers := map[string]lensLayer{}
	if raw, ok := a.State.DatasourceStates["formBased"]; ok {
		var fb struct {
			Layers map[string]lensLayer `json:"layers"`
		}
		if err := json.Unmarshal(raw, &fb); err != nil {
			v.errorf(o, "state.datasourceStates.formBased: %v", err)
			return
		}
		layers = fb.Layers
	}
	if _, legacy := a.State.DatasourceStates["indexpattern"]; legacy {
		v.errorf(o, `state.datasourceStates uses the pre-8.6 key "indexpattern"; Kibana 8.x reads "formBased"`)
	}
	for _, id := range sortedKeys(layers) {
		layer := layers[id]
		where := fmt.Sprintf("layer %q", id)
		refName := "indexpattern-datasource-layer-" + id
		used[refName] = true
		switch r := o.ref(refName); {
		case r == nil:
			v.errorf(o, "%s has no data view reference %q", where, refName)
		case r.Type != "index-pattern":
			v.errorf(o, "%s: reference %q is a %s, not an index-pattern", where, refName, r.Type)
		}
		v.checkLensLayer(o, where, layer)
	}
	v.checkQuery(o, "state.query", a.State.Query)
	for _, f := range a.State.Filters {
		if f.Meta.Index != "" {
			used[f.Meta.Index] = true
			if o.ref(f.Meta.Index) == nil {
				v.errorf(o, "state.filters: meta.index %q names no reference", f.Meta.Index)
			}
		}
	}
	// Layers of another datasource (ES|QL "textBased") are not read: their
	// columns are not known here.
	_, textBased := a.State.DatasourceStates["textBased"]
	v.checkLensAccessors(o, a.State.Visualization, layers, textBased)
	for _, r := range o.References {
		switch {
		case used[r.Name], r.Type == "tag",
			r.Name == "indexpattern-datasource-current-indexpattern", // Kibana < 8.0 exports
			strings.HasPrefix(r.Name, "xy-visualization-layer-"):     // annotation layers
		default:
			v.errorf(o, "reference %q is used by no layer or filter", r.Name)
		}
	}
}

func (v *validator) checkLensLayer(o *savedObject, where string, layer lensLayer) {
	if len(layer.Columns) == 0 {
		v.errorf(o, "%s has no columns", where)
	}
	inOrder := map[string]bool{}
	for _, id := range layer.ColumnOrder {
		inOrder[id] = true
		if _, ok := layer.Columns[id]; !ok {
			v.errorf(o, "%s: columnOrder names column %q, which the layer does not have", where, id)
		}
	}
	for _, id := range sortedKeys(layer.Columns) {
		c := layer.Columns[id]
		cw := fmt.Sprintf("%s column %q", where, id)
		if !inOrder[id] {
			v.errorf(o, "%s is missing from columnOrder", cw)
		}
		for _, ref := range c.References {
			if _, ok := layer.Columns[ref]; !ok {
				v.errorf(o, "%s references column %q, which the layer does not have", cw, ref)
			}
		}
		if ob := c.Params.OrderBy; ob != nil && ob.Type == "column" {
			if _, ok := layer.Columns[ob.ColumnID]; !ok {
				v.errorf(o, "%s is ordered by column %q, which the layer does not have", cw, ob.ColumnID)
			}
		}
		if c.SourceField != "" && c.SourceField != "___records___" {
			use, known := lensOperationUse[c.OperationType]
			if !known {
				use = fieldUse{}
			}
			use.what = c.OperationType
			v.checkField(o, cw, c.SourceField, use)
		}
		v.checkQuery(o, cw+" filter", c.Filter)
	}
}

// checkLensAccessors checks that every accessor of the visualization
// state names a column of the layer it belongs to: the state itself is
// one layer when it has a layerId (heatmap, metric, pie, datatable), or
// has layers[] (xy). Annotation layers have no columns; with otherLayers,
// a layer that is not form-based may belong to another datasource.
func (v *validator) checkLensAccessors(o *savedObject, raw json.RawMessage, layers map[string]lensLayer, otherLayers bool) {
	var vis map[string]any
	if json.Unmarshal(raw, &vis) != nil {
		v.errorf(o, "state.visualization must be an object")
		return
	}
	check := func(l map[string]any) {
		id, _ := l["layerId"].(string)
		if lt, _ := l["layerType"].(string); id == "" || lt == "annotations" {
			return
		}
		layer, ok := layers[id]
		if !ok {
			if !otherLayers {
				v.errorf(o, "state.visualization: layer %q has no datasource layer", id)
			}
			return
		}
		var names []string
		for _, k := range lensAccessorKeys {
			if s, ok := l[k].(string); ok {
				names = append(names, s)
			}
		}
		for _, list := range []string{"accessors", "metrics", "primaryGroups", "secondaryGroups"} {
			if xs, ok := l[list].([]any); ok {
				for _, x := range xs {
					if s, ok := x.(string); ok {
						names = append(names, s)
					}
				}
			}
		}
		for _, list := range []string{"columns", "yConfig"} {
			if xs, ok := l[list].([]any); ok {
				for _, x := range xs {
					m, _ := x.(map[string]any)
					for _, k := range []string{"columnId", "forAccessor"} {
						if s, ok := m[k].(string); ok {
							names = append(names, s)
						}
					}
				}
			}
		}
		for _, n := range names {
			if _, ok := layer.Columns[n]; !ok {
				v.errorf(o, "state.visualization: layer %q shows column %q, which the layer does not have", id, n)
			}
		}
	}
	check(vis)
	if ls, ok := vis["layers"].([]any); ok {
		for _, l := range ls {
			if m, ok := l.(map[string]any); ok {
				check(m)
			}
		}
	}
}

// ---------------------------------------------------- search, visState --

// searchSource is kibanaSavedObjectMeta.searchSourceJSON.
type searchSource struct {
	Query        *query `json:"query"`
	IndexRefName string `json:"indexRefName"`
}

// checkSearchSource checks the searchSourceJSON of o: its data view
// reference (required when must) and its query.
func (v *validator) checkSearchSource(o *savedObject, must bool) {
	var ss searchSource
	present, ok := v.nested(o, "kibanaSavedObjectMeta.searchSourceJSON", &ss)
	if !present && must {
		v.errorf(o, "kibanaSavedObjectMeta.searchSourceJSON is required")
	}
	if !ok {
		return
	}
	switch {
	case ss.IndexRefName == "" && must:
		v.errorf(o, "searchSourceJSON has no indexRefName: the object uses no data view")
	case ss.IndexRefName != "":
		if r := o.ref(ss.IndexRefName); r == nil {
			v.errorf(o, "searchSourceJSON.indexRefName %q names no reference", ss.IndexRefName)
		} else if r.Type != "index-pattern" {
			v.errorf(o, "searchSourceJSON.indexRefName %q is a %s, not an index-pattern", ss.IndexRefName, r.Type)
		}
	}
	v.checkQuery(o, "searchSourceJSON.query", ss.Query)
}

func (v *validator) checkSearch(o *savedObject) {
	var a struct {
		Title   string            `json:"title"`
		Columns []string          `json:"columns"`
		Sort    []json.RawMessage `json:"sort"`
	}
	if err := json.Unmarshal(o.Attributes, &a); err != nil || a.Title == "" {
		v.errorf(o, "a saved search needs a title")
		return
	}
	v.checkSearchSource(o, true)
	for _, c := range a.Columns {
		if c != "_source" {
			v.checkField(o, "columns", c, fieldUse{what: "column"})
		}
	}
	for _, s := range a.Sort {
		var pair []string
		if json.Unmarshal(s, &pair) != nil || len(pair) != 2 || (pair[1] != "asc" && pair[1] != "desc") {
			v.errorf(o, "sort entry %s is not [field, asc|desc]", s)
			continue
		}
		if pair[0] != "_score" {
			v.checkField(o, "sort", pair[0], fieldUse{what: "sort", aggregatable: true})
		}
	}
}

// visStateAggUse is what each aggregation-based visualization agg needs
// of params.field.
var visStateAggUse = map[string]fieldUse{
	"date_histogram":    useDate,
	"terms":             useBucket,
	"significant_terms": useBucket,
	"histogram":         useNumber,
	"range":             useNumber,
	"avg":               useNumber,
	"sum":               useNumber,
	"min":               {families: []string{"number", "date"}, aggregatable: true},
	"max":               {families: []string{"number", "date"}, aggregatable: true},
	"median":            useNumber,
	"percentiles":       useNumber,
	"percentile_ranks":  useNumber,
	"std_dev":           useNumber,
	"cardinality":       useAggregate,
	"top_hits":          useAggregate,
}

func (v *validator) checkVisualization(o *savedObject) {
	var a struct {
		Title              string `json:"title"`
		SavedSearchRefName string `json:"savedSearchRefName"`
	}
	if err := json.Unmarshal(o.Attributes, &a); err != nil || a.Title == "" {
		v.errorf(o, "a visualization needs a title")
		return
	}
	if a.SavedSearchRefName != "" && o.ref(a.SavedSearchRefName) == nil {
		v.errorf(o, "savedSearchRefName %q names no reference", a.SavedSearchRefName)
	}
	v.checkSearchSource(o, false)
	var vs struct {
		Type string `json:"type"`
		Aggs []struct {
			ID     string `json:"id"`
			Type   string `json:"type"`
			Params struct {
				Field string `json:"field"`
			} `json:"params"`
		} `json:"aggs"`
	}
	if _, ok := v.nested(o, "visState", &vs); !ok {
		return
	}
	for _, agg := range vs.Aggs {
		if agg.Params.Field == "" {
			continue
		}
		use := visStateAggUse[agg.Type]
		use.what = agg.Type
		v.checkField(o, fmt.Sprintf("visState agg %q", agg.ID), agg.Params.Field, use)
	}
}

// ------------------------------------------------------------- dashboard --

func (v *validator) checkDashboard(o *savedObject) {
	var a struct {
		Title string `json:"title"`
	}
	if err := json.Unmarshal(o.Attributes, &a); err != nil || a.Title == "" {
		v.errorf(o, "a dashboard needs a title")
		return
	}
	var panels []struct {
		PanelIndex   string `json:"panelIndex"`
		Type         string `json:"type"`
		PanelRefName string `json:"panelRefName"`
		GridData     *struct {
			X, Y, W, H int
			I          string `json:"i"`
		} `json:"gridData"`
	}
	if present, ok := v.nested(o, "panelsJSON", &panels); !ok {
		if !present {
			v.errorf(o, "a dashboard needs panelsJSON")
		}
		return
	}
	used := map[string]bool{}
	seen := map[string]bool{}
	for n, p := range panels {
		where := fmt.Sprintf("panel %d (%q)", n, p.PanelIndex)
		switch {
		case p.PanelIndex == "":
			v.errorf(o, "%s has no panelIndex", where)
		case seen[p.PanelIndex]:
			v.errorf(o, "%s: panelIndex is used twice", where)
		}
		seen[p.PanelIndex] = true
		if g := p.GridData; g == nil {
			v.errorf(o, "%s has no gridData", where)
		} else if g.I != p.PanelIndex || g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 48 {
			v.errorf(o, "%s: gridData %+v must have i = panelIndex and fit 48 columns", where, *g)
		}
		if p.PanelRefName == "" {
			continue // by value
		}
		// Kibana 8 names a panel's reference "<panelIndex>:<panelRefName>";
		// older exports use the bare panelRefName.
		name := p.PanelIndex + ":" + p.PanelRefName
		r := o.ref(name)
		if r == nil {
			name = p.PanelRefName
			r = o.ref(name)
		}
		switch {
		case r == nil:
			v.errorf(o, "%s: panelRefName %q has no reference %q", where, p.PanelRefName, p.PanelIndex+":"+p.PanelRefName)
			continue
		case p.Type != "" && r.Type != p.Type:
			v.errorf(o, "%s is a %s panel but its reference %q is a %s", where, p.Type, name, r.Type)
		}
		used[name] = true
	}
	var ss searchSource
	if _, ok := v.nested(o, "kibanaSavedObjectMeta.searchSourceJSON", &ss); ok {
		if ss.IndexRefName != "" {
			used[ss.IndexRefName] = true
		}
		v.checkQuery(o, "searchSourceJSON.query", ss.Query)
	}
	for _, r := range o.References {
		if !used[r.Name] && r.Type != "tag" && !strings.HasPrefix(r.Name, "controlGroup_") {
			v.errorf(o, "reference %q (%s %s) is used by no panel", r.Name, r.Type, r.ID)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
