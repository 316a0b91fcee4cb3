package diff

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/tapline/tapline/schema"
)

// response builds a response; headers are "Name: value" lines.
func response(status int32, body string, headers ...string) *schema.Response {
	r := &schema.Response{Status: status, Body: []byte(body), BodySize: int64(len(body))}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		r.Headers = append(r.Headers, &schema.Header{Name: name, Value: strings.TrimSpace(value)})
	}
	return r
}

func jsonResp(body string, headers ...string) *schema.Response {
	return response(200, body, append([]string{"Content-Type: application/json"}, headers...)...)
}

func newDiffer(t testing.TB, cfg Config) *Differ {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zl(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func rawDeflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func br(b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
