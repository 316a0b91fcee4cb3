package diff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tapline/tapline/schema"
)

// Kinds of body comparison.
const (
	BodyEmpty  = "empty"  // both bodies are empty
	BodyJSON   = "json"   // both are JSON documents: structural diff in Diffs
	BodyText   = "text"   // both are text: line diff in Text
	BodyBinary = "binary" // anything else, or undecodable: sizes, hashes, first differing byte
)

// BodyResult compares two bodies.
type BodyResult struct {
	Kind  string `json:"kind"` // BodyEmpty, BodyJSON, BodyText or BodyBinary
	Equal bool   `json:"equal"`
	// Partial is set when at least one body is known only in part (the
	// recorder or the replayer truncated it, or it decodes to more than
	// Config.MaxDecoded): the bodies were compared over the part known on
	// both sides, and what lies past it is not reported as a difference.
	Partial       bool   `json:"partial,omitempty"`
	PartialReason string `json:"partial_reason,omitempty"`
	// DecodeError says why a body could not be decoded (Content-Encoding
	// or charset). After a Content-Encoding failure the raw bytes of both
	// sides are compared, as binary.
	DecodeError string `json:"decode_error,omitempty"`

	Prod BodySide `json:"production"`
	Cand BodySide `json:"target"`

	Diffs     []Diff       `json:"diffs,omitempty"`      // json: the differences, at most Config.MaxDiffs
	MoreDiffs int          `json:"more_diffs,omitempty"` // json: differences not listed in Diffs
	Text      *TextSummary `json:"text,omitempty"`       // text: set when the bodies differ
	// FirstDiffOffset is, for binary bodies that differ, the offset of the
	// first differing byte (the shorter size when one is a prefix of the
	// other).
	FirstDiffOffset *int `json:"first_diff_offset,omitempty"`
}

// BodySide describes one side's body.
type BodySide struct {
	Size      int    `json:"size"`                 // bytes after Content-Encoding decoding (what is known when Partial)
	WireSize  int64  `json:"wire_size"`            // Response.BodySize: bytes on the wire
	Encoding  string `json:"encoding,omitempty"`   // Content-Encoding ("gzip")
	MediaType string `json:"media_type,omitempty"` // Content-Type without parameters
	Charset   string `json:"charset,omitempty"`    // Content-Type charset parameter
	SHA256    string `json:"sha256,omitempty"`     // hex digest of the compared bytes, for text and binary bodies that differ
}

// compareBody compares the bodies of p and c and returns the difference
// keys found.
func (d *Differ) compareBody(p, c *schema.Response) (BodyResult, []string) {
	dp, dc := d.decodeBody(p, "production"), d.decodeBody(c, "target")
	res := BodyResult{
		Prod: BodySide{Size: len(dp.body), WireSize: wireSize(p), Encoding: dp.encoding, MediaType: dp.mediaType, Charset: dp.charset},
		Cand: BodySide{Size: len(dc.body), WireSize: wireSize(c), Encoding: dc.encoding, MediaType: dc.mediaType, Charset: dc.charset},
	}
	var errs []string
	for _, x := range []decoded{dp, dc} {
		if x.err != nil {
			errs = append(errs, x.err.Error())
		}
	}
	if len(errs) > 0 {
		// Compare what was on the wire, both sides alike.
		dp, dc = d.rawBody(p, "production"), d.rawBody(c, "target")
		a, b := d.cutKnown(&res, dp, dc)
		res.DecodeError = strings.Join(errs, "; ")
		return res, d.compareBinary(&res, a, b)
	}
	a, b := d.cutKnown(&res, dp, dc)

	textA, textB := texty(dp.mediaType, dp.charset), texty(dc.mediaType, dc.charset)
	if textA || dp.mediaType == "" {
		a = d.charset(&res, a, dp.charset, "production")
	}
	if textB || dc.mediaType == "" {
		b = d.charset(&res, b, dc.charset, "target")
	}

	switch {
	case len(a) == 0 && len(b) == 0:
		res.Kind, res.Equal = BodyEmpty, true
		return res, nil
	case jsonish(dp.mediaType) || jsonish(dc.mediaType) || dp.mediaType == "" && dc.mediaType == "" && looksJSON(a) && looksJSON(b):
		if bytes.Equal(a, b) {
			res.Kind, res.Equal = BodyJSON, true
			return res, nil
		}
		s := d.getScratch()
		errA := s.p.parse(&s.ta, a, nil)
		guide := &s.ta // most of the target's document is usually production's
		if errA != nil {
			guide = nil
		}
		errB := s.p.parse(&s.tb, b, guide)
		if errA == nil && errB == nil {
			res.Kind = BodyJSON
			w := d.diffJSON(s)
			d.putScratch(s)
			res.Diffs, res.MoreDiffs, res.Equal = w.diffs, w.more, len(w.keys) == 0
			return res, w.keys
		}
		d.putScratch(s)
	}
	if (textA || dp.mediaType == "" && looksText(a)) && (textB || dc.mediaType == "" && looksText(b)) {
		res.Kind = BodyText
		if bytes.Equal(a, b) {
			res.Equal = true
			return res, nil
		}
		res.Text = d.diffText(string(a), string(b))
		if res.Text.Added == 0 && res.Text.Removed == 0 {
			res.Equal, res.Text = true, nil // equal after masks
			return res, nil
		}
		res.Prod.SHA256, res.Cand.SHA256 = sha(a), sha(b)
		return res, []string{"body:text"}
	}
	return res, d.compareBinary(&res, a, b)
}

