package main

import "fmt"

// Building blocks of Lens visualizations (saved-object type "lens"), in
// the shape Kibana 8.x stores them: one form-based layer of columns over
// the data view, and a visualization state that shows columns by id.

// query is a Kibana query.
type query struct {
	Language string `json:"language"`
	Query    string `json:"query"`
}

func kql(q string) query { return query{Language: "kuery", Query: q} }

// column is one column of a Lens form-based layer: a bucket (date
// histogram, terms) or a metric (count, percentile, formula).
type column struct {
	CustomLabel   bool     `json:"customLabel,omitempty"`
	DataType      string   `json:"dataType"`
	Filter        *query   `json:"filter,omitempty"`
	IsBucketed    bool     `json:"isBucketed"`
	Label         string   `json:"label"`
	OperationType string   `json:"operationType"`
	Params        any      `json:"params,omitempty"`
	References    []string `json:"references,omitempty"`
	Scale         string   `json:"scale"`
	SourceField   string   `json:"sourceField,omitempty"`
}

// layer is a Lens form-based layer. Columns are computed in ColumnOrder:
// buckets first (outermost first), then metrics.
type layer struct {
	ColumnOrder       []string          `json:"columnOrder"`
	Columns           map[string]column `json:"columns"`
	IncompleteColumns struct{}          `json:"incompleteColumns"`
}

// add appends column c as id and returns id.
func (l *layer) add(id string, c column) string {
	if l.Columns == nil {
		l.Columns = map[string]column{}
	}
	if _, dup := l.Columns[id]; dup {
		panic("lens: duplicate column id " + id) // a bug in objects.go
	}
	l.Columns[id] = c
	l.ColumnOrder = append(l.ColumnOrder, id)
	return id
}

// dateHistogram buckets by @timestamp at Lens's automatic interval.
func dateHistogram() column {
	return column{
		DataType: "date", IsBucketed: true, Label: "@timestamp", OperationType: "date_histogram",
		Params: map[string]any{"interval": "auto", "includeEmptyRows": true, "dropPartials": false},
		Scale:  "interval", SourceField: "@timestamp",
	}
}

// count counts documents.
func count(label string) column {
	return column{
		CustomLabel: true, DataType: "number", Label: label, OperationType: "count",
		Params: map[string]any{"emptyAsNull": true}, Scale: "ratio", SourceField: "___records___",
	}
}

// percentile is the p-th percentile of a numeric field.
func percentile(field string, p int, label string) column {
	return column{
		CustomLabel: true, DataType: "number", Label: label, OperationType: "percentile",
		Params: map[string]any{"percentile": p}, Scale: "ratio", SourceField: field,
	}
}

// termsOrder is how a terms column picks and sorts its values.
type termsOrder struct {
	byColumn string // a metric column of the layer, descending; "" for alphabetical
}

// terms buckets by the top size values of field (dataType "string" or
// "number"), ordered by the metric column, or alphabetically.
func terms(field, dataType string, size int, order termsOrder, label string) column {
	orderBy, direction := map[string]any{"type": "alphabetical", "fallback": true}, "asc"
	if order.byColumn != "" {
		orderBy, direction = map[string]any{"type": "column", "columnId": order.byColumn}, "desc"
	}
	return column{
		CustomLabel: true, DataType: dataType, IsBucketed: true, Label: label, OperationType: "terms",
		Params: map[string]any{
			"size": size, "orderBy": orderBy, "orderDirection": direction,
			"otherBucket": false, "missingBucket": false, "parentFormat": map[string]any{"id": "terms"},
			"include": []string{}, "exclude": []string{}, "includeIsRegex": false, "excludeIsRegex": false,
		},
		Scale: "ordinal", SourceField: field,
	}
}

