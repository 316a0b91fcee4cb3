package diff

import (
	"fmt"
	"strings"
	"testing"
)

// benchPair returns a ~2 KiB JSON document and a copy with a few
// differences: a changed price, a new field, a removed tag, a masked id
// and a timestamp.
func benchPair() (prod, cand string) {
	item := func(i int, price string, extra string) string {
		return fmt.Sprintf(`{"id":"123e4567-e89b-12d3-a456-4266141740%02d","sku":"SKU-%04d","name":"Item number %d","price":%s,`+
			`"tags":["red","large","sale"],"stock":{"warehouse":"north","count":%d}%s}`, i, i*7, i, price, i*3, extra)
	}
	var a, b []string
	for i := range 9 {
		a = append(a, item(i, "19.90", ""))
		switch i {
		case 3:
			b = append(b, item(i, "21.50", ""))
		case 5:
			b = append(b, item(i, "19.9", `,"discount":0.1`))
		default:
			b = append(b, item(i, "19.90", ""))
		}
	}
	prod = `{"meta":{"requestId":"123e4567-e89b-12d3-a456-426614174000","generatedAt":"2026-01-02T15:04:05Z","page":1},"items":[` + strings.Join(a, ",") + `]}`
	cand = `{"meta":{"requestId":"9b2e4567-e89b-12d3-a456-426614174999","generatedAt":"2026-01-02T15:04:09Z","page":1},"items":[` + strings.Join(b, ",") + `]}`
	cand = strings.Replace(cand, `["red","large","sale"]`, `["red","large"]`, 1)
	return prod, cand
}

func BenchmarkCompareJSON(b *testing.B) {
	prod, cand := benchPair()
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"ignore+unordered", Config{IgnorePaths: []string{"$.meta.requestId", "$..generatedAt"}, UnorderedPaths: []string{"$.items[*].tags"}}},
		{"no-masks", Config{NoDefaultMasks: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := newDiffer(b, bc.cfg)
			p, c := jsonResp(prod, "Date: x"), jsonResp(cand, "Date: y")
			b.SetBytes(int64(len(prod) + len(cand)))
			b.ReportAllocs()
			var r Result
			for b.Loop() {
				r = d.Compare(p, c)
			}
			if len(r.Keys) == 0 {
				b.Fatal("no differences")
			}
		})
	}
}

func BenchmarkCompareJSONEqual(b *testing.B) {
	prod, _ := benchPair()
	d := newDiffer(b, Config{})
	p, c := jsonResp(prod), jsonResp(prod)
	b.SetBytes(int64(2 * len(prod)))
	b.ReportAllocs()
	for b.Loop() {
		d.Compare(p, c)
	}
}

func BenchmarkCompareGzipJSON(b *testing.B) {
	prod, cand := benchPair()
	d := newDiffer(b, Config{})
	p, c := jsonResp(string(gz([]byte(prod))), "Content-Encoding: gzip"), jsonResp(string(gz([]byte(cand))), "Content-Encoding: gzip")
	b.SetBytes(int64(len(prod) + len(cand)))
	b.ReportAllocs()
	for b.Loop() {
		d.Compare(p, c)
	}
}