// rawBody is r's body as on the wire, for comparing undecodable bodies.
func (d *Differ) rawBody(r *schema.Response, side string) decoded {
	out := decoded{body: r.GetBody(), incomplete: r.GetBodyTruncated()}
	if out.incomplete {
		out.why = fmt.Sprintf("the %s body was truncated to %d of its %d bytes", side, len(out.body), r.GetBodySize())
	}
	if len(out.body) > d.cfg.MaxDecoded {
		out.body, out.incomplete = out.body[:d.cfg.MaxDecoded], true
		out.why = fmt.Sprintf("the %s body has more than %d bytes (MaxDecoded)", side, d.cfg.MaxDecoded)
	}
	return out
}

// cutKnown returns the parts of the two bodies that can be compared: a
// body known only in part bounds what is compared of the other one.
func (d *Differ) cutKnown(res *BodyResult, dp, dc decoded) (a, b []byte) {
	a, b = dp.body, dc.body
	if dp.incomplete && len(b) > len(a) {
		b = b[:len(a)]
	}
	if dc.incomplete && len(a) > len(b) {
		a = a[:len(b)]
	}
	if dp.incomplete || dc.incomplete {
		res.Partial = true
		var why []string
		for _, w := range []string{dp.why, dc.why} {
			if w != "" {
				why = append(why, w)
			}
		}
		res.PartialReason = strings.Join(why, "; ")
	}
	return a, b
}

func (d *Differ) charset(res *BodyResult, b []byte, charset, side string) []byte {
	out, err := convertCharset(b, charset)
	if err != nil {
		if res.DecodeError != "" {
			res.DecodeError += "; "
		}
		res.DecodeError += side + ": " + err.Error()
	}
	return out
}

func (d *Differ) compareBinary(res *BodyResult, a, b []byte) []string {
	res.Kind = BodyBinary
	if bytes.Equal(a, b) {
		res.Equal = true
		return nil
	}
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	res.FirstDiffOffset = &n
	res.Prod.SHA256, res.Cand.SHA256 = sha(a), sha(b)
	return []string{"body:bytes"}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func wireSize(r *schema.Response) int64 {
	if n := r.GetBodySize(); n > 0 {
		return n
	}
	return int64(len(r.GetBody()))
}

// jsonish reports whether a media type is JSON: application/json, text/json
// and any */*+json (application/problem+json, application/vnd.api+json).
func jsonish(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// texty reports whether a media type is compared as text: text/*, JSON,
// XML, JavaScript, form data, YAML, CSV; or any type given a charset.
func texty(mt, charset string) bool {
	switch {
	case charset != "", strings.HasPrefix(mt, "text/"), jsonish(mt), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/xml", "application/javascript", "application/ecmascript", "application/x-javascript",
		"application/x-www-form-urlencoded", "application/x-ndjson", "application/graphql",
		"application/yaml", "application/x-yaml", "application/csv", "image/svg+xml":
		return true
	}
	return false
}

// looksJSON reports whether b starts, after white space, like a JSON object
// or array.
func looksJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// looksText reports whether a body of unknown type reads as text: valid
// UTF-8 without control characters other than white space (the first 8
// KiB are examined; a character cut at that boundary is allowed).
func looksText(b []byte) bool {
	if len(b) > 8<<10 {
		b = b[:8<<10]
	}
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			if len(b) < utf8.UTFMax && !utf8.FullRune(b) {
				return true
			}
			return false
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f', r == 0x7f:
			return false
		}
		b = b[n:]
	}
	return true
}
