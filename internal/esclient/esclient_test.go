package esclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // "" = accepted
	}{
		{"plain", Config{URL: "http://127.0.0.1:9200"}, ""},
		{"basic auth", Config{URL: "https://es:9200", Username: "u", Password: "p"}, ""},
		{"api key", Config{URL: "https://es:9200", APIKey: "aWQ6a2V5"}, ""},
		{"fingerprint with colons", Config{URL: "https://es:9200", CAFingerprint: strings.Repeat("AB:", 31) + "AB"}, ""},
		{"no URL", Config{}, "no URL"},
		{"credentials in URL", Config{URL: "https://elastic:s3cret@es:9200"}, "URL holds credentials"},
		{"user only in URL", Config{URL: "https://elastic@es:9200"}, "URL holds credentials"},
		{"not http", Config{URL: "es:9200"}, "is not http(s)://host:port"},
		{"user and api key", Config{URL: "https://es:9200", Username: "u", Password: "p", APIKey: "k"}, "not both"},
		{"password without user", Config{URL: "https://es:9200", Password: "p"}, "a password without a username"},
		{"CA file and fingerprint", Config{URL: "https://es:9200", CAFile: "ca.pem", CAFingerprint: strings.Repeat("ab", 32)}, "not both"},
		{"CA file for http", Config{URL: "http://es:9200", CAFile: "ca.pem"}, "is for https"},
		{"short fingerprint", Config{URL: "https://es:9200", CAFingerprint: "abcd"}, "not a SHA-256 fingerprint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("the error repeats the password: %v", err)
			}
		})
	}
}

// TestStringHasNoSecrets: what may be logged holds neither the password
// nor the API key, whichever verb formats it.
func TestStringHasNoSecrets(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "https://es:9200", Username: "tapline", Password: "pw-s3cret"},
		{URL: "https://es:9200", APIKey: "key-s3cret"},
	} {
		for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
			if strings.Contains(s, "s3cret") {
				t.Errorf("%q shows a secret", s)
			}
		}
	}
}

// tlsServer is an https server answering with the Authorization header it
// got; its certificate is written to a PEM file.
func tlsServer(t *testing.T) (*httptest.Server, string, string) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	cert := srv.Certificate()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	return srv, caFile, hex.EncodeToString(sum[:])
}

// TestFingerprintMITM: a server that holds a key of its own and sends the
// pinned certificate after its own self-signed one is refused: the pinned
// certificate is public, only the leaf's key is proven by the handshake.
func TestFingerprintMITM(t *testing.T) {
	genuine, _, fp := tlsServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Value
	mitm := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	mitm.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf, genuine.Certificate().Raw}, PrivateKey: key}}}
	mitm.StartTLS()
	defer mitm.Close()

	cfg := Config{URL: mitm.URL, CAFingerprint: fp, Username: "u", Password: "secret"}
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, mitm.URL, nil)
	cfg.Authorize(req)
	if res, err := (&http.Client{Transport: tr}).Do(req); err == nil {
		res.Body.Close()
		t.Fatal("a server with another key was trusted because it sent the pinned certificate")
	} else if !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("error %v, want it to say the certificate does not verify", err)
	}
	if got.Load() != nil {
		t.Fatalf("the credentials reached the impostor: %v", got.Load())
	}
}

// TestTLSAndCredentials: the CA file and the fingerprint are what decide
// whether the server is trusted, and the credentials arrive as headers.
func TestTLSAndCredentials(t *testing.T) {
	srv, caFile, fp := tlsServer(t)
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
		wantHdr string
	}{
		{"system roots refuse a self-signed server", Config{URL: srv.URL}, "certificate", ""},
		{"CA file", Config{URL: srv.URL, CAFile: caFile, Username: "tapline", Password: "pw"}, "", "Basic dGFwbGluZTpwdw=="},
		{"fingerprint", Config{URL: srv.URL, CAFingerprint: fp, APIKey: "aWQ6a2V5"}, "", "ApiKey aWQ6a2V5"},
		{"wrong fingerprint", Config{URL: srv.URL, CAFingerprint: strings.Repeat("00", 32)}, "fingerprint", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := tc.cfg.Transport()
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, tc.cfg.URL, nil)
			tc.cfg.Authorize(req)
			res, err := (&http.Client{Transport: tr}).Do(req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, _ := io.ReadAll(res.Body)
			if string(got) != tc.wantHdr {
				t.Fatalf("Authorization %q, want %q", got, tc.wantHdr)
			}
		})
	}
}
