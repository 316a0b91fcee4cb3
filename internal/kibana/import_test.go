package kibana

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Kibana cannot run on the machines that run these tests (no Kibana
// distribution in deploy/local), so Import is tested against an
// httptest.Server that checks the request the way Kibana's import route
// does and answers what Kibana 8.x answers: the saved-objects import
// result (success, successCount, successResults, errors[] with
// error.type), Kibana's error JSON for a 401, and a proxy's HTML for a 502.

// kibanaRequest is what the fake saw of one import request.
type kibanaRequest struct {
	method, path, query, xsrf, auth, filename, partType string
	file                                                string
}

// fakeKibana answers every request with status and body, and records it.
func fakeKibana(t *testing.T, status int, contentType, body string) (*httptest.Server, *kibanaRequest) {
	t.Helper()
	seen := &kibanaRequest{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.method, seen.path, seen.query = r.Method, r.URL.Path, r.URL.RawQuery
		seen.xsrf, seen.auth = r.Header.Get("kbn-xsrf"), r.Header.Get("Authorization")
		mr, err := r.MultipartReader()
		if err != nil {
			t.Errorf("request is not multipart/form-data: %v (Content-Type %q)", err, r.Header.Get("Content-Type"))
		} else {
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("reading multipart: %v", err)
					break
				}
				if p.FormName() != "file" {
					t.Errorf("unexpected form field %q", p.FormName())
					continue
				}
				b, _ := io.ReadAll(p)
				seen.file, seen.filename, seen.partType = string(b), p.FileName(), p.Header.Get("Content-Type")
			}
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

const ndjson = `{"type":"index-pattern","id":"tapline-data-view","attributes":{"title":"tapline-pairs*"},"references":[]}
{"type":"dashboard","id":"tapline-overview","attributes":{"title":"t","panelsJSON":"[]"},"references":[]}
`

func TestImport(t *testing.T) {
	const ok = `{"success":true,"successCount":2,"successResults":[
		{"type":"index-pattern","id":"tapline-data-view","meta":{"title":"tapline-pairs*","icon":"indexPatternApp"}},
		{"type":"dashboard","id":"tapline-overview","meta":{"title":"[Tapline] Production vs staging","icon":"dashboardApp"},"overwrite":true}]}`
	cases := []struct {
		name      string
		cfg       Config // URL is the fake's, plus cfg.URL as a base path
		overwrite bool
		status    int
		ctype     string
		body      string
		wantPath  string
		wantQuery string
		wantAuth  string
		want      Result
		wantErr   []string // substrings; none: no error
		partial   bool     // the error is an *ImportError
	}{
		{name: "overwrite, basic auth", cfg: Config{Username: "elastic", Password: "changeme"}, overwrite: true,
			status: 200, ctype: "application/json", body: ok,
			wantPath: "/api/saved_objects/_import", wantQuery: "overwrite=true", wantAuth: "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==",
			want: Result{Success: true, SuccessCount: 2, Imported: []ImportedObject{
				{Type: "index-pattern", ID: "tapline-data-view", Title: "tapline-pairs*"},
				{Type: "dashboard", ID: "tapline-overview", Title: "[Tapline] Production vs staging", Overwritten: true}}}},
		{name: "space, base path, API key, no overwrite", cfg: Config{URL: "/kibana/", SpaceID: "team a", APIKey: "aWQ6a2V5"},
			status: 200, ctype: "application/json", body: ok,
			wantPath: "/kibana/s/team a/api/saved_objects/_import", wantAuth: "ApiKey aWQ6a2V5",
			want: Result{Success: true, SuccessCount: 2, Imported: []ImportedObject{
				{Type: "index-pattern", ID: "tapline-data-view", Title: "tapline-pairs*"},
				{Type: "dashboard", ID: "tapline-overview", Title: "[Tapline] Production vs staging", Overwritten: true}}}},
		{name: "default space is the root", cfg: Config{SpaceID: "default"},
			status: 200, ctype: "application/json", body: ok, wantPath: "/api/saved_objects/_import",
			want: Result{Success: true, SuccessCount: 2, Imported: []ImportedObject{
				{Type: "index-pattern", ID: "tapline-data-view", Title: "tapline-pairs*"},
				{Type: "dashboard", ID: "tapline-overview", Title: "[Tapline] Production vs staging", Overwritten: true}}}},
		{name: "partial failure", status: 200, ctype: "application/json",
			body: `{"success":false,"successCount":1,"successResults":[{"type":"index-pattern","id":"tapline-data-view","meta":{"title":"tapline-pairs*"}}],
				"errors":[
				{"id":"tapline-latency","type":"lens","title":"[Tapline] Latency","meta":{"title":"[Tapline] Latency","icon":"lensApp"},
				 "error":{"type":"missing_references","references":[{"type":"index-pattern","id":"tapline-data-view"}]}},
				{"id":"tapline-overview","type":"dashboard","meta":{"title":"[Tapline] Production vs staging"},"error":{"type":"conflict"}},
				{"id":"x","type":"lens","meta":{},"error":{"type":"unknown","message":"Document \"x\" has property \"lens\" which belongs to a more recent version of Kibana [9.9.0]","statusCode":400}}]}`,
			wantPath: "/api/saved_objects/_import",
			want: Result{SuccessCount: 1, Imported: []ImportedObject{{Type: "index-pattern", ID: "tapline-data-view", Title: "tapline-pairs*"}},
				Errors: []ObjectError{
					{Type: "lens", ID: "tapline-latency", Title: "[Tapline] Latency", Reason: "missing_references", Missing: []string{"index-pattern/tapline-data-view"}},
					{Type: "dashboard", ID: "tapline-overview", Title: "[Tapline] Production vs staging", Reason: "conflict"},
					{Type: "lens", ID: "x", Reason: "unknown", Message: `Document "x" has property "lens" which belongs to a more recent version of Kibana [9.9.0]`}}},
			wantErr: []string{"kibana refused 3 of 4 saved objects (1 imported)",
				`lens tapline-latency ("[Tapline] Latency"): missing_references index-pattern/tapline-data-view`,
				`dashboard tapline-overview ("[Tapline] Production vs staging"): conflict (it exists already; import with overwrite to replace it)`,
				`lens x: unknown: Document "x" has property "lens"`},
			partial: true},
		{name: "401", cfg: Config{Username: "elastic", Password: "wrong"}, status: 401, ctype: "application/json",
			body:     `{"statusCode":401,"error":"Unauthorized","message":"[security_exception]: unable to authenticate user [elastic] for REST request [/_security/_authenticate]"}`,
			wantPath: "/api/saved_objects/_import", wantAuth: "Basic ZWxhc3RpYzp3cm9uZw==",
			wantErr: []string{"401 Unauthorized: [security_exception]: unable to authenticate user [elastic]", "check the username and password, or the API key"}},
		{name: "404 for an unknown space", cfg: Config{SpaceID: "nope"}, status: 404, ctype: "application/json",
			body:     `{"statusCode":404,"error":"Not Found","message":"Not Found"}`,
			wantPath: "/s/nope/api/saved_objects/_import",
			wantErr:  []string{"404 Not Found: Not Found", `does space "nope" exist?`}},
		{name: "502 from a proxy", status: 502, ctype: "text/html",
			body:     "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
			wantPath: "/api/saved_objects/_import",
			wantErr:  []string{"502 Bad Gateway, and the answer is not Kibana's", `"<html><head><title>502 Bad Gateway`}},
		{name: "200 that is not an import result", status: 200, ctype: "text/html", body: "<html>login</html>",
			wantPath: "/api/saved_objects/_import", wantErr: []string{"the answer is not an import result"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := fakeKibana(t, tc.status, tc.ctype, tc.body)
			cfg := tc.cfg
			cfg.URL = srv.URL + cfg.URL
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := Import(ctx, cfg, []byte(ndjson), tc.overwrite)

			if seen.method != http.MethodPost || seen.path != tc.wantPath || seen.query != tc.wantQuery {
				t.Errorf("request %s %s?%s, want POST %s?%s", seen.method, seen.path, seen.query, tc.wantPath, tc.wantQuery)
			}
			if seen.xsrf != "true" || seen.auth != tc.wantAuth {
				t.Errorf("headers kbn-xsrf %q Authorization %q, want true and %q", seen.xsrf, seen.auth, tc.wantAuth)
			}
			if seen.file != ndjson || seen.filename != "tapline.ndjson" || seen.partType != "application/ndjson" {
				t.Errorf("file part %q (%s, %s), want the ndjson as tapline.ndjson", seen.file, seen.filename, seen.partType)
			}

			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatalf("no error; result %+v", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\ndoes not say %q", err, w)
					}
				}
				var ie *ImportError
				if errors.As(err, &ie) != tc.partial {
					t.Errorf("error %T, want an *ImportError: %v", err, tc.partial)
				}
			}
			if !equalResult(got, tc.want) {
				t.Errorf("result\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func equalResult(a, b Result) bool {
	if a.Success != b.Success || a.SuccessCount != b.SuccessCount || len(a.Imported) != len(b.Imported) || len(a.Errors) != len(b.Errors) {
		return false
	}
	for i := range a.Imported {
		if a.Imported[i] != b.Imported[i] {
			return false
		}
	}
	for i := range a.Errors {
		x, y := a.Errors[i], b.Errors[i]
		if x.Type != y.Type || x.ID != y.ID || x.Title != y.Title || x.Reason != y.Reason || x.Message != y.Message ||
			strings.Join(x.Missing, ",") != strings.Join(y.Missing, ",") {
			return false
		}
	}
	return true
}

// TestImportRefusesBadConfig: a bad configuration fails before any
// request.
func TestImportRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no URL", Config{}, "no URL"},
		{"credentials in URL", Config{URL: "https://elastic:s3cret@kibana:5601"}, "URL holds credentials"},
		{"CA fingerprint not hex", Config{URL: "https://kibana:5601", CAFingerprint: "zz"}, "not a SHA-256 fingerprint"},
		{"not http", Config{URL: "kibana:5601"}, "is not http(s)://host"},
		{"query in URL", Config{URL: "http://kibana:5601/?x=1"}, "has a query or fragment"},
		{"password and API key", Config{URL: "http://kibana:5601", Username: "u", Password: "p", APIKey: "k"}, "not both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(context.Background(), tc.cfg, []byte(ndjson), true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestImportUnreachable: a connection error names what was attempted; a
// URL with a password in it is refused without repeating the password.
func TestImportUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	_, err := Import(context.Background(), Config{URL: u}, []byte(ndjson), true)
	if err == nil || !strings.Contains(err.Error(), "importing saved objects into kibana") {
		t.Fatalf("error %v, want a connection error", err)
	}
	_, err = Import(context.Background(), Config{URL: strings.Replace(u, "http://", "http://user:secret@", 1)}, []byte(ndjson), true)
	if err == nil || !strings.Contains(err.Error(), "URL holds credentials") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v, want the URL refused without the password", err)
	}
}