func BenchmarkRoute(b *testing.B) {
	r, err := NewRouter([]string{"GET /users/{id}/orders/{order}"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Route("GET", "/api/v1/accounts/123e4567-e89b-12d3-a456-426614174000/items/42?x=1")
	}
}

// apiPair returns a realistic ~2 KiB API response body (an order listing:
// nested objects, an array of 10 orders, numbers, strings, a request_id
// UUID and RFC 3339 timestamps) as production recorded it, the target's
// answer that differs only in request_id and generated_at (equal after
// the default masks), and one with three real differences besides: a
// changed price, a changed status and an added member.
func apiPair() (prod, masked, diffs string) {
	order := func(i int, price, status, extra string) string {
		return fmt.Sprintf(`{"id":"ord_%05d","sku":"SKU-%04d","name":"Widget %c","qty":%d,"unit_price":%s,`+
			`"status":"%s","shipping":{"method":"express","eta_days":%d},"tags":["gift","eu"]%s}`,
			10400+i, 37*i+5, 'A'+i, i%3+1, price, status, i%4+1, extra)
	}
	doc := func(requestID, generatedAt string, changed bool) string {
		var orders []string
		for i := range 10 {
			price, status, extra := fmt.Sprintf("%d.%02d", 12+i*3, i*7%100), "shipped", ""
			if changed {
				switch i {
				case 2:
					price = "13.99"
				case 6:
					status = "cancelled"
				case 8:
					extra = `,"gift_wrap":true`
				}
			}
			orders = append(orders, order(i, price, status, extra))
		}
		return `{"request_id":"` + requestID + `","generated_at":"` + generatedAt + `","api_version":"2026-10-01",` +
			`"customer":{"id":48213,"name":"Ada Lovelace","email":"ada@example.com","tier":"gold","verified":true,` +
			`"address":{"street":"12 Analytical Row","city":"London","postcode":"NW1 6XE","country":"GB"}},` +
			`"orders":[` + strings.Join(orders, ",") + `],` +
			`"pagination":{"page":2,"per_page":10,"total":137,"next":"/v1/orders?page=3","prev":null}}`
	}
	prod = doc("3f1c9a2e-7b4d-4e8a-9c21-5d6e7f8a9b0c", "2026-11-28T08:15:30.123Z", false)
	masked = doc("a8e2b7c4-1d3f-4a5b-8c6d-9e0f1a2b3c4d", "2026-11-28T08:15:31.987Z", false)
	diffs = doc("a8e2b7c4-1d3f-4a5b-8c6d-9e0f1a2b3c4d", "2026-11-28T08:15:31.987Z", true)
	return prod, masked, diffs
}

// apiHeaders are the headers of a typical JSON API answer; the Date,
// Server, Content-Length, ETag and X-Request-Id ones are ignored by
// default.
func apiHeaders(requestID, date string) []string {
	return []string{
		"Content-Type: application/json; charset=utf-8", "Date: " + date, "Server: nginx/1.27.2",
		"Content-Length: 2048", "Cache-Control: private, max-age=0, no-cache", "Vary: Accept-Encoding, Authorization",
		"ETag: W/\"" + requestID[:8] + "\"", "X-Request-Id: " + requestID, "Strict-Transport-Security: max-age=31536000",
		"X-Ratelimit-Remaining: 4999",
	}
}

// BenchmarkCompareJSONAPI compares realistic ~2 KiB JSON API responses
// with ten headers: "equal-after-masks" differs only in a UUID and a
// timestamp (and ignored headers), "few-diffs" has three real differences
// besides.
func BenchmarkCompareJSONAPI(b *testing.B) {
	prod, masked, diffs := apiPair()
	p := response(200, prod, apiHeaders("3f1c9a2e-7b4d-4e8a-9c21-5d6e7f8a9b0c", "Sat, 28 Nov 2026 08:15:30 GMT")...)
	for _, bc := range []struct {
		name string
		cand string
		keys int
	}{
		{"equal-after-masks", masked, 0},
		{"few-diffs", diffs, 3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := newDiffer(b, Config{})
			c := response(200, bc.cand, apiHeaders("a8e2b7c4-1d3f-4a5b-8c6d-9e0f1a2b3c4d", "Sat, 28 Nov 2026 08:15:31 GMT")...)
			b.SetBytes(int64(len(prod) + len(bc.cand)))
			b.ReportAllocs()
			var r Result
			for b.Loop() {
				r = d.Compare(p, c)
			}
			if len(r.Keys) != bc.keys {
				b.Fatalf("keys %q, want %d", r.Keys, bc.keys)
			}
		})
	}
}

// BenchmarkParseJSON parses the ~2 KiB document of apiPair with a reused
// parser and tree, as Compare does with production's body.
func BenchmarkParseJSON(b *testing.B) {
	prod, _, _ := apiPair()
	data := []byte(prod)
	var p parser
	var t jtree
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.parse(&t, data, nil); err != nil {
			b.Fatal(err)
		}
	}
}
