package kafkaio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/tapline/tapline/internal/tlsca"
)

// SASL mechanisms Security accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Security says how tapline connects to the brokers: TLS, and SASL
// authentication. The zero value is a plaintext, unauthenticated
// connection (a PLAINTEXT listener). Producer, Consumer and Window take it
// in their Config; it is checked and compiled once, when they are made.
//
// TLS with SASL is Kafka's SASL_SSL listener, TLS alone SSL, SASL alone
// SASL_PLAINTEXT.
type Security struct {
	// TLS connects with TLS. It is implied by CAFile, CertFile and
	// ServerName. Default false.
	TLS bool
	// CAFile is a PEM file of the CAs that sign the brokers'
	// certificates. Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (mutual TLS). Both
	// or neither. Default none.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must be valid for.
	// Default: the host of each broker address dialled.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate: the connection is
	// encrypted but not authenticated. For tests only. Default false.
	InsecureSkipVerify bool

	// SASLMechanism is "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512" (any
	// case). Default "": no SASL. PLAIN sends the password as it is, so it
	// is refused without TLS.
	SASLMechanism string
	// Username and Password are the SASL credentials; both are required
	// with a mechanism. Password is never logged: Security's String and
	// LogValue leave it out.
	Username, Password string
}

// tlsOn says whether s asks for TLS.
func (s Security) tlsOn() bool {
	return s.TLS || s.CAFile != "" || s.CertFile != "" || s.ServerName != "" || s.InsecureSkipVerify
}

// String describes s without its password, e.g. "tls sasl=SCRAM-SHA-512
// user=tapline".
func (s Security) String() string {
	var parts []string
	if s.tlsOn() {
		parts = append(parts, "tls")
		if s.CAFile != "" {
			parts = append(parts, "ca="+s.CAFile)
		}
		if s.CertFile != "" {
			parts = append(parts, "cert="+s.CertFile)
		}
		if s.InsecureSkipVerify {
			parts = append(parts, "insecure-skip-verify")
		}
	} else {
		parts = append(parts, "plaintext")
	}
	if s.SASLMechanism != "" {
		parts = append(parts, "sasl="+strings.ToUpper(s.SASLMechanism), "user="+s.Username)
	}
	return strings.Join(parts, " ")
}

// LogValue is String, so that a Security given to slog never shows the
// password.
func (s Security) LogValue() slog.Value { return slog.StringValue(s.String()) }

// GoString is String too: %#v must not print the password either.
func (s Security) GoString() string { return "kafkaio.Security{" + s.String() + "}" }

var _ slog.LogValuer = Security{}

// conn is a checked Security, ready for kafka-go.
type conn struct {
	tls  *tls.Config    // nil: plaintext
	sasl sasl.Mechanism // nil: no SASL
}

// compile checks s and loads its files. Its errors name the setting that
// is wrong.
func (s Security) compile() (conn, error) {
	var c conn
	if s.tlsOn() {
		cfg, err := s.tlsConfig()
		if err != nil {
			return conn{}, err
		}
		c.tls = cfg
	}
	mech, err := s.mechanism(c.tls != nil)
	if err != nil {
		return conn{}, err
	}
	c.sasl = mech
	return c, nil
}

func (s Security) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName, InsecureSkipVerify: s.InsecureSkipVerify}
	if s.CAFile != "" {
		pool := x509.NewCertPool()
		if err := tlsca.AddFile(pool, s.CAFile); err != nil {
			return nil, fmt.Errorf("kafka TLS: %w", err)
		}
		cfg.RootCAs = pool
	}
	switch {
	case s.CertFile != "" && s.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case s.CertFile != "" || s.KeyFile != "":
		return nil, errors.New("kafka TLS: a client certificate needs both the certificate file and the key file")
	}
	return cfg, nil
}

