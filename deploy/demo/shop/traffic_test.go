package shop

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRequestMix: the mix has its stated shares, every request is
// answered by the shop as its route promises, and the same index gives
// the same request.
func TestRequestMix(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	defer srv.Close()
	const n = 2000
	count := map[string]int{}
	for i := range n {
		route, req := Request(srv.URL, i)
		count[route]++
		if i < 200 { // enough to see every route answered
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("request %d (%s): %v", i, route, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			want := http.StatusOK
			if route == "POST /api/orders" {
				want = http.StatusCreated
			}
			if resp.StatusCode != want {
				t.Errorf("request %d %s %s: status %d, want %d", i, req.Method, req.URL, resp.StatusCode, want)
			}
		}
	}
	shares := map[string]float64{Routes[0]: 0.40, Routes[1]: 0.25, Routes[2]: 0.20, Routes[3]: 0.10, Routes[4]: 0.05}
	if len(count) != len(shares) {
		t.Fatalf("routes %v, want %v", count, Routes)
	}
	for route, share := range shares {
		if got := float64(count[route]) / n; got < share-0.04 || got > share+0.04 {
			t.Errorf("%s: %.1f %% of the mix, want about %.0f %%", route, 100*got, 100*share)
		}
	}
	r1, a := Request("http://x", 42)
	r2, b := Request("http://x", 42)
	if r1 != r2 || a.URL.String() != b.URL.String() || a.Method != b.Method {
		t.Errorf("Request is not deterministic: %s %s vs %s %s", a.Method, a.URL, b.Method, b.URL)
	}
}
