package replayer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
)

// Kinds of target errors (TargetOutcome.error_kind in the results,
// Config.OnOutcome, and the kind label of tapline_replay_outcomes_total):
// what an operator does about a failing staging differs by kind.
const (
	ErrTimeout = "timeout"            // connect or total timeout (--connect-timeout, --timeout)
	ErrRefused = "connection_refused" // nothing listens: staging down
	ErrReset   = "connection_reset"   // closed or reset before a whole response
	ErrTLS     = "tls"                // handshake or certificate
	ErrDNS     = "dns"                // the target's host does not resolve
	ErrRequest = "request"            // not sent: the recorded request cannot be rebuilt
	ErrOther   = "other"

	// Not sent at all; only in results (the metrics count these apart).
	ErrPaused     = "paused"     // the target's circuit breaker is open
	ErrProduction = "production" // the production guard refused the target
	ErrMiddleware = "middleware" // the middleware failed on the exchange
)

// errorKind classifies an error of sending a request or reading its
// response.
func errorKind(err error) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	var recordErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	switch {
	case errors.As(err, &dnsErr):
		return ErrDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrReset
	case errors.As(err, &recordErr), errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidCert):
		return ErrTLS
	}
	return ErrOther
}
