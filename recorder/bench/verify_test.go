package main

import (
	"crypto/sha256"
	"path/filepath"
	"reflect"
	"testing"
)

func TestVerify(t *testing.T) {
	body := sha256.Sum256([]byte(`{"id":1}`))
	other := sha256.Sum256([]byte(`{"id":2}`))
	empty := sha256.Sum256(nil)
	truth := []exchange{
		{Conn: "127.0.0.1:1000", Seq: 0, Method: "GET", Target: "/a", Status: 200, ReqSHA: empty, RespSHA: body},
		{Conn: "127.0.0.1:1000", Seq: 1, Method: "POST", Target: "/b", Status: 201, ReqSHA: body, RespSHA: empty},
		{Conn: "127.0.0.1:2000", Seq: 0, Method: "GET", Target: "/c", Status: 404, ReqSHA: empty, RespSHA: other},
	}
	// got returns what a faithful recorder emits, changed by edit.
	got := func(edit func([]observed) []observed) []observed {
		obs := make([]observed, len(truth))
		for i, e := range truth {
			obs[i] = observed{Conn: e.Conn, Method: e.Method, Target: e.Target, Status: e.Status, ReqSHA: e.ReqSHA, RespSHA: e.RespSHA}
		}
		return edit(obs)
	}
	cases := []struct {
		name string
		got  []observed
		want report
	}{
		{"all exact", got(func(o []observed) []observed { return o }),
			report{Truth: 3, Recorded: 3, Matched: 3}},
		{"one missing", got(func(o []observed) []observed { return o[1:] }),
			report{Truth: 3, Recorded: 2, Matched: 2, Missing: 1}},
		{"recorded twice", got(func(o []observed) []observed { return append(o, o[2]) }),
			report{Truth: 3, Recorded: 4, Matched: 3, Extra: 1}},
		{"never sent", got(func(o []observed) []observed { return append(o, observed{Method: "GET", Target: "/x"}) }),
			report{Truth: 3, Recorded: 4, Matched: 3, Extra: 1}},
		{"response body differs", got(func(o []observed) []observed { o[0].RespSHA = other; return o }),
			report{Truth: 3, Recorded: 3, Matched: 2, RespBodyDiff: 1}},
		{"response body truncated", got(func(o []observed) []observed { o[0].RespTruncated = true; return o }),
			report{Truth: 3, Recorded: 3, Matched: 2, RespBodyDiff: 1}},
		{"request body differs", got(func(o []observed) []observed { o[1].ReqSHA = other; return o }),
			report{Truth: 3, Recorded: 3, Matched: 2, ReqBodyDiff: 1}},
		{"status differs", got(func(o []observed) []observed { o[2].Status = 200; return o }),
			report{Truth: 3, Recorded: 3, Matched: 2, StatusDiff: 1}},
		{"response missing", got(func(o []observed) []observed { o[2].Status, o[2].Missing = 0, "CAPTURE_ENDED"; return o }),
			report{Truth: 3, Recorded: 3, Matched: 2, NoResponse: 1}},
		{"wrong connection", got(func(o []observed) []observed { o[2].Conn = "127.0.0.1:1000"; return o }),
			report{Truth: 3, Recorded: 3, Matched: 2, WrongConn: 1}},
		{"out of order on a connection", got(func(o []observed) []observed { o[0], o[1] = o[1], o[0]; return o }),
			report{Truth: 3, Recorded: 3, Matched: 2, OutOfOrder: 1}},
		{"other connections interleave freely", got(func(o []observed) []observed { return []observed{o[2], o[0], o[1]} }),
			report{Truth: 3, Recorded: 3, Matched: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(truth, tc.got)
			if (len(r.Problems) == 0) != (r.Matched == r.Truth && r.Extra == 0) {
				t.Errorf("problems %q do not agree with the counts", r.Problems)
			}
			r.Problems = nil
			if !reflect.DeepEqual(r, tc.want) {
				t.Errorf("got %+v\nwant %+v", r, tc.want)
			}
		})
	}
}

func TestTruthRoundTrip(t *testing.T) {
	want := []exchange{
		{Conn: "127.0.0.1:40000", Seq: 3, Method: "POST", Target: "/api/orders?rid=7", Status: 201, ReqLen: 2048,
			ReqSHA: sha256.Sum256([]byte("req")), RespLen: 40, RespSHA: sha256.Sum256([]byte("resp"))},
		{Conn: "127.0.0.1:40001", Method: "GET", Target: "/api/users/8?expand=roles&fields=id,name,email", Status: 200},
	}
	path := filepath.Join(t.TempDir(), "truth.tsv")
	if err := writeTruth(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestProfiles checks that every request of a profile has a unique
// target (verify looks exchanges up by method and target) and that the
// mix holds each kind of request it promises.
func TestProfiles(t *testing.T) {
	for _, p := range []profile{profileSmall, profileMix} {
		seen := map[string]bool{}
		kinds := map[string]int{}
		for rid := range uint64(20000) {
			c := p.request(rid)
			key := c.method + " " + c.target
			if seen[key] {
				t.Fatalf("%s: request %d repeats %s", p, rid, key)
			}
			seen[key] = true
			kind := c.method
			switch {
			case len(c.body) == bigBody:
				kind = "upload"
			case len(c.body) >= 1024:
				kind = "post 1-10 KiB"
			case len(c.target) > 13 && c.target[:13] == "/api/exports/":
				kind = "download"
			case len(c.target) > 10 && c.target[:10] == "/api/feed/":
				kind = "chunked"
			case len(c.header) > 0 && c.header[0][0] == "Accept-Encoding":
				kind = "gzip"
			}
			kinds[kind]++
		}
		if p == profileMix {
			for _, k := range []string{"GET", "DELETE", "post 1-10 KiB", "upload", "download", "chunked", "gzip"} {
				if kinds[k] == 0 {
					t.Errorf("mix: no %s requests in 20 000", k)
				}
			}
		}
	}
}
