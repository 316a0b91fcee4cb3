package analyzer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
)

func newTestElastic(t *testing.T) (*Elastic, string, string) {
	t.Helper()
	esURL := stacktest.ES(t)
	name := stacktest.Index(t, esURL, "tapline-pairs")
	e, err := NewElastic(ElasticConfig{URL: esURL, DataStream: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e, esURL, name
}

func testDocs(n int) []Doc {
	cmp, err := NewComparer(CompareConfig{})
	if err != nil {
		panic(err)
	}
	var docs []Doc
	for i := 0; i < n; i++ {
		for _, r := range cmp.Compare(result(resp(200, "a"), outcome("candidate", resp(int32(200+i%2), "a"), ""))) {
			r.ExchangeID = fmt.Sprintf("ex-%03d", i)
			docs = append(docs, r)
		}
	}
	return docs
}

// TestElasticCreateIsIdempotent: documents are created once; indexing the
// same exchanges again (a redelivery) yields duplicates, not new documents.
func TestElasticCreateIsIdempotent(t *testing.T) {
	e, esURL, name := newTestElastic(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	docs := testDocs(20)
	first, err := e.Index(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range first {
		if !o.Created {
			t.Fatalf("doc %d: %+v, want created", i, o)
		}
	}
	again, err := e.Index(ctx, docs[5:15])
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range again {
		if !o.Duplicate {
			t.Fatalf("re-indexed doc %d: %+v, want duplicate", i, o)
		}
	}
	esGet(t, esURL+"/"+name+"/_refresh", nil)
	var count struct{ Count int }
	esGet(t, esURL+"/"+name+"/_count", &count)
	if count.Count != 20 {
		t.Fatalf("%d documents, want 20", count.Count)
	}
	// The verdict aggregates as a keyword.
	var agg struct {
		Aggregations struct {
			V struct {
				Buckets []struct {
					Key      string
					DocCount int `json:"doc_count"`
				}
			}
		}
	}
	esPost(t, esURL+"/"+name+"/_search", `{"size":0,"aggs":{"v":{"terms":{"field":"verdict"}}}}`, &agg)
	got := map[string]int{}
	for _, b := range agg.Aggregations.V.Buckets {
		got[b.Key] = b.DocCount
	}
	if got["match"] != 10 || got["mismatch"] != 10 {
		t.Fatalf("verdicts %v, want 10 match and 10 mismatch", got)
	}
}

// TestElasticMapping checks the fields the dashboards will use have the
// types the template promises, as the real node reports them.
func TestElasticMapping(t *testing.T) {
	e, esURL, name := newTestElastic(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Index(ctx, testDocs(1)); err != nil {
		t.Fatal(err)
	}
	var caps struct {
		Fields map[string]map[string]struct {
			Aggregatable bool
		}
	}
	esGet(t, esURL+"/"+name+"/_field_caps?fields=*", &caps)
	want := map[string]string{
		"@timestamp": "date", "exchange_id": "keyword", "target": "keyword", "method": "keyword",
		"path": "keyword", "url": "text", "url.keyword": "keyword", "status.production": "short",
		"status.target": "short", "latency_ms.target": "float", "verdict": "keyword", "diffs": "keyword",
	}
	for field, typ := range want {
		if _, ok := caps.Fields[field][typ]; !ok {
			t.Errorf("field %s: caps %v, want type %s", field, caps.Fields[field], typ)
		}
	}
}

// TestElasticUpgradesMapping: a data stream created by an older analyzer
// (its template lacks error_kind) gets the new field in its current
// backing index when a newer analyzer starts, without a rollover.
func TestElasticUpgradesMapping(t *testing.T) {
	e, esURL, name := newTestElastic(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The 1.0 analyzer's template: today's, without error_kind.
	old := indexTemplate(name)
	delete(old["template"].(map[string]any)["mappings"].(map[string]any)["properties"].(map[string]any), "error_kind")
	b, _ := json.Marshal(old)
	req, _ := http.NewRequest(http.MethodPut, esURL+"/_index_template/"+name, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	decodeES(t, resp, nil)
	esPost(t, esURL+"/"+name+"/_doc?refresh=true", `{"@timestamp":"2026-11-28T12:00:00Z","exchange_id":"old","error_kind":"timeout"}`, nil)
	caps := func() map[string]map[string]any {
		var c struct{ Fields map[string]map[string]any }
		esGet(t, esURL+"/"+name+"/_field_caps?fields=error_kind", &c)
		return c.Fields
	}
	if f := caps(); len(f) != 0 {
		t.Fatalf("error_kind is mapped before the upgrade: %v", f)
	}

	if err := e.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := caps()["error_kind"]["keyword"]; !ok {
		t.Fatalf("error_kind after the upgrade: %v, want keyword", caps())
	}
	d := testDocs(1)[0]
	d.Verdict, d.Error, d.ErrorKind = VerdictTargetError, "dial tcp: connection refused", "connection_refused"
	if out, err := e.Index(ctx, []Doc{d}); err != nil || !out[0].Created {
		t.Fatalf("indexing after the upgrade: %v %+v", err, out)
	}
	var count struct{ Count int }
	esPost(t, esURL+"/"+name+"/_refresh", "", nil)
	esPost(t, esURL+"/"+name+"/_count", `{"query":{"term":{"error_kind":"connection_refused"}}}`, &count)
	if count.Count != 1 {
		t.Fatalf("%d documents with error_kind connection_refused, want 1 (searchable in the old backing index)", count.Count)
	}
}

// TestElasticUnreachable: with no Elasticsearch, Index keeps retrying and
// gives up only when its context ends, reporting nothing as indexed.
func TestElasticUnreachable(t *testing.T) {
	e, err := NewElastic(ElasticConfig{URL: "http://127.0.0.1:1", MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out, err := e.Index(ctx, testDocs(2))
	if err == nil || out != nil || !strings.Contains(err.Error(), "not indexed") {
		t.Fatalf("got %v, %v; want an error and no outcomes", out, err)
	}
}

func esGet(t *testing.T, u string, into any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	decodeES(t, resp, into)
}

func esPost(t *testing.T, u, body string, into any) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	decodeES(t, resp, into)
}

func decodeES(t *testing.T, resp *http.Response, into any) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s", resp.Request.URL, resp.Status, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v: %s", resp.Request.URL, err, b)
		}
	}
}

// TestElasticRetriesRefusedCredentials: a 401 or 403 on the bulk request
// is retried (credentials can be fixed while the analyzer waits), never
// turned into failed documents that would be committed.
func TestElasticRetriesRefusedCredentials(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"unable to authenticate"}`)
		case 2:
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"action [indices:data/write/bulk] is unauthorized"}`)
		default:
			n := strings.Count(readAll(r.Body), "\n") / 2
			items := make([]string, n)
			for i := range items {
				items[i] = `{"create":{"status":201}}`
			}
			fmt.Fprintf(w, `{"errors":false,"items":[%s]}`, strings.Join(items, ","))
		}
	}))
	defer srv.Close()
	e, err := NewElastic(ElasticConfig{URL: srv.URL, MinBackoff: time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.Index(ctx, testDocs(3))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if !o.Created {
			t.Errorf("doc %d: %+v, want created after the credentials were accepted", i, o)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d bulk requests, want 3 (401, 403, then accepted)", n)
	}
}

// TestElasticMappingUpdateAnswers: how EnsureTemplate takes each answer
// to the data stream's mapping update (the template itself is accepted).
func TestElasticMappingUpdateAnswers(t *testing.T) {
	cases := []struct {
		status   int
		wantErr  string // "" for success
		wantWarn bool
	}{
		{200, "", false},
		{404, "", false}, // no data stream yet
		{403, "", true},  // a user without the manage privilege
		{401, "", true},
		{400, "a field changed type: roll the data stream over (POST /tapline-pairs/_rollover)", false},
		{503, "503 Service Unavailable", false},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			var mapped atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Elastic-Product", "Elasticsearch")
				w.Header().Set("Content-Type", "application/json")
				if r.Method == http.MethodPut && r.URL.Path == "/tapline-pairs/_mapping" {
					if r.URL.Query().Get("write_index_only") != "true" {
						t.Errorf("mapping update %s: want write_index_only=true (older backing indices are left alone)", r.URL)
					}
					mapped.Store(true)
					w.WriteHeader(tc.status)
				}
				io.WriteString(w, `{"acknowledged":true}`)
			}))
			defer srv.Close()
			var log strings.Builder
			e, err := NewElastic(ElasticConfig{URL: srv.URL, DataStream: "tapline-pairs", Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			err = e.EnsureTemplate(context.Background())
			if !mapped.Load() {
				t.Fatal("no mapping update was sent")
			}
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if warned := strings.Contains(log.String(), "grant the index privilege manage"); warned != tc.wantWarn {
				t.Errorf("warned %v, want %v; log: %s", warned, tc.wantWarn, log.String())
			}
		})
	}
}

func readAll(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}