func (s Security) mechanism(withTLS bool) (sasl.Mechanism, error) {
	name := strings.ToUpper(s.SASLMechanism)
	if name == "" {
		if s.Username != "" || s.Password != "" {
			return nil, errors.New("kafka SASL: a username or password without a SASL mechanism (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil, nil
	}
	if s.Username == "" || s.Password == "" {
		return nil, fmt.Errorf("kafka SASL %s: needs a username and a password", name)
	}
	switch name {
	case SASLPlain:
		if !withTLS {
			return nil, errors.New("kafka SASL PLAIN: refused without TLS, it would send the password in clear text (turn TLS on, or use SCRAM-SHA-512)")
		}
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("kafka SASL: unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.SASLMechanism)
}

// transport is a kafka-go Transport of its own (see NewProducer) with c's
// security.
func (c conn) transport() *kafka.Transport {
	return &kafka.Transport{ClientID: "tapline", TLS: c.tls, SASL: c.sasl}
}

// dialer is a kafka-go Dialer with c's security, for Readers.
func (c conn) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: "tapline", Timeout: 10 * time.Second, DualStack: true, TLS: c.tls, SASLMechanism: c.sasl}
}

// Check connects to the brokers with sec, one after the other, and
// returns nil as soon as one of them completed the TLS handshake, the SASL
// authentication and an ApiVersions round trip. Otherwise its error says,
// for each broker, which step failed, and what to check for the usual
// causes: a wrong password, a CA that does not sign the broker's
// certificate, a plaintext client at a TLS listener or the reverse.
//
// Commands call it before they start: a kafka-go Reader retries a refused
// authentication forever, so without it a wrong password looks like a
// consumer that waits for records.
func Check(ctx context.Context, brokers []string, sec Security) error {
	if len(brokers) == 0 {
		return errors.New("kafka: no brokers")
	}
	c, err := sec.compile()
	if err != nil {
		return err
	}
	d := c.dialer()
	var errs []error
	for _, b := range brokers {
		err := checkBroker(ctx, d, b)
		if err == nil {
			return nil
		}
		errs = append(errs, explain(b, sec, c, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func checkBroker(ctx context.Context, d *kafka.Dialer, broker string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	kc, err := d.DialContext(ctx, "tcp", broker)
	if err != nil {
		return err
	}
	defer kc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = kc.SetDeadline(dl)
	}
	_, err = kc.ApiVersions()
	return err
}

// explain turns a failed connection to broker into an error that says
// which step failed and what to check.
func explain(broker string, sec Security, c conn, err error) error {
	var (
		certErr  *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
	)
	mech := strings.ToUpper(sec.SASLMechanism)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("kafka %s: SASL %s authentication as %q failed: check the username and password: %w", broker, mech, sec.Username, err)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Errorf("kafka %s: the broker does not accept SASL %s on this listener: %w", broker, mech, err)
	case errors.As(err, &recErr):
		return fmt.Errorf("kafka %s: TLS handshake failed, the listener does not speak TLS (a PLAINTEXT or SASL_PLAINTEXT listener? then turn TLS off): %w", broker, err)
	case errors.As(err, &unknown), errors.As(err, &certErr) && errors.As(certErr.Err, &unknown):
		return fmt.Errorf("kafka %s: the broker's TLS certificate is not signed by a trusted CA (give its CA file): %w", broker, err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("kafka %s: the broker's TLS certificate is not valid for this name (check the address, or set the TLS server name): %w", broker, err)
	case errors.As(err, &certErr), errors.As(err, &alertErr):
		return fmt.Errorf("kafka %s: TLS handshake failed: %w", broker, err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err):
		if c.tls == nil {
			return fmt.Errorf("kafka %s: the broker closed the connection at the first request: it may expect TLS (an SSL or SASL_SSL listener? then turn TLS on)%s: %w",
				broker, saslHint(c), err)
		}
		return fmt.Errorf("kafka %s: the broker closed the connection at the first request%s: %w", broker, saslHint(c), err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("kafka %s: no answer in time (a TLS listener reached without TLS waits for a handshake): %w", broker, err)
	}
	return fmt.Errorf("kafka %s: %w", broker, err)
}

func saslHint(c conn) string {
	if c.sasl == nil {
		return ", or it may require SASL authentication"
	}
	return ""
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset by peer") || strings.Contains(err.Error(), "broken pipe"))
}

// Transport returns a kafka-go Transport of its own with s's TLS and SASL,
// for code that talks to Kafka with kafka-go directly (admin requests,
// deploy/local/kafkaready). Close its idle connections when done.
func (s Security) Transport() (*kafka.Transport, error) {
	c, err := s.compile()
	if err != nil {
		return nil, err
	}
	return c.transport(), nil
}
