package diff

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tapline/tapline/schema"
)

func TestContentEncoding(t *testing.T) {
	doc := []byte(`{"user":{"name":"ada","langs":["en","fr"]},"n":1}`)
	other := []byte(`{"user":{"name":"bob","langs":["en","fr"]},"n":1}`)
	enc := func(body []byte, ce ...string) *schema.Response {
		r := jsonResp(string(body))
		for _, e := range ce {
			r.Headers = append(r.Headers, &schema.Header{Name: "Content-Encoding", Value: e})
		}
		return r
	}
	cases := []struct {
		name       string
		prod, cand *schema.Response
		wantKeys   []string
		wantKind   string
		wantErr    string // substring of Body.DecodeError
	}{
		{"identity both", enc(doc), enc(doc, "identity"), nil, BodyJSON, ""},
		{"gzip vs identity", enc(gz(doc), "gzip"), enc(doc), []string{"header:content-encoding"}, BodyJSON, ""},
		{"x-gzip", enc(gz(doc), "x-gzip"), enc(gz(other), "x-gzip"), []string{"body:$.user.name"}, BodyJSON, ""},
		{"deflate zlib", enc(zl(doc), "deflate"), enc(zl(other), "deflate"), []string{"body:$.user.name"}, BodyJSON, ""},
		{"deflate raw", enc(rawDeflate(doc), "deflate"), enc(zl(doc), "deflate"), nil, BodyJSON, ""},
		{"br", enc(br(doc), "br"), enc(br(other), "br"), []string{"body:$.user.name"}, BodyJSON, ""},
		{"chained in one header", enc(br(gz(doc)), "gzip, br"), enc(br(gz(doc)), "GZIP , BR"), nil, BodyJSON, ""},
		{"chained over two headers", enc(br(gz(doc)), "gzip", "br"), enc(br(gz(other)), "gzip, br"), []string{"body:$.user.name"}, BodyJSON, ""},
		{"chain in the wrong order fails", enc(gz(br(doc)), "gzip, br"), enc(gz(br(doc)), "gzip, br"), nil, BodyBinary, "production: br:"},
		{"corrupt gzip target", enc(gz(doc), "gzip"), enc([]byte("not gzip at all"), "gzip"), []string{"body:bytes"}, BodyBinary, "target: gzip:"},
		{"corrupt gzip both alike", enc([]byte("\x1f\x8bxx"), "gzip"), enc([]byte("\x1f\x8bxx"), "gzip"), nil, BodyBinary, "gzip"},
		{"gzip cut short, not marked truncated", enc(gz(doc)[:20], "gzip"), enc(gz(doc), "gzip"), []string{"body:bytes"}, BodyBinary, "unexpected EOF"},
		{"unsupported coding", enc(doc, "zstd"), enc(doc, "zstd"), nil, BodyBinary, `unsupported content-encoding "zstd"`},
	}
	d := newDiffer(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Compare(tc.prod, tc.cand)
			if !slices.Equal(r.Keys, tc.wantKeys) || r.Body.Kind != tc.wantKind {
				t.Errorf("keys %q kind %s, want %q %s (body %+v)", r.Keys, r.Body.Kind, tc.wantKeys, tc.wantKind, r.Body)
			}
			if tc.wantErr == "" && r.Body.DecodeError != "" || !strings.Contains(r.Body.DecodeError, tc.wantErr) {
				t.Errorf("decode error %q, want %q", r.Body.DecodeError, tc.wantErr)
			}
		})
	}
}

