// Command gen writes tapline's Kibana saved objects: the data view over
// the pair documents, the Lens visualizations and saved search of the
// dashboard, and the dashboard, as a Kibana 8.x saved-objects export (one
// JSON object a line). `go generate ./deploy/kibana` runs it:
//
//	go run ./gen -out tapline.ndjson
//
// Kibana keeps some attributes as JSON inside a string (a dashboard's
// panelsJSON, kibanaSavedObjectMeta.searchSourceJSON, a data view's
// fieldAttrs); they are built here as Go values and encoded, never written
// by hand. The objects themselves are in objects.go, the Lens building
// blocks in lens.go. gen's test keeps the committed file equal to this
// output; internal/kibana's test checks it against the real mapping.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	out := flag.String("out", "tapline.ndjson", "file to write")
	flag.Parse()
	b, err := render()
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// Migration versions stamped on the objects. coreMigrationVersion is
// 8.8.0 in every export since Kibana 8.8. typeMigrationVersion is the
// version of each type's attributes the objects are written in: the last
// legacy migration (index-pattern 8.0.0, lens 8.9.0), or a model version
// ("10.N.0" = model version N) that Kibana 8.19 has. Kibana migrates an
// imported object from the version it states up to its own, and refuses
// one that states a newer version than it knows.
const coreMigrationVersion = "8.8.0"

var typeMigrationVersion = map[string]string{
	"index-pattern": "8.0.0",
	"lens":          "8.9.0",
	"search":        "10.5.0",
	"dashboard":     "10.2.0",
}

// savedObject is one line of the export; fields in the order Kibana
// exports them.
type savedObject struct {
	Attributes           any         `json:"attributes"`
	CoreMigrationVersion string      `json:"coreMigrationVersion"`
	ID                   string      `json:"id"`
	Managed              bool        `json:"managed"`
	References           []reference `json:"references"`
	Type                 string      `json:"type"`
	TypeMigrationVersion string      `json:"typeMigrationVersion"`
}

type reference struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

func newObject(typ, id string, attrs any, refs ...reference) savedObject {
	if refs == nil {
		refs = []reference{}
	}
	return savedObject{
		Attributes: attrs, CoreMigrationVersion: coreMigrationVersion, ID: id,
		References: refs, Type: typ, TypeMigrationVersion: typeMigrationVersion[typ],
	}
}

// render is the export: every object on one line, references before the
// objects that use them.
func render() ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objects() {
		if o.TypeMigrationVersion == "" {
			return nil, fmt.Errorf("%s %s: no typeMigrationVersion for type %s", o.Type, o.ID, o.Type)
		}
		b, err := encode(o)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.Type, o.ID, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// encode is v as compact JSON, with <, > and & left as they are (KQL
// "status.target >= 500" stays readable).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonString is v encoded for an attribute that holds JSON in a string.
func jsonString(v any) string {
	b, err := encode(v)
	if err != nil {
		panic(fmt.Sprintf("encoding %T: %v", v, err)) // only plain values reach here
	}
	return strings.TrimSpace(string(b))
}
