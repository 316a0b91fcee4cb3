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
