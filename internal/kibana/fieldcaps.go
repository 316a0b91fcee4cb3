package kibana

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// FieldCap is what Elasticsearch's _field_caps says about one field, over
// all the indices it looked at.
type FieldCap struct {
	// Type is the Elasticsearch field type ("keyword", "short", "float",
	// "date", "text", "object", ...), or "conflict" when the indices map the
	// field with different types, as Kibana shows it.
	Type string
	// Searchable and Aggregatable are true when they hold in every index.
	Searchable, Aggregatable bool
}

// FieldCaps asks Elasticsearch for the capabilities of every field of
// index (an index, data stream, alias or pattern): GET
// {esURL}/{index}/_field_caps?fields=*. Credentials, if needed, go in
// esURL ("https://user:pass@host:9200"); ctx bounds the request.
func FieldCaps(ctx context.Context, esURL, index string) (map[string]FieldCap, error) {
	raw, err := getFieldCaps(ctx, esURL, index)
	if err != nil {
		return nil, err
	}
	return parseFieldCaps(raw)
}

// getFieldCaps returns the _field_caps answer for index as it came.
func getFieldCaps(ctx context.Context, esURL, index string) ([]byte, error) {
	base, err := url.Parse(strings.TrimRight(esURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("elasticsearch URL %q is not http(s)://host[:port]", esURL)
	}
	u := base.JoinPath(index, "_field_caps")
	u.RawQuery = "fields=*"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the field capabilities of %s: %w", index, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the field capabilities of %s: %w", index, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("field capabilities of %s at %s: %s: %s", index, u.Redacted(), res.Status, snippet(raw))
	}
	return raw, nil
}

// parseFieldCaps reads a _field_caps answer: per field, one entry per type
// the indices give it.
func parseFieldCaps(raw []byte) (map[string]FieldCap, error) {
	var r struct {
		Fields map[string]map[string]struct {
			Searchable   bool `json:"searchable"`
			Aggregatable bool `json:"aggregatable"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("parsing field capabilities: %w", err)
	}
	if r.Fields == nil {
		return nil, fmt.Errorf("field capabilities answer has no fields: %s", snippet(raw))
	}
	caps := make(map[string]FieldCap, len(r.Fields))
	for name, byType := range r.Fields {
		fc := FieldCap{Searchable: true, Aggregatable: true}
		for typ, c := range byType {
			if typ == "unmapped" { // some indices of a pattern lack the field
				continue
			}
			if fc.Type == "" {
				fc.Type = typ
			} else if fc.Type != typ {
				fc.Type = "conflict"
			}
			fc.Searchable = fc.Searchable && c.Searchable
			fc.Aggregatable = fc.Aggregatable && c.Aggregatable
		}
		if fc.Type == "" {
			continue
		}
		caps[name] = fc
	}
	return caps, nil
}
