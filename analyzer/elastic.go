package analyzer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/tapline/tapline/internal/esclient"
)

// ElasticConfig configures the Elasticsearch indexer. Zero values are the
// documented defaults.
type ElasticConfig struct {
	URL string // http(s)://host:9200, without credentials in it; required
	// DataStream is the data stream the pair documents go to; the index
	// template of the same name is installed by EnsureTemplate. Default
	// "tapline-pairs".
	DataStream string
	// Username and Password, or APIKey, authenticate; default none.
	Username, Password, APIKey string
	// CAFile (PEM) or CAFingerprint (SHA-256 of a certificate in the
	// node's chain) say which certificate an https node must present.
	// Default: one signed by a CA of the system's roots.
	CAFile, CAFingerprint string
	// MinBackoff and MaxBackoff bound the wait between retries of a bulk
	// request that failed transiently (connection errors, 429, 5xx).
	// Defaults 100ms and 10s. Retries go on until the context ends.
	MinBackoff, MaxBackoff time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Elastic indexes pair documents with the bulk API. It implements Indexer
// and is safe for concurrent use.
type Elastic struct {
	cfg ElasticConfig
	es  *elasticsearch.Client
}

// NewElastic returns an indexer for cfg. It does not contact the cluster.
func NewElastic(cfg ElasticConfig) (*Elastic, error) {
	if cfg.URL == "" {
		return nil, errors.New("elasticsearch: no URL")
	}
	if cfg.DataStream == "" {
		cfg.DataStream = "tapline-pairs"
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	conn := cfg.conn()
	esCfg, err := conn.Elasticsearch()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	esCfg.DisableRetry = true // Index retries per item, with backoff, until its context ends
	es, err := elasticsearch.NewClient(esCfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client for %s: %w", cfg.URL, err)
	}
	return &Elastic{cfg: cfg, es: es}, nil
}

func (cfg ElasticConfig) conn() esclient.Config {
	return esclient.Config{
		URL: cfg.URL, CAFile: cfg.CAFile, CAFingerprint: cfg.CAFingerprint,
		Username: cfg.Username, Password: cfg.Password, APIKey: cfg.APIKey,
	}
}

// EnsureTemplate installs (or updates) the index template that makes
// DataStream a data stream with tapline's mapping.
func (e *Elastic) EnsureTemplate(ctx context.Context) error {
	body, err := json.Marshal(indexTemplate(e.cfg.DataStream))
	if err != nil {
		return err
	}
	res, err := e.es.Indices.PutIndexTemplate(e.cfg.DataStream, bytes.NewReader(body), e.es.Indices.PutIndexTemplate.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("installing index template %s at %s: %w", e.cfg.DataStream, e.cfg.URL, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		return fmt.Errorf("installing index template %s: %s: %s", e.cfg.DataStream, esclient.Unauthorized(res.StatusCode, e.cfg.conn()), msg)
	}
	if res.IsError() {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		return fmt.Errorf("installing index template %s: %s: %s", e.cfg.DataStream, res.Status(), msg)
	}
	return e.updateMapping(ctx)
}

// updateMapping puts the template's mapping on the data stream's write
// index, if the data stream exists. A template only shapes indices created
// after it, and the mapping is not dynamic: without this, a field that a
// newer analyzer adds (error_kind, schema 1.1) would stay unsearchable
// until the data stream rolls over, which nothing does by itself (the
// template has no lifecycle). Older backing indices are left alone: they
// hold no documents with the new fields. Adding fields is always allowed;
// changing the type of an existing one is not, and is reported with the
// way out (a rollover gives a write index with the new mapping). A user
// without the privilege to change mappings (the index privilege manage)
// gets a warning, not an error: the new fields are still stored.
func (e *Elastic) updateMapping(ctx context.Context) error {
	mappings := indexTemplate(e.cfg.DataStream)["template"].(map[string]any)["mappings"]
	body, err := json.Marshal(mappings)
	if err != nil {
		return err
	}
	res, err := e.es.Indices.PutMapping([]string{e.cfg.DataStream}, bytes.NewReader(body), e.es.Indices.PutMapping.WithContext(ctx),
		e.es.Indices.PutMapping.WithWriteIndexOnly(true))
	if err != nil {
		return fmt.Errorf("updating the mapping of data stream %s at %s: %w", e.cfg.DataStream, e.cfg.URL, err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusNotFound:
		return nil // no data stream yet: the first write creates it from the template
	case http.StatusUnauthorized, http.StatusForbidden:
		e.cfg.Logger.Warn("not allowed to add this analyzer's fields to the existing data stream; they are stored, but not searchable until it rolls over",
			"data_stream", e.cfg.DataStream, "status", res.StatusCode,
			"next", "grant the index privilege manage on it, or have an administrator roll it over: POST /"+e.cfg.DataStream+"/_rollover")
		return nil
	case http.StatusBadRequest:
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		return fmt.Errorf("updating the mapping of data stream %s: %s: %s; a field changed type: roll the data stream over (POST /%s/_rollover) and restart, or write to a new one (--data-stream)",
			e.cfg.DataStream, res.Status(), msg, e.cfg.DataStream)
	}
	if res.IsError() {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		return fmt.Errorf("updating the mapping of data stream %s: %s: %s", e.cfg.DataStream, res.Status(), msg)
	}
	return nil
}

// Index writes docs with `create` and returns one outcome per document. A
// transient failure (no connection, 429, 5xx, and 401/403: credentials
// can be fixed while the analyzer waits) of the request or of single
// items is retried with backoff until it succeeds or ctx ends.
func (e *Elastic) Index(ctx context.Context, docs []Doc) ([]ItemOutcome, error) {
	outcomes := make([]ItemOutcome, len(docs))
	pending := make([]int, len(docs)) // indexes of docs still to write
	for i := range pending {
		pending[i] = i
	}
	backoff := e.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		retry, err := e.bulk(ctx, docs, pending, outcomes)
		if err != nil {
			e.cfg.Logger.Warn("bulk request failed; retrying", "docs", len(pending), "attempt", attempt, "err", err)
			retry = pending
		}
		if len(retry) == 0 {
			return outcomes, nil
		}
		pending = retry
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d documents not indexed after %d attempts: %w", len(pending), attempt, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, e.cfg.MaxBackoff)
	}
}

// bulk sends one bulk request for docs[pending...], fills in the final
// outcomes and returns the indexes to retry.
func (e *Elastic) bulk(ctx context.Context, docs []Doc, pending []int, outcomes []ItemOutcome) ([]int, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, i := range pending {
		if err := enc.Encode(map[string]any{"create": map[string]string{"_id": docs[i].ID()}}); err != nil {
			return nil, err
		}
		if err := enc.Encode(&docs[i]); err != nil {
			return nil, err
		}
	}
	res, err := e.es.Bulk(&body, e.es.Bulk.WithIndex(e.cfg.DataStream), e.es.Bulk.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return nil, fmt.Errorf("bulk: %s", res.Status())
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		// Credentials expired or rotated, or a role changed: retried, not
		// failed, so that nothing is committed (or dead-lettered) until
		// someone fixes them; the retries are logged.
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, fmt.Errorf("bulk: %s: Elasticsearch refused the credentials or their permissions (fix them; retrying): %s", res.Status(), msg)
	}
	if res.IsError() {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		// The whole request was refused (e.g. a broken template): every
		// document fails permanently.
		for _, i := range pending {
			outcomes[i] = ItemOutcome{Error: fmt.Sprintf("bulk request refused: %s: %s", res.Status(), msg)}
		}
		return nil, nil
	}
	var parsed struct {
		Items []map[string]struct {
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&parsed); err != nil {
		return nil, fmt.Errorf("reading bulk response: %w", err)
	}
	if len(parsed.Items) != len(pending) {
		return nil, fmt.Errorf("bulk response has %d items for %d documents", len(parsed.Items), len(pending))
	}
	var retry []int
	for k, item := range parsed.Items {
		i := pending[k]
		r := item["create"]
		switch {
		case r.Status == http.StatusCreated || r.Status == http.StatusOK:
			outcomes[i] = ItemOutcome{Created: true}
		case r.Status == http.StatusConflict:
			outcomes[i] = ItemOutcome{Duplicate: true}
		case r.Status == http.StatusTooManyRequests || r.Status >= 500:
			retry = append(retry, i)
		default:
			outcomes[i] = ItemOutcome{Error: fmt.Sprintf("status %d: %s", r.Status, r.Error)}
		}
	}
	return retry, nil
}
