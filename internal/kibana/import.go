// Package kibana puts tapline's Kibana saved objects (deploy/kibana) into a
// Kibana and checks them against the pair documents' real mapping.
//
// Stage: deployment, downstream of the analyzer. Input: a saved-objects
// export (ndjson, one object a line). Output: the objects imported through
// Kibana's saved-objects import API (Import), or the list of what is wrong
// with them (Validate, with the field capabilities of the pair data stream
// from FieldCaps).
//
// Files: import.go (Import, Result), validate.go (Validate and the checks
// per saved-object type), kql.go (field names of a simple KQL query),
// fieldcaps.go (FieldCaps).
package kibana

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/tapline/tapline/internal/esclient"
)

// Config says where Kibana is and how to log in. Zero values are the
// documented defaults.
type Config struct {
	// URL is Kibana's base URL, with its base path if it has one:
	// "http://kibana:5601" or "https://host/kibana". Required.
	URL string
	// Username and Password log in with basic auth; APIKey (the base64
	// "id:key" that Kibana and Elasticsearch hand out) with
	// "Authorization: ApiKey". Set one or the other, not both. Default:
	// no authentication.
	Username, Password string
	APIKey             string
	// CAFile (PEM) or CAFingerprint (SHA-256 of a certificate in Kibana's
	// chain) say which certificate an https Kibana must present. Default:
	// one signed by a CA of the system's roots. Ignored with HTTPClient.
	CAFile, CAFingerprint string
	// SpaceID is the Kibana space the objects go to. Default "": the
	// default space.
	SpaceID string
	// HTTPClient sends the request. Default: a client with a 60 s timeout
	// and the TLS settings above.
	HTTPClient *http.Client
}

// Result is Kibana's answer to an import.
type Result struct {
	// Success is true when every object was imported.
	Success bool
	// SuccessCount is how many objects were imported.
	SuccessCount int
	// Imported lists the objects that were imported.
	Imported []ImportedObject
	// Errors lists the objects that were not.
	Errors []ObjectError
}

// ImportedObject is one object Kibana imported.
type ImportedObject struct {
	Type, ID, Title string
	// Overwritten is true when an object with the same id was replaced.
	Overwritten bool
}

// ObjectError is one object Kibana refused.
type ObjectError struct {
	Type, ID, Title string
	// Reason is Kibana's error type: "conflict" (the object exists; import
	// with overwrite), "ambiguous_conflict", "missing_references",
	// "unsupported_type" or "unknown".
	Reason string
	// Message is Kibana's explanation, set for "unknown".
	Message string
	// Missing lists the references that did not resolve, for
	// "missing_references", as "type/id".
	Missing []string
}

func (e ObjectError) String() string {
	s := e.Type + " " + e.ID
	if e.Title != "" {
		s += fmt.Sprintf(" (%q)", e.Title)
	}
	s += ": " + e.Reason
	switch {
	case len(e.Missing) > 0:
		s += " " + strings.Join(e.Missing, ", ")
	case e.Message != "":
		s += ": " + e.Message
	case e.Reason == "conflict":
		s += " (it exists already; import with overwrite to replace it)"
	}
	return s
}

// ImportError is returned by Import when Kibana refused some objects; the
// others were imported.
type ImportError struct {
	Imported int
	Failed   []ObjectError
}

func (e *ImportError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = f.String()
	}
	return fmt.Sprintf("kibana refused %d of %d saved objects (%d imported): %s",
		len(e.Failed), len(e.Failed)+e.Imported, e.Imported, strings.Join(parts, "; "))
}

// Import sends ndjson (a saved-objects export) to Kibana's import API,
// POST {URL}[/s/{SpaceID}]/api/saved_objects/_import, as the multipart file
// "tapline.ndjson". With overwrite, objects that exist already are
// replaced; without it they come back as "conflict" errors.
//
// A refused request (bad credentials, no such space, not Kibana) is an
// error that says so. When Kibana answers but refused some objects, Import
// returns the Result and an *ImportError naming each of them.
func Import(ctx context.Context, cfg Config, ndjson []byte, overwrite bool) (Result, error) {
	endpoint, err := importURL(cfg, overwrite)
	if err != nil {
		return Result{}, err
	}
	if cfg.APIKey != "" && (cfg.Username != "" || cfg.Password != "") {
		return Result{}, errors.New("kibana: set a username and password or an API key, not both")
	}
	body, contentType, err := multipartFile(ndjson)
	if err != nil {
		return Result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), body)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("kbn-xsrf", "true") // Kibana refuses API writes without it
	cfg.conn().Authorize(req)
	client := cfg.HTTPClient
	if client == nil {
		tr, err := cfg.conn().Transport()
		if err != nil {
			return Result{}, fmt.Errorf("kibana: %w", err)
		}
		client = &http.Client{Timeout: 60 * time.Second, Transport: tr}
	}
	where := endpoint.Redacted()
	res, err := client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("importing saved objects into kibana: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return Result{}, fmt.Errorf("reading kibana's answer from %s: %w", where, err)
	}
	if res.StatusCode != http.StatusOK {
		return Result{}, statusError(where, res.Status, res.StatusCode, raw, cfg.SpaceID)
	}
	return parseImportResponse(where, raw)
}

