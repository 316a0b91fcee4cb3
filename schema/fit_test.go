package schema

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
)

func sized(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

func exchangeWith(req, resp int) *Exchange {
	e := sampleExchange()
	e.Request.Body, e.Request.BodySize = sized(req, 'q'), int64(req)
	e.Original = &Exchange_Response{Response: &Response{Status: 200, Body: sized(resp, 'r'), BodySize: int64(resp)}}
	return e
}

func TestFitExchange(t *testing.T) {
	cases := []struct {
		name        string
		req, resp   int
		limit       int
		wantCut     int
		wantReqKept bool // the request body is whole: it can be replayed
	}{
		{"fits already", 1000, 2000, 1 << 20, 0, true},
		{"one large response", 100, 2 << 20, 1 << 20, 1, true},
		{"the response goes first", 700 << 10, 900 << 10, 1 << 20, 1, true},
		{"a request over the limit on its own", 1200 << 10, 10 << 10, 1 << 20, 2, false},
		{"the rest is over the limit", 10, 10, 50, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := exchangeWith(tc.req, tc.resp)
			orig := proto.Clone(e).(*Exchange)
			n := FitExchange(e, tc.limit)
			if n != tc.wantCut {
				t.Fatalf("cut %d bodies, want %d", n, tc.wantCut)
			}
			bodiesLeft := len(e.Request.Body) + len(e.GetResponse().Body)
			if size := proto.Size(e); size > tc.limit && bodiesLeft > 0 {
				t.Fatalf("encodes to %d bytes, over %d, with %d body bytes left", size, tc.limit, bodiesLeft)
			}
			checkCut(t, "request", orig.Request.Body, e.Request.Body, e.Request.BodyTruncated, e.Request.BodySize, int64(tc.req))
			checkCut(t, "response", orig.GetResponse().Body, e.GetResponse().Body, e.GetResponse().BodyTruncated, e.GetResponse().BodySize, int64(tc.resp))
			if kept := !e.Request.BodyTruncated; kept != tc.wantReqKept {
				t.Errorf("request kept whole: %v, want %v", kept, tc.wantReqKept)
			}
			if !tc.wantReqKept && len(e.GetResponse().Body) != 0 {
				t.Errorf("the request was cut while the response kept %d bytes", len(e.GetResponse().Body))
			}
			if n > 0 && tc.limit > 1000 && proto.Size(e) < tc.limit-1000 {
				t.Errorf("cut to %d bytes, more than needed for %d", proto.Size(e), tc.limit)
			}
		})
	}
}

// checkCut: a body is a prefix of what it was, flagged truncated exactly
// when it was cut, and keeps its wire size.
func checkCut(t *testing.T, side string, before, after []byte, truncated bool, size, wantSize int64) {
	t.Helper()
	if !bytes.HasPrefix(before, after) {
		t.Errorf("%s body is not a prefix of the original", side)
	}
	if truncated != (len(after) < len(before)) {
		t.Errorf("%s: truncated %v with %d of %d bytes kept", side, truncated, len(after), len(before))
	}
	if size != wantSize {
		t.Errorf("%s: BodySize %d, want the original %d", side, size, wantSize)
	}
}

