package schema

import (
	"google.golang.org/protobuf/proto"
)

// FitExchange cuts the bodies of e until e encodes to at most limit
// bytes, and returns how many bodies it cut. The response goes first: a
// request with a cut body cannot be replayed (the replayer refuses it),
// while a cut response is still compared on the part that is known. The
// request is cut only when the response is empty and e is still over. A
// cut body is marked BodyTruncated and keeps its BodySize (the size on the
// wire), as the recorder marks a body longer than its cap. Kafka refuses a
// record over its size limit (about 1 MiB) outright; a record cut to fit
// is published instead of lost.
//
// FitExchange modifies e in place (only the Body slices and their flags;
// no byte is written). If the rest of e is over limit, every body ends up
// empty and e is still over; the caller checks proto.Size.
func FitExchange(e *Exchange, limit int) int {
	var req, resp []body
	if r := e.GetRequest(); r != nil {
		req = append(req, body{b: &r.Body, truncated: &r.BodyTruncated})
	}
	if r := e.GetResponse(); r != nil {
		resp = append(resp, body{b: &r.Body, truncated: &r.BodyTruncated})
	}
	return fit(e, limit, resp, req)
}

// FitReplayResult is FitExchange for a result. The recorded request goes
// first: it has been sent, and the analyzer compares only the responses.
// Then production's and every target's responses are cut to one common
// length, the longest first, so that what is compared keeps prefixes of
// the same length.
func FitReplayResult(r *ReplayResult, limit int) int {
	var req, resps []body
	if q := r.GetExchange().GetRequest(); q != nil {
		req = append(req, body{b: &q.Body, truncated: &q.BodyTruncated})
	}
	if p := r.GetExchange().GetResponse(); p != nil {
		resps = append(resps, body{b: &p.Body, truncated: &p.BodyTruncated})
	}
	for _, o := range r.GetOutcomes() {
		if resp := o.GetResponse(); resp != nil {
			resps = append(resps, body{b: &resp.Body, truncated: &resp.BodyTruncated})
		}
	}
	return fit(r, limit, req, resps)
}

// body is one body of a message and its truncation flag.
type body struct {
	b         *[]byte
	truncated *bool
	cut       bool // cut by fit
}

// fit cuts the bodies of each group in turn, until m fits: within a
// group, every body longer than a common length is cut to it, the longest
// length that takes off what m is over limit; a group is emptied before
// the next one is touched. Each cut body may grow the encoding by a few
// bytes (its new truncation flag) and shrinks it by at least what was cut
// minus 4 (its length prefix only gets shorter), hence a margin per body.
func fit(m proto.Message, limit int, groups ...[]body) int {
	n := 0
	for _, bodies := range groups {
		for {
			over := proto.Size(m) - limit
			if over <= 0 {
				break
			}
			longest := 0
			for _, b := range bodies {
				longest = max(longest, len(*b.b))
			}
			if longest == 0 {
				break // this group is empty; on to the next
			}
			need := over + 8*len(bodies)
			removed := func(level int) int {
				n := 0
				for _, b := range bodies {
					n += max(0, len(*b.b)-level)
				}
				return n
			}
			// The highest level that removes at least need bytes (0
			// removes everything).
			lo, hi := 0, longest
			for lo < hi {
				mid := (lo + hi + 1) / 2
				if removed(mid) >= need {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			for i := range bodies {
				b := &bodies[i]
				if len(*b.b) > lo {
					*b.b = (*b.b)[:lo:lo]
					*b.truncated, b.cut = true, true
				}
			}
		}
		for _, b := range bodies {
			if b.cut {
				n++
			}
		}
	}
	return n
}