// importURL is the import endpoint for cfg.
func importURL(cfg Config, overwrite bool) (*url.URL, error) {
	if err := cfg.conn().Check(); err != nil {
		return nil, fmt.Errorf("kibana: %w", err)
	}
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("kibana: URL %q is not http(s)://host[:port][/base-path]", cfg.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("kibana: URL %q has a query or fragment; give the base URL only", cfg.URL)
	}
	if cfg.SpaceID != "" && cfg.SpaceID != "default" {
		u = u.JoinPath("s", cfg.SpaceID)
	}
	u = u.JoinPath("api", "saved_objects", "_import")
	if overwrite {
		u.RawQuery = "overwrite=true"
	}
	return u, nil
}

// multipartFile is the form Kibana's import API takes: the export as the
// file field "file". Kibana checks the file name's extension (.ndjson).
func multipartFile(ndjson []byte) (io.Reader, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="file"; filename="tapline.ndjson"`)
	h.Set("Content-Type", "application/ndjson")
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(ndjson); err != nil {
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return &buf, w.FormDataContentType(), nil
}

// statusError explains a non-200 answer, with Kibana's own message when
// the body is Kibana's error JSON.
func statusError(where, status string, code int, raw []byte, space string) error {
	var kb struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	hint := ""
	switch code {
	case http.StatusUnauthorized:
		hint = "; check the username and password, or the API key"
	case http.StatusForbidden:
		hint = "; the user may not manage saved objects in this space"
	case http.StatusNotFound:
		hint = "; is this Kibana's base URL"
		if space != "" {
			hint += fmt.Sprintf(", and does space %q exist", space)
		}
		hint += "?"
	}
	if json.Unmarshal(raw, &kb) == nil && kb.Message != "" {
		return fmt.Errorf("kibana import at %s: %s: %s%s", where, status, kb.Message, hint)
	}
	return fmt.Errorf("kibana import at %s: %s, and the answer is not Kibana's (%s)%s", where, status, snippet(raw), hint)
}

// importResponse is the body of a 200 answer from the import API.
type importResponse struct {
	Success      *bool `json:"success"`
	SuccessCount int   `json:"successCount"`
	Errors       []struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Title string `json:"title"`
		Meta  struct {
			Title string `json:"title"`
		} `json:"meta"`
		Error struct {
			Type       string `json:"type"`
			Message    string `json:"message"`
			References []struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			} `json:"references"`
		} `json:"error"`
	} `json:"errors"`
	SuccessResults []struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Overwrite bool   `json:"overwrite"`
		Meta      struct {
			Title string `json:"title"`
		} `json:"meta"`
	} `json:"successResults"`
}

func parseImportResponse(where string, raw []byte) (Result, error) {
	var r importResponse
	if err := json.Unmarshal(raw, &r); err != nil || r.Success == nil {
		return Result{}, fmt.Errorf("kibana import at %s: the answer is not an import result (%s)", where, snippet(raw))
	}
	res := Result{Success: *r.Success, SuccessCount: r.SuccessCount}
	for _, s := range r.SuccessResults {
		res.Imported = append(res.Imported, ImportedObject{Type: s.Type, ID: s.ID, Title: s.Meta.Title, Overwritten: s.Overwrite})
	}
	for _, e := range r.Errors {
		oe := ObjectError{Type: e.Type, ID: e.ID, Title: e.Title, Reason: e.Error.Type, Message: e.Error.Message}
		if oe.Title == "" {
			oe.Title = e.Meta.Title
		}
		for _, ref := range e.Error.References {
			oe.Missing = append(oe.Missing, ref.Type+"/"+ref.ID)
		}
		res.Errors = append(res.Errors, oe)
	}
	switch {
	case len(res.Errors) > 0:
		return res, &ImportError{Imported: res.SuccessCount, Failed: res.Errors}
	case !res.Success:
		return res, fmt.Errorf("kibana import at %s: kibana reports failure without naming an object (%s)", where, snippet(raw))
	}
	return res, nil
}

// snippet is the start of an answer body, for an error message.
func snippet(raw []byte) string {
	const n = 200
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "empty body"
	}
	if len(s) > n {
		s = s[:n] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func (cfg Config) conn() esclient.Config {
	return esclient.Config{
		URL: cfg.URL, CAFile: cfg.CAFile, CAFingerprint: cfg.CAFingerprint,
		Username: cfg.Username, Password: cfg.Password, APIKey: cfg.APIKey,
	}
}
