// Package tlsca reads the CA files that tapline's TLS clients trust
// (Kafka, Elasticsearch and Kibana, replay targets): one place for what a
// usable CA file is.
package tlsca

import (
	"crypto/x509"
	"fmt"
	"os"
)

// AddFile adds the PEM certificates in the file at path to pool. A file
// that cannot be read, or holds no PEM certificate, is an error naming it.
func AddFile(pool *x509.CertPool, path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return nil
}
