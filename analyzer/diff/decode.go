package diff

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/andybalholm/brotli"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/tapline/tapline/schema"
)

// decoded is one side's body, decoded.
type decoded struct {
	body       []byte // decoded content; the raw bytes when err is set
	incomplete bool   // body is only a prefix of the content
	why        string // why incomplete
	encoding   string // the Content-Encoding, normalised ("gzip, br")
	mediaType  string // lower-cased, without parameters
	charset    string // the charset parameter, lower-cased
	err        error  // decoding failed
}

// decodeBody undoes r's Content-Encoding, bounded by Config.MaxDecoded.
// Charsets are converted later (convertCharset), once it is known that the
// body is compared as text.
func (d *Differ) decodeBody(r *schema.Response, side string) decoded {
	var out decoded
	var encs []string
	for _, h := range r.GetHeaders() {
		switch name := h.GetName(); {
		case isHeader(name, "Content-Encoding"):
			for e := range strings.SplitSeq(h.GetValue(), ",") {
				if e = strings.ToLower(strings.TrimSpace(e)); e != "" && e != "identity" {
					encs = append(encs, e)
				}
			}
		case isHeader(name, "Content-Type") && out.mediaType == "":
			out.mediaType, out.charset = parseContentType(h.GetValue())
		}
	}
	out.encoding = strings.Join(encs, ", ")
	raw := d.rawBody(r, side)
	out.body, out.incomplete, out.why = raw.body, raw.incomplete, raw.why
	if len(encs) == 0 || len(raw.body) == 0 {
		return out
	}
	body, capped, err := decodeContent(r.GetBody(), encs, d.cfg.MaxDecoded, r.GetBodyTruncated())
	switch {
	case err != nil:
		out.err = fmt.Errorf("%s: %w", side, err)
	case capped:
		out.body, out.incomplete = body, true
		out.why = fmt.Sprintf("the %s body decodes to more than %d bytes (MaxDecoded)", side, d.cfg.MaxDecoded)
	default:
		out.body, out.incomplete = body, r.GetBodyTruncated()
		if !out.incomplete {
			out.why = ""
		}
	}
	return out
}

// isHeader reports whether name is want, in any case: strings.EqualFold,
// quicker when the lengths differ. That shortcut needs want without 'k'
// or 's', whose other Unicode cases (U+212A Kelvin sign, U+017F long s)
// are longer in UTF-8.
func isHeader(name, want string) bool {
	return len(name) == len(want) && strings.EqualFold(name, want)
}

// decodeContent undoes the content codings encs (in the order they were
// applied, so the last is undone first). Each step's output is capped at
// limit bytes; capped reports that it was cut there. When the input is
// known to be cut short (truncated, or an earlier step capped), an
// unexpected end of the stream is expected and the output so far is
// returned without error.
func decodeContent(raw []byte, encs []string, limit int, truncated bool) (out []byte, capped bool, err error) {
	out = raw
	for i := len(encs) - 1; i >= 0; i-- {
		var r io.Reader
		src := bytes.NewReader(out)
		switch encs[i] {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(src)
			if err != nil {
				if truncated && errors.Is(err, io.ErrUnexpectedEOF) || truncated && errors.Is(err, io.EOF) {
					return nil, capped, nil
				}
				return nil, false, fmt.Errorf("gzip: %w", err)
			}
			r = zr
		case "deflate":
			if isZlib(out) {
				zr, err := zlib.NewReader(src)
				if err != nil {
					return nil, false, fmt.Errorf("deflate (zlib): %w", err)
				}
				r = zr
			} else {
				r = flate.NewReader(src) // raw deflate, as some servers send
			}
		case "br":
			r = brotli.NewReader(src)
		default:
			return nil, false, fmt.Errorf("unsupported content-encoding %q", encs[i])
		}
		next, c, err := readCapped(r, limit)
		if err != nil && !(truncated && errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, false, fmt.Errorf("%s: %w", encs[i], err)
		}
		out = next
		if c {
			capped, truncated = true, true
		}
	}
	return out, capped, nil
}

// readCapped reads r to the end or to limit bytes.
func readCapped(r io.Reader, limit int) ([]byte, bool, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if n > int64(limit) {
		return buf.Bytes()[:limit], true, nil
	}
	return buf.Bytes(), false, err
}

// isZlib reports whether b starts with a zlib header (RFC 1950): method 8
// and a header checksum divisible by 31.
func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// parseContentType returns the lower-cased media type and charset of a
// Content-Type value, tolerating malformed parameters.
func parseContentType(v string) (mediaType, charset string) {
	if mt, cs, ok := simpleContentType(v); ok {
		return mt, strings.ToLower(cs)
	}
	return parseContentTypeMIME(v)
}

// parseContentTypeMIME is parseContentType with the mime package, for the
// values simpleContentType does not take.
func parseContentTypeMIME(v string) (mediaType, charset string) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return mt, strings.ToLower(params["charset"])
	}
	mt, rest, _ := strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	for p := range strings.SplitSeq(rest, ";") {
		k, val, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "charset") {
			charset = strings.ToLower(strings.Trim(strings.TrimSpace(val), `"`))
		}
	}
	return mt, charset
}

// convertCharset converts b from charset (a WHATWG label: "iso-8859-1",
// "windows-1252", "utf-16", "shift_jis", ...) to UTF-8. A byte order mark
// overrides the label, as in browsers, and is removed; without a label
// the body is taken as UTF-8. Invalid input becomes U+FFFD.
func convertCharset(b []byte, charset string) ([]byte, error) {
	hasBOM := bytes.HasPrefix(b, []byte{0xef, 0xbb, 0xbf}) || bytes.HasPrefix(b, []byte{0xfe, 0xff}) || bytes.HasPrefix(b, []byte{0xff, 0xfe})
	if charset == "" || charset == "utf-8" || charset == "utf8" {
		if !hasBOM {
			return b, nil
		}
		charset = "utf-8"
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return b, fmt.Errorf("unknown charset %q", charset)
	}
	out, _, err := transform.Bytes(unicode.BOMOverride(enc.NewDecoder()), b)
	if err != nil {
		return b, fmt.Errorf("charset %s: %w", charset, err)
	}
	return out, nil
}

// DecodeBody returns a body as its reader sees it: the Content-Encoding
// named in headers undone and a charset from Content-Type converted to
// UTF-8, at most limit decoded bytes (0: 8 MiB). complete is false when
// the result is only a prefix (the recorded body was truncated, or the
// limit cut it). On an error the raw body comes back with it. For people
// (tapline cat) and body excerpts; Compare does its own decoding.
func DecodeBody(headers []*schema.Header, body []byte, truncated bool, limit int) (decoded []byte, complete bool, err error) {
	if limit <= 0 {
		limit = 8 << 20
	}
	var encs []string
	var charset string
	for _, h := range headers {
		switch {
		case strings.EqualFold(h.GetName(), "Content-Encoding"):
			for e := range strings.SplitSeq(h.GetValue(), ",") {
				if e = strings.ToLower(strings.TrimSpace(e)); e != "" && e != "identity" {
					encs = append(encs, e)
				}
			}
		case strings.EqualFold(h.GetName(), "Content-Type") && charset == "":
			_, charset = parseContentType(h.GetValue())
		}
	}
	out, capped := body, false
	if len(encs) > 0 && len(body) > 0 {
		if out, capped, err = decodeContent(body, encs, limit, truncated); err != nil {
			return body, false, err
		}
	}
	if out, err = convertCharset(out, charset); err != nil {
		return body, false, err
	}
	return out, !truncated && !capped, nil
}
