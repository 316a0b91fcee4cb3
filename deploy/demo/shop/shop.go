// Package shop is the demo service of `make demo`: a small JSON shop API
// that plays production, and, built with a Regression, the staging
// candidate that tapline must catch.
//
// Routes:
//
//	GET  /api/users/{id}        a user (created_at and request_id differ on every call: noise)
//	GET  /api/products?page=N   five products, gzip when the client accepts it
//	GET  /api/search?q=...      matching products
//	POST /api/orders            201 and a new order id (not replayed by default: a write)
//	GET  /health                "ok"
//
// The regression (Regression true): /api/users/{id} renames "name" to
// "full_name", and /api/search answers 40 ms later.
package shop

import (
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Config configures the service.
type Config struct {
	// Regression makes this the staging build with the deliberate
	// changes. Default false: production.
	Regression bool
	// SlowSearch is how much later the regressed /api/search answers.
	// Default 40ms.
	SlowSearch time.Duration
}

// New returns the shop's HTTP handler.
func New(cfg Config) http.Handler {
	if cfg.SlowSearch <= 0 {
		cfg.SlowSearch = 40 * time.Millisecond
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id <= 0 {
			writeJSON(w, r, http.StatusNotFound, map[string]any{"error": "no such user"})
			return
		}
		user := map[string]any{
			"id": id, "email": fmt.Sprintf("user%d@example.com", id), "tier": tier(id),
			"created_at": time.Now().UTC().Format(time.RFC3339Nano), "request_id": uuid(),
		}
		if cfg.Regression {
			user["full_name"] = fmt.Sprintf("User %d", id)
		} else {
			user["name"] = fmt.Sprintf("User %d", id)
		}
		writeJSON(w, r, http.StatusOK, user)
	})
	mux.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		page = max(page, 1)
		var items []map[string]any
		for i := range 5 {
			items = append(items, product((page-1)*5+i+1))
		}
		writeJSON(w, r, http.StatusOK, map[string]any{"page": page, "items": items})
	})
	mux.HandleFunc("GET /api/search", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Regression {
			time.Sleep(cfg.SlowSearch)
		}
		q := strings.ToLower(r.URL.Query().Get("q"))
		var hits []map[string]any
		for id := 1; id <= 40 && len(hits) < 3; id++ {
			if p := product(id); strings.Contains(strings.ToLower(p["name"].(string)), q) {
				hits = append(hits, p)
			}
		}
		writeJSON(w, r, http.StatusOK, map[string]any{"q": q, "hits": hits})
	})
	mux.HandleFunc("POST /api/orders", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusCreated, map[string]any{"order_id": uuid(), "status": "accepted"})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	return mux
}

var names = []string{"Lamp", "Chair", "Desk", "Mug", "Kettle", "Shelf", "Rug", "Clock"}

func product(id int) map[string]any {
	return map[string]any{"id": id, "name": fmt.Sprintf("%s %d", names[id%len(names)], id), "price_cents": 500 + 137*id%4000, "currency": "EUR"}
}

func tier(id int) string {
	if id%7 == 0 {
		return "gold"
	}
	return "standard"
}

// writeJSON answers v as JSON, gzip-compressed when the client accepts it
// and the body is worth it.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", uuid())
	if len(body) > 256 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		zw := gzip.NewWriter(w)
		zw.Write(body)
		zw.Close()
		return
	}
	w.WriteHeader(status)
	w.Write(body)
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