func TestFitReplayResult(t *testing.T) {
	r := &ReplayResult{Exchange: exchangeWith(300<<10, 600<<10), Outcomes: []*TargetOutcome{
		{Target: "candidate", Result: &TargetOutcome_Response{Response: &Response{Status: 200, Body: sized(600<<10, 'c')}}},
		{Target: "baseline", Result: &TargetOutcome_Error{Error: "timeout"}, ErrorKind: "timeout"},
		{Target: "small", Result: &TargetOutcome_Response{Response: &Response{Status: 204, Body: sized(10, 's')}}},
	}}
	// The request goes first (it has been sent; it is not compared), then
	// production's and the candidate's 600 KiB answers are cut to one length.
	if n := FitReplayResult(r, 1<<20); n != 3 {
		t.Fatalf("cut %d bodies, want 3 (the request, production's and the candidate's answers)", n)
	}
	if req := r.Exchange.Request; len(req.Body) != 0 || !req.BodyTruncated || req.BodySize != 300<<10 {
		t.Errorf("the request keeps %d bytes (truncated %v, size %d); want it emptied first", len(req.Body), req.BodyTruncated, req.BodySize)
	}
	if size := proto.Size(r); size > 1<<20 {
		t.Fatalf("encodes to %d bytes", size)
	}
	prod, cand := r.Exchange.GetResponse(), r.Outcomes[0].GetResponse()
	if len(prod.Body) != len(cand.Body) || !prod.BodyTruncated || !cand.BodyTruncated {
		t.Errorf("production keeps %d bytes (truncated %v), candidate %d (%v); want one length, both flagged",
			len(prod.Body), prod.BodyTruncated, len(cand.Body), cand.BodyTruncated)
	}
	if s := r.Outcomes[2].GetResponse(); len(s.Body) != 10 || s.BodyTruncated {
		t.Errorf("a small body was cut: %d bytes, truncated %v", len(s.Body), s.BodyTruncated)
	}
}

// TestFitProperties: for random body sizes and limits, the message fits
// (or has no body bytes left), bodies are prefixes, and flags are right.
func TestFitProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		req, resp := rng.IntN(3<<20), rng.IntN(3<<20)
		limit := 200 + rng.IntN(3<<20)
		e := exchangeWith(req, resp)
		e.Request.BodyTruncated = rng.IntN(4) == 0 // cut at capture already
		orig := proto.Clone(e).(*Exchange)
		FitExchange(e, limit)
		left := len(e.Request.Body) + len(e.GetResponse().Body)
		if proto.Size(e) > limit && left > 0 {
			t.Fatalf("req %d resp %d limit %d: %d bytes with %d body bytes left", req, resp, limit, proto.Size(e), left)
		}
		if !bytes.HasPrefix(orig.Request.Body, e.Request.Body) || !bytes.HasPrefix(orig.GetResponse().Body, e.GetResponse().Body) {
			t.Fatalf("req %d resp %d limit %d: a body is not a prefix", req, resp, limit)
		}
		if orig.Request.BodyTruncated && !e.Request.BodyTruncated {
			t.Fatal("a truncated flag was cleared")
		}
	}
}

// TestFitReplayResultProperties: for random body sizes, target counts and
// limits, the result fits (or has no body bytes left), every body is a
// prefix of what it was, the request is emptied before any response is
// cut, and the cut responses share one length.
func TestFitReplayResultProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		r := &ReplayResult{Exchange: exchangeWith(rng.IntN(1<<20), rng.IntN(1<<20))}
		for i := range rng.IntN(4) {
			r.Outcomes = append(r.Outcomes, &TargetOutcome{Target: fmt.Sprint("t", i),
				Result: &TargetOutcome_Response{Response: &Response{Status: 200, Body: sized(rng.IntN(1<<20), 't')}}})
		}
		limit := 200 + rng.IntN(3<<20)
		orig := proto.Clone(r).(*ReplayResult)
		FitReplayResult(r, limit)
		bodies := func(r *ReplayResult) [][]byte {
			out := [][]byte{r.Exchange.Request.Body, r.Exchange.GetResponse().Body}
			for _, o := range r.Outcomes {
				out = append(out, o.GetResponse().Body)
			}
			return out
		}
		before, after := bodies(orig), bodies(r)
		left, cutLen := 0, -1
		for i := range after {
			left += len(after[i])
			if !bytes.HasPrefix(before[i], after[i]) {
				t.Fatalf("body %d is not a prefix of the original", i)
			}
			if i > 0 && len(after[i]) < len(before[i]) {
				if len(after[0]) > 0 {
					t.Fatalf("a response was cut while the request kept %d bytes", len(after[0]))
				}
				if cutLen >= 0 && len(after[i]) != cutLen {
					t.Fatalf("cut responses have lengths %d and %d, want one", cutLen, len(after[i]))
				}
				cutLen = len(after[i])
			}
		}
		if proto.Size(r) > limit && left > 0 {
			t.Fatalf("limit %d: %d bytes with %d body bytes left", limit, proto.Size(r), left)
		}
	}
}
