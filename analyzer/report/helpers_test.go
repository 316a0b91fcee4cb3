package report

import (
	"fmt"
	"testing"
	"time"

	"github.com/tapline/tapline/analyzer"
	"github.com/tapline/tapline/analyzer/diff"
	"github.com/tapline/tapline/schema"
)

// testStart is the capture time of the first test exchange. The sub-
// millisecond part checks that both paths truncate to milliseconds.
var testStart = time.Date(2025, 3, 1, 10, 0, 0, 123_456_789, time.UTC)

// testResults are 30 replay results of five routes, each replayed against
// a candidate ("staging") and the baseline ("baseline"):
//
//   - GET /users/{id}: the server name differs on both targets (noise),
//     except on every tenth, where the baseline's is production's and the
//     candidate's difference is learned noise; on every third exchange
//     the candidate also changes $.name (regression).
//   - GET /orders/{id}: every other one of them answers 500 on the
//     candidate (status and body regressions).
//   - POST /cart: the candidate is unreachable on some (target errors).
//   - GET /search: half have no recorded production response.
//   - GET /health: always the same.
//
// Latencies vary per exchange; the candidate is about 20% slower.
func testResults() []*schema.ReplayResult {
	var out []*schema.ReplayResult
	for i := range 30 {
		first := testStart.Add(time.Duration(i) * 37 * time.Second)
		prodMs := 5 + float64((i*7)%40) + 0.25
		tgtMs := prodMs*1.2 + float64(i%3)
		req := &schema.Request{Host: "api.example", Headers: []*schema.Header{{Name: "Accept", Value: "application/json"}}}
		var prod, cand, base *schema.Response
		candErr, candKind := "", ""
		switch i % 5 {
		case 0:
			req.Method, req.Target = "GET", fmt.Sprintf("/users/%d", 100+i)
			prod = jsonResp(200, fmt.Sprintf(`{"id":%d,"name":"user-%d","server":"node-a"}`, 100+i, i))
			name := fmt.Sprintf("user-%d", i)
			if i%3 == 0 {
				name = "USER-" + name
			}
			cand = jsonResp(200, fmt.Sprintf(`{"id":%d,"name":%q,"server":"node-b"}`, 100+i, name))
			server := "node-c"
			if i%10 == 5 {
				server = "node-a" // as production: the candidate's difference is learned noise
			}
			base = jsonResp(200, fmt.Sprintf(`{"id":%d,"name":"user-%d","server":%q}`, 100+i, i, server))
		case 1:
			req.Method, req.Target = "GET", fmt.Sprintf("/orders/%d", 5000+i)
			body := fmt.Sprintf(`{"order":%d,"total":10.5,"items":[{"sku":"a","qty":1},{"sku":"b","qty":%d}]}`, 5000+i, i%4)
			prod, base = jsonResp(200, body), jsonResp(200, body)
			cand = jsonResp(200, body)
			if i%10 == 1 {
				cand = jsonResp(500, `{"error":"internal"}`)
			}
		case 2:
			req.Method, req.Target = "POST", "/cart"
			req.Body = []byte(`{"sku":"a"}`)
			prod, cand, base = jsonResp(201, `{"ok":true}`), jsonResp(201, `{"ok":true}`), jsonResp(201, `{"ok":true}`)
			if i%4 == 2 {
				cand, candErr = nil, "dial tcp 10.0.0.7:8080: connection refused"
				if i%8 == 2 {
					candKind = "connection_refused" // the others as a 1.0 replayer wrote them, without a kind
				}
			}
		case 3:
			req.Method, req.Target = "GET", fmt.Sprintf("/search?q=term%d", i)
			if i%2 == 0 {
				prod = textResp(200, "results for term")
			}
			cand, base = textResp(200, "results for term"), textResp(200, "results for term")
		case 4:
			req.Method, req.Target = "GET", "/health"
			prod, cand, base = textResp(200, "ok"), textResp(200, "ok"), textResp(200, "ok")
		}
		ex := &schema.Exchange{
			Id: fmt.Sprintf("ex-%03d", i), SessionKey: fmt.Sprintf("s%d", i%4), Recorder: "rec-1", Request: req,
			Times: &schema.CaptureTimes{
				RequestFirstByteUnixNano: first.UnixNano(),
				ResponseLastByteUnixNano: first.UnixNano() + int64(prodMs*1e6),
			},
		}
		if prod != nil {
			ex.Original = &schema.Exchange_Response{Response: prod}
		} else {
			ex.Original = &schema.Exchange_ResponseMissing{ResponseMissing: &schema.ResponseMissing{Reason: schema.MissingReason_MISSING_REASON_TIMEOUT}}
		}
		sent := first.Add(time.Hour).UnixNano()
		out = append(out, &schema.ReplayResult{Exchange: ex, Replayer: "rep-1", Outcomes: []*schema.TargetOutcome{
			withKind(outcome("staging", cand, candErr, tgtMs, sent), candKind),
			outcome("baseline", base, "", prodMs+float64(i%2), sent),
		}})
	}
	return out
}

func withKind(o *schema.TargetOutcome, kind string) *schema.TargetOutcome {
	o.ErrorKind = kind
	return o
}

func jsonResp(status int32, body string) *schema.Response {
	return &schema.Response{Status: status, Body: []byte(body), BodySize: int64(len(body)),
		Headers: []*schema.Header{{Name: "Content-Type", Value: "application/json"}}}
}

func textResp(status int32, body string) *schema.Response {
	return &schema.Response{Status: status, Body: []byte(body), BodySize: int64(len(body)),
		Headers: []*schema.Header{{Name: "Content-Type", Value: "text/plain"}}}
}

func outcome(target string, r *schema.Response, errText string, ms float64, sent int64) *schema.TargetOutcome {
	o := &schema.TargetOutcome{Target: target, LatencyNanos: int64(ms * 1e6), SentUnixNano: sent}
	if r != nil {
		o.Result = &schema.TargetOutcome_Response{Response: r}
	} else {
		o.Result = &schema.TargetOutcome_Error{Error: errText}
	}
	return o
}

// testDocs are the pair documents of testResults, as the analyzer builds
// them with "baseline" as the baseline, learning noise from two baseline
// comparisons of a route on.
func testDocs(t testing.TB) []analyzer.Doc {
	t.Helper()
	c, err := testComparer()
	if err != nil {
		t.Fatal(err)
	}
	var docs []analyzer.Doc
	for _, r := range testResults() {
		docs = append(docs, c.Compare(r)...)
	}
	return docs
}

func testComparer() (*analyzer.Comparer, error) {
	return analyzer.NewComparer(analyzer.CompareConfig{Baseline: "baseline", Diff: diff.Config{NoiseMinSamples: 2}})
}

// doc builds a pair document by hand.
func doc(route, target, role, verdict string, prodMs, tgtMs float64, keys ...[]string) analyzer.Doc {
	d := analyzer.Doc{Timestamp: testStart, ExchangeID: "x", Target: target, Role: role, Route: route, Verdict: verdict}
	if prodMs >= 0 {
		d.LatencyMs.Production = &prodMs
	}
	if tgtMs >= 0 {
		d.LatencyMs.Target = &tgtMs
	}
	if len(keys) > 0 {
		d.Regressions = keys[0]
	}
	if len(keys) > 1 {
		d.Noise = keys[1]
	}
	if len(keys) > 2 {
		d.LearnedNoise = keys[2]
	}
	return d
}

func at(d analyzer.Doc, t time.Time) analyzer.Doc {
	d.Timestamp = t
	return d
}