func TestDecodeBomb(t *testing.T) {
	const limit = 1 << 20
	bomb := gz(make([]byte, 4*limit)) // 4 MiB of zeros in ~4 KiB
	d := newDiffer(t, Config{MaxDecoded: limit})
	for _, tc := range []struct {
		name       string
		prod, cand *schema.Response
		wantKeys   []string
	}{
		// Production answered a small body; the target a bomb: it is longer
		// than production's whole body, a real difference.
		{"target bomb", response(200, "\x00\x00", "Content-Type: application/octet-stream"),
			response(200, string(bomb), "Content-Type: application/octet-stream", "Content-Encoding: gzip"),
			[]string{"header:content-encoding", "body:bytes"}},
		// Both decode past the cap: the first MiB is compared, and equal.
		{"both", response(200, string(bomb), "Content-Encoding: gzip"), response(200, string(br(make([]byte, 2*limit))), "Content-Encoding: br"),
			[]string{"header:content-encoding"}},
		{"bomb in a chain", response(200, string(br(bomb)), "Content-Encoding: gzip, br"), response(200, string(br(bomb)), "Content-Encoding: gzip, br"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Compare(tc.prod, tc.cand)
			if !slices.Equal(r.Keys, tc.wantKeys) {
				t.Errorf("keys %q, want %q", r.Keys, tc.wantKeys)
			}
			if !r.Body.Partial || !strings.Contains(r.Body.PartialReason, "MaxDecoded") {
				t.Errorf("partial %v %q", r.Body.Partial, r.Body.PartialReason)
			}
			if r.Body.Prod.Size > limit || r.Body.Cand.Size > limit {
				t.Errorf("decoded sizes %d %d past the cap", r.Body.Prod.Size, r.Body.Cand.Size)
			}
		})
	}
}

// A recorded body cut by the recorder's cap is compared over its known
// part only: what the target sends past it is not a difference.
func TestTruncatedRecording(t *testing.T) {
	var items []string
	for i := range 300 {
		items = append(items, fmt.Sprintf(`{"id":%d,"name":"x%x"}`, i, i*i*7919))
	}
	full := []byte(`{"items":[` + strings.Join(items, ",") + `]}`)
	d := newDiffer(t, Config{})
	cut := func(b []byte, n int, ce string) *schema.Response {
		r := jsonResp(string(b[:n]))
		if ce != "" {
			r.Headers = append(r.Headers, &schema.Header{Name: "Content-Encoding", Value: ce})
		}
		r.BodyTruncated, r.BodySize = true, int64(len(b))
		return r
	}
	withCE := func(b []byte, ce string) *schema.Response {
		r := jsonResp(string(b))
		r.Headers = append(r.Headers, &schema.Header{Name: "Content-Encoding", Value: ce})
		return r
	}
	changed := bytes.Replace(full, []byte(`"name":"x0"`), []byte(`"name":"y0"`), 1)
	shorter := full[:100]
	for _, tc := range []struct {
		name       string
		prod, cand *schema.Response
		wantKeys   []string
	}{
		{"identity, same content", cut(full, 1000, ""), jsonResp(string(full)), nil},
		{"gzip, same content", cut(gz(full), len(gz(full))/2, "gzip"), withCE(gz(full), "gzip"), nil},
		{"br, same content", cut(br(full), len(br(full))/3, "br"), withCE(br(full), "br"), nil},
		{"difference inside the known part", cut(full, 1000, ""), jsonResp(string(changed)), []string{"body:text"}},
		{"target shorter than the known part", cut(full, 1000, ""), jsonResp(string(shorter)), []string{"body:text"}},
		{"target truncated too", jsonResp(string(full)), cut(full, 500, ""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Compare(tc.prod, tc.cand)
			if !slices.Equal(r.Keys, tc.wantKeys) {
				t.Errorf("keys %q, want %q (body %+v)", r.Keys, tc.wantKeys, r.Body)
			}
			if !r.Body.Partial || !strings.Contains(r.Body.PartialReason, "truncated") || r.Body.DecodeError != "" {
				t.Errorf("partial %v %q, decode error %q", r.Body.Partial, r.Body.PartialReason, r.Body.DecodeError)
			}
		})
	}
}

