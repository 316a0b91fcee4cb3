package shop

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
)

// Routes are the route names Request returns, in the order of the mix.
var Routes = []string{"GET /api/users/{id}", "GET /api/products", "GET /api/search", "POST /api/orders", "GET /health"}

var terms = []string{"lamp", "chair", "desk", "mug", "kettle", "clock"}

// Request returns the i-th request of the demo traffic mix against base
// (http://host:port, no trailing slash): users 40 %, product pages 25 %,
// searches 20 %, orders (POST, a write the replayer skips by default)
// 10 %, health 5 %. route names what was asked, as in Routes. The same i
// always gives the same request, so a run can be repeated; the request has
// no context, the caller adds one.
func Request(base string, i int) (route string, req *http.Request) {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	switch p := r.IntN(100); {
	case p < 40:
		req, _ = http.NewRequest("GET", fmt.Sprintf("%s/api/users/%d", base, 1+r.IntN(200)), nil)
		route = Routes[0]
	case p < 65:
		req, _ = http.NewRequest("GET", fmt.Sprintf("%s/api/products?page=%d", base, 1+r.IntN(10)), nil)
		route = Routes[1]
	case p < 85:
		req, _ = http.NewRequest("GET", fmt.Sprintf("%s/api/search?q=%s", base, terms[r.IntN(len(terms))]), nil)
		route = Routes[2]
	case p < 95:
		req, _ = http.NewRequest("POST", base+"/api/orders", strings.NewReader(fmt.Sprintf(`{"product":%d,"qty":%d}`, 1+r.IntN(40), 1+r.IntN(3))))
		req.Header.Set("Content-Type", "application/json")
		route = Routes[3]
	default:
		req, _ = http.NewRequest("GET", base+"/health", nil)
		route = Routes[4]
	}
	req.Header.Set("User-Agent", "tapline-demo/1")
	req.Header.Set("Accept", "application/json")
	return route, req
}
