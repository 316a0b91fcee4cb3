// Package esclient is how tapline connects to Elasticsearch and Kibana:
// the URL, which certificates to trust, and the credentials, checked once
// and turned into a go-elasticsearch configuration or an *http.Client.
// The analyzer (writing pair documents), the report (reading them) and
// the Kibana import use it.
//
// Secrets stay out of URLs: a URL with user:password@ is refused, so
// that a URL can be logged and put in error messages as it is.
package esclient

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/tapline/tapline/internal/tlsca"
)

// Config is an Elasticsearch (or Kibana) endpoint. Zero values are the
// documented defaults.
type Config struct {
	// URL is http(s)://host:port[/base-path]. Required. It must not hold
	// credentials (user:password@): they would show in logs and in ps.
	URL string

	// CAFile is a PEM file of CAs to trust for an https URL, instead of
	// the system's roots. Default: the system's roots.
	CAFile string
	// CAFingerprint is the SHA-256 fingerprint of a certificate in the
	// server's chain (hex, colons allowed: what Elasticsearch prints at
	// its first start, or `openssl x509 -fingerprint -sha256`). The
	// connection is accepted when the server presents that certificate and
	// its own certificate verifies up to it (for the URL's host), as if it
	// were the only trusted CA. Default: not used. Not together with
	// CAFile.
	CAFingerprint string

	// Username and Password log in with basic auth; APIKey (the base64
	// "id:key" that Elasticsearch hands out as "encoded") with
	// "Authorization: ApiKey". One or the other, not both. Default: no
	// authentication. String never shows Password or APIKey.
	Username, Password string
	APIKey             string
}

// Check refuses what cannot work or would leak a secret; its errors name
// the setting and say what to do.
func (c Config) Check() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New("no URL")
	case err != nil:
		return fmt.Errorf("URL is not http(s)://host:port: %w", StripErr(err))
	case u.User != nil:
		return errors.New("URL holds credentials (user:password@): they would show in ps and in logs; " +
			"give the user with its own flag and the password or API key in a file or the environment")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("URL %s is not http(s)://host:port", c.URL)
	case c.APIKey != "" && (c.Username != "" || c.Password != ""):
		return errors.New("set a username and password or an API key, not both")
	case c.Password != "" && c.Username == "":
		return errors.New("a password without a username")
	case c.CAFile != "" && c.CAFingerprint != "":
		return errors.New("set a CA file or a CA fingerprint, not both")
	case (c.CAFile != "" || c.CAFingerprint != "") && u.Scheme != "https":
		return fmt.Errorf("a CA file or fingerprint is for https, and the URL %s is http", c.URL)
	}
	if c.CAFingerprint != "" {
		if _, err := fingerprint(c.CAFingerprint); err != nil {
			return err
		}
	}
	return nil
}

// String describes c without its secrets.
func (c Config) String() string {
	parts := []string{c.URL}
	switch {
	case c.APIKey != "":
		parts = append(parts, "api-key")
	case c.Username != "":
		parts = append(parts, "user="+c.Username)
	}
	if c.CAFile != "" {
		parts = append(parts, "ca="+c.CAFile)
	}
	if c.CAFingerprint != "" {
		parts = append(parts, "ca-fingerprint="+c.CAFingerprint)
	}
	return strings.Join(parts, " ")
}

// GoString is String: %#v must not print the secrets either.
func (c Config) GoString() string { return "esclient.Config{" + c.String() + "}" }

// TLS returns the TLS configuration for c: nil for the system's roots.
func (c Config) TLS() (*tls.Config, error) {
	switch {
	case c.CAFile != "":
		pool := x509.NewCertPool()
		if err := tlsca.AddFile(pool, c.CAFile); err != nil {
			return nil, err
		}
		return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
	case c.CAFingerprint != "":
		want, err := fingerprint(c.CAFingerprint)
		if err != nil {
			return nil, err
		}
		host := ""
		if u, err := url.Parse(c.URL); err == nil {
			host = u.Hostname()
		}
		return &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The chain is verified below with the certificate of that
			// fingerprint as the only root, instead of against a CA pool.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				return verifyPinned(cs.PeerCertificates, want, host, c.CAFingerprint)
			},
		}, nil
	}
	return nil, nil
}

// verifyPinned accepts a server whose chain holds the certificate with the
// SHA-256 fingerprint want and whose own (leaf) certificate verifies up to
// it, for host. Holding the pinned certificate is not enough: it is public,
// and anyone can send it after a leaf of their own; only the leaf's key is
// proven by the handshake.
func verifyPinned(certs []*x509.Certificate, want []byte, host, shown string) error {
	if len(certs) == 0 {
		return errors.New("the server sent no certificate")
	}
	for i, cert := range certs {
		if sum := sha256.Sum256(cert.Raw); !bytes.Equal(sum[:], want) {
			continue
		}
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(cert)
		for _, c := range certs[1:max(i, 1)] {
			inter.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
			return fmt.Errorf("the server's certificate does not verify against the one with fingerprint %s: %w", shown, err)
		}
		return nil
	}
	return fmt.Errorf("no certificate of the server has the SHA-256 fingerprint %s", shown)
}

func fingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("CA fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", s)
	}
	return b, nil
}

// Transport is an *http.Transport for c: its TLS settings, direct
// connections (no proxy from the environment: Elasticsearch is usually
// on the same network).
func (c Config) Transport() (*http.Transport, error) {
	tc, err := c.TLS()
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}, nil
}

// Elasticsearch is the go-elasticsearch configuration for c, after Check.
func (c Config) Elasticsearch() (elasticsearch.Config, error) {
	if err := c.Check(); err != nil {
		return elasticsearch.Config{}, err
	}
	tr, err := c.Transport()
	if err != nil {
		return elasticsearch.Config{}, err
	}
	return elasticsearch.Config{
		Addresses: []string{c.URL},
		Username:  c.Username, Password: c.Password, APIKey: c.APIKey,
		Transport: tr,
	}, nil
}

// Authorize sets c's credentials on req.
func (c Config) Authorize(req *http.Request) {
	switch {
	case c.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+c.APIKey)
	case c.Username != "":
		req.SetBasicAuth(c.Username, c.Password)
	}
}

// StripErr returns err, or for a *url.Error the error without the URL,
// which may hold credentials.
func StripErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Unauthorized is the message for a 401 or 403 answer: what was refused
// and what to check.
func Unauthorized(status int, c Config) string {
	who := "without credentials"
	switch {
	case c.APIKey != "":
		who = "with the API key"
	case c.Username != "":
		who = fmt.Sprintf("as user %q", c.Username)
	}
	if status == http.StatusForbidden {
		return fmt.Sprintf("%s: access denied %s (authenticated, but the user or key lacks a privilege)", c.URL, who)
	}
	return fmt.Sprintf("%s: authentication failed %s (check the username and password, or the API key)", c.URL, who)
}