func TestCharset(t *testing.T) {
	utf16le := func(s string) string {
		b := []byte{0xff, 0xfe}
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return string(b)
	}
	utf16be := func(s string) string {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r>>8), byte(r))
		}
		return string(b)
	}
	d := newDiffer(t, Config{})
	for _, tc := range []struct {
		name       string
		prod, cand *schema.Response
		wantKind   string
		wantKeys   []string
		wantErr    string
	}{
		{"latin-1 vs utf-8", response(200, "caf\xe9\n", "Content-Type: text/plain; charset=iso-8859-1"),
			response(200, "café\n", "Content-Type: text/plain; charset=utf-8"), BodyText, []string{"header:content-type"}, ""},
		{"charset label case", response(200, "caf\xe9\n", "Content-Type: text/plain; charset=iso-8859-1"),
			response(200, "caf\xe9\n", "Content-Type: Text/Plain;charset=ISO-8859-1"), BodyText, nil, ""},
		{"windows-1252 euro", response(200, "{\"p\":\"\x80 5\"}", "Content-Type: application/json; charset=windows-1252"),
			response(200, "{\"p\":\"\x80 6\"}", "Content-Type: application/json; charset=windows-1252"), BodyJSON, []string{"body:$.p"}, ""},
		{"utf-16 with BOM", response(200, utf16le(`{"a":"é"}`), "Content-Type: application/json; charset=utf-16"),
			response(200, "\xef\xbb\xbf"+`{"a":"é"}`, "Content-Type: application/json; charset=utf-16"), BodyJSON, nil, ""},
		{"utf-16be label", response(200, utf16be("héllo"), "Content-Type: text/plain; charset=utf-16be"),
			response(200, utf16be("héllo"), "Content-Type: text/plain; charset=UTF-16BE"), BodyText, nil, ""},
		{"quoted charset", response(200, "\xe9", `Content-Type: text/plain; charset="latin1"`),
			response(200, "\xe9", "Content-Type: text/plain; charset=latin1"), BodyText, nil, ""},
		{"unknown charset", response(200, "abc", "Content-Type: text/plain; charset=x-klingon"),
			response(200, "abc", "Content-Type: text/plain; charset=x-klingon"), BodyText, nil, `unknown charset "x-klingon"`},
		{"no type, UTF-8 BOM", response(200, "\xef\xbb\xbf[1]"), response(200, "[1.0]"), BodyJSON, nil, ""},
		{"gzip then charset", response(200, string(gz([]byte("caf\xe9"))), "Content-Type: text/plain; charset=iso-8859-1", "Content-Encoding: gzip"),
			response(200, string(gz([]byte("café"))), "Content-Type: text/plain; charset=utf-8", "Content-Encoding: gzip"), BodyText,
			[]string{"header:content-type"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Compare(tc.prod, tc.cand)
			if r.Body.Kind != tc.wantKind || !slices.Equal(r.Keys, tc.wantKeys) {
				t.Errorf("kind %s keys %q, want %s %q (body %+v)", r.Body.Kind, r.Keys, tc.wantKind, tc.wantKeys, r.Body)
			}
			if tc.wantErr == "" && r.Body.DecodeError != "" || !strings.Contains(r.Body.DecodeError, tc.wantErr) {
				t.Errorf("decode error %q, want %q", r.Body.DecodeError, tc.wantErr)
			}
		})
	}
}

func TestIsZlib(t *testing.T) {
	if !isZlib(zl([]byte("x"))) || isZlib(rawDeflate([]byte("x"))) || isZlib(nil) {
		t.Error("zlib header detection")
	}
}

func TestDecodeBody(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"café":1}`))
	zw.Close()
	h := func(kv ...string) []*schema.Header {
		var out []*schema.Header
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, &schema.Header{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	cases := []struct {
		name         string
		headers      []*schema.Header
		body         []byte
		truncated    bool
		want         string
		wantComplete bool
		wantErr      bool
	}{
		{"plain", nil, []byte("hello"), false, "hello", true, false},
		{"gzip", h("Content-Encoding", "gzip"), gz.Bytes(), false, `{"café":1}`, true, false},
		{"latin-1", h("Content-Type", "text/plain; charset=ISO-8859-1"), []byte{'c', 'a', 'f', 0xe9}, false, "café", true, false},
		{"truncated", nil, []byte("hel"), true, "hel", false, false},
		{"corrupt gzip", h("Content-Encoding", "gzip"), []byte("not gzip"), false, "not gzip", false, true},
	}
	for _, tc := range cases {
		got, complete, err := DecodeBody(tc.headers, tc.body, tc.truncated, 0)
		if string(got) != tc.want || complete != tc.wantComplete || (err != nil) != tc.wantErr {
			t.Errorf("%s: %q complete %v err %v", tc.name, got, complete, err)
		}
	}
}