// addShareFormula adds the formula column id, "count(kql='filter') /
// count()" shown as a percentage, with the three helper columns the
// formula editor stores beside it (id+"X0" the filtered count, id+"X1"
// the count, id+"X2" their quotient); Lens computes the helpers and shows
// the formula. It returns id.
func addShareFormula(l *layer, id, label, filter string) string {
	text := fmt.Sprintf("count(kql='%s') / count()", filter)
	x0, x1, x2 := id+"X0", id+"X1", id+"X2"
	part := func(c column) column {
		c.Label, c.CustomLabel = "Part of "+label, true
		return c
	}
	num := part(count(""))
	num.Filter = &query{Language: "kuery", Query: filter}
	num.Params = map[string]any{"emptyAsNull": false}
	den := part(count(""))
	den.Params = map[string]any{"emptyAsNull": false}
	l.add(x0, num)
	l.add(x1, den)
	l.add(x2, part(column{
		DataType: "number", OperationType: "math", Scale: "ratio",
		Params: map[string]any{"tinymathAst": map[string]any{
			"type": "function", "name": "divide", "args": []string{x0, x1},
			"location": map[string]int{"min": 0, "max": len(text)}, "text": text,
		}},
		References: []string{x0, x1},
	}))
	return l.add(id, column{
		CustomLabel: true, DataType: "number", Label: label, OperationType: "formula", Scale: "ratio",
		Params: map[string]any{
			"formula": text, "isFormulaBroken": false,
			"format": map[string]any{"id": "percent", "params": map[string]any{"decimals": 1}},
		},
		References: []string{x2},
	})
}

// xyLayer is one data layer of an XY chart.
type xyLayer struct {
	id         string
	seriesType string // "line", "bar_stacked", "bar_horizontal", ...
	x          string // column on the x axis
	split      string // breakdown column; "" for none
	y          []string
	colors     map[string]string // per y column; default palette when absent
}

// xyState is the visualization state of an XY chart with one data layer.
func xyState(l xyLayer, yTitle string) map[string]any {
	data := map[string]any{
		"layerId": l.id, "layerType": "data", "seriesType": l.seriesType,
		"xAccessor": l.x, "accessors": l.y,
		"palette": map[string]any{"type": "palette", "name": "default"},
	}
	if l.split != "" {
		data["splitAccessor"] = l.split
	}
	if len(l.colors) > 0 {
		var yc []map[string]any
		for _, acc := range l.y {
			if c, ok := l.colors[acc]; ok {
				yc = append(yc, map[string]any{"forAccessor": acc, "color": c, "axisMode": "left"})
			}
		}
		data["yConfig"] = yc
	}
	axes := map[string]bool{"x": true, "yLeft": true, "yRight": true}
	return map[string]any{
		"legend":                       map[string]any{"isVisible": true, "position": "right", "showSingleSeries": true},
		"valueLabels":                  "hide",
		"fittingFunction":              "None",
		"preferredSeriesType":          l.seriesType,
		"yTitle":                       yTitle,
		"yLeftExtent":                  map[string]any{"mode": "full"},
		"yRightExtent":                 map[string]any{"mode": "full"},
		"yLeftScale":                   "linear",
		"yRightScale":                  "linear",
		"axisTitlesVisibilitySettings": axes,
		"tickLabelsVisibilitySettings": axes,
		"gridlinesVisibilitySettings":  axes,
		"labelsOrientation":            map[string]int{"x": 0, "yLeft": 0, "yRight": 0},
		"layers":                       []any{data},
	}
}

// heatmapState is the visualization state of a heat map: value by x × y.
func heatmapState(layerID, x, y, value string) map[string]any {
	return map[string]any{
		"shape": "heatmap", "layerId": layerID, "layerType": "data",
		"xAccessor": x, "yAccessor": y, "valueAccessor": value,
		"legend": map[string]any{"isVisible": true, "position": "right", "type": "heatmap_legend"},
		"gridConfig": map[string]any{
			"type": "heatmap_grid", "isCellLabelVisible": true,
			"isXAxisLabelVisible": true, "isXAxisTitleVisible": true,
			"isYAxisLabelVisible": true, "isYAxisTitleVisible": true,
		},
	}
}
