package diff

import (
	"strings"
	"testing"
)

func TestRouter(t *testing.T) {
	r, err := NewRouter([]string{
		"GET /users/{id}/orders/{order}",
		"/static/{path...}",
		`~^/v[0-9]+/files/.+$ => /files/{path}`,
		`POST ~^/(api|rpc)/[a-z]+$ => /$1/{method}`,
		"/products/{slug}",
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, target, want string
	}{
		// Configured patterns first.
		{"GET", "/users/ada/orders/x-1?full=1", "GET /users/{id}/orders/{order}"},
		{"DELETE", "/users/7/orders/9", "DELETE /users/{id}/orders/{id}"}, // the template is for GET only
		{"get", "/static/css/site.css", "GET /static/{path...}"},
		{"GET", "/static/", "GET /static/"}, // {path...} needs a segment
		{"GET", "/v2/files/a/b/c.txt", "GET /files/{path}"},
		{"POST", "/rpc/ping", "POST /rpc/{method}"},
		{"GET", "/rpc/ping", "GET /rpc/ping"},
		{"GET", "/products/blue-shirt-42", "GET /products/{slug}"},
		// Defaults.
		{"GET", "/users/123", "GET /users/{id}"},
		{"GET", "/users/123/", "GET /users/{id}/"},
		{"GET", "/users/123e4567-e89b-12d3-a456-426614174000/avatar", "GET /users/{uuid}/avatar"},
		{"GET", "/objects/5f3c9a1b2e4d7c0012345678", "GET /objects/{hex}"},
		{"GET", "/commits/a1b2c3d4", "GET /commits/{hex}"},
		{"GET", "/tags/deadbeef", "GET /tags/deadbeef"}, // hex without a digit: a word
		{"GET", "/tags/cafe1234", "GET /tags/{hex}"},    // hex with a digit
		{"GET", "/v1/health", "GET /v1/health"},         // short words stay
		{"GET", "/reset/dGhpcyBpcyBhIHRva2Vu0123", "GET /reset/{token}"},
		{"GET", "/s/Ab3_xY9-Qw7zLm2Np5Rt", "GET /s/{token}"},
		{"GET", "/blog/my-very-long-article-title-2024", "GET /blog/my-very-long-article-title-2024"}, // a slug, not a token
		{"GET", "/abcdefghijklmnopqrstuvwxyz", "GET /abcdefghijklmnopqrstuvwxyz"},                     // no digit
		{"GET", "/files/123.json", "GET /files/{id}.json"},
		{"GET", "/img/5f3c9a1b2e.png", "GET /img/{hex}.png"},
		{"GET", "/", "GET /"},
		{"GET", "", "GET /"},
		{"OPTIONS", "*", "OPTIONS *"},
		{"GET", "http://example.com/users/42?x#frag", "GET /users/{id}"},
		{"GET", "https://example.com", "GET /"},
		{"GET", "/search?q=/users/1", "GET /search"},
		{"PUT", "/a/1/b/2/c/3", "PUT /a/{id}/b/{id}/c/{id}"},
	}
	for _, tc := range cases {
		if got := r.Route(tc.method, tc.target); got != tc.want {
			t.Errorf("Route(%s, %s) = %s, want %s", tc.method, tc.target, got, tc.want)
		}
	}
	// The zero Router uses the default rules only.
	if got := (&Router{}).Route("GET", "/users/1"); got != "GET /users/{id}" {
		t.Errorf("zero router: %s", got)
	}
	if got := (*Router)(nil).Route("get", "/users/1"); got != "GET /users/{id}" {
		t.Errorf("nil router: %s", got)
	}
}

func TestRouterRefusesBadPatterns(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"users/{id}", `a template starts with "/"`},
		{"/users/{id", "a wildcard is a whole segment"},
		{"/users/x{id}", "a wildcard is a whole segment"},
		{"/files/{path...}/x", "must be the last segment"},
		{"get /users", "not a method"},
		{"~^/a(", "=>"},
		{"~^/a( => /a", "missing closing )"},
		{"~^/a => a", "must start with /"},
	} {
		_, err := NewRouter([]string{"/ok", tc.pattern})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "route pattern 1") {
			t.Errorf("%q: error %v, want %q", tc.pattern, err, tc.want)
		}
	}
}
