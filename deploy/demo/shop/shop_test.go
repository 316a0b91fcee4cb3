package shop

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, acceptGzip bool) (int, http.Header, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if acceptGzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var body io.Reader = w.Body
	if w.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	var v map[string]any
	b, _ := io.ReadAll(body)
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, target, err, b)
		}
	}
	return w.Code, w.Header(), v
}

// TestRegression: production and staging agree everywhere except the
// deliberate change on users.
func TestRegression(t *testing.T) {
	prod, staging := New(Config{}), New(Config{Regression: true, SlowSearch: 1})
	_, _, p := get(t, prod, "GET", "/api/users/7", false)
	_, _, s := get(t, staging, "GET", "/api/users/7", false)
	if p["name"] != "User 7" || p["full_name"] != nil || s["full_name"] != "User 7" || s["name"] != nil || p["tier"] != "gold" {
		t.Fatalf("users: production %v, staging %v", p, s)
	}
	for _, target := range []string{"/api/products?page=2", "/api/search?q=lamp"} {
		_, _, a := get(t, prod, "GET", target, false)
		_, _, b := get(t, staging, "GET", target, false)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s: production %s, staging %s", target, ja, jb)
		}
	}
	code, h, v := get(t, prod, "GET", "/api/products?page=1", true)
	if code != 200 || h.Get("Content-Encoding") != "gzip" || len(v["items"].([]any)) != 5 {
		t.Fatalf("products with gzip: %d %v %v", code, h, v)
	}
	if code, _, v := get(t, prod, "POST", "/api/orders", false); code != 201 || v["order_id"] == nil {
		t.Fatalf("orders: %d %v", code, v)
	}
	if code, _, _ := get(t, prod, "GET", "/api/users/x", false); code != 404 {
		t.Fatalf("bad user id: %d", code)
	}
}
