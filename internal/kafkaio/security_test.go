package kafkaio

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
)

// TestSecurityRefusedAtCompile: settings that cannot work are refused
// when a client is made, before any connection, naming the setting.
func TestSecurityRefusedAtCompile(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "not-a-ca.pem")
	if err := os.WriteFile(ca, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		sec  Security
		want string
	}{
		{"PLAIN without TLS", Security{SASLMechanism: "plain", Username: "u", Password: "p"}, "refused without TLS"},
		{"unknown mechanism", Security{TLS: true, SASLMechanism: "GSSAPI", Username: "u", Password: "p"}, `unknown mechanism "GSSAPI"`},
		{"mechanism without password", Security{TLS: true, SASLMechanism: "SCRAM-SHA-512", Username: "u"}, "needs a username and a password"},
		{"password without mechanism", Security{TLS: true, Username: "u", Password: "p"}, "without a SASL mechanism"},
		{"certificate without key", Security{CertFile: "client.pem"}, "both the certificate file and the key file"},
		{"missing CA file", Security{CAFile: filepath.Join(t.TempDir(), "nope.pem")}, "CA file"},
		{"CA file without PEM", Security{CAFile: ca}, "holds no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewProducer(ProducerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Security: tc.sec})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewProducer: %v, want an error containing %q", err, tc.want)
			}
			if _, err := NewConsumer(ConsumerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Group: "g", Security: tc.sec}); err == nil {
				t.Fatal("NewConsumer accepted it")
			}
		})
	}
}

// TestSecurityNeverShowsPassword: however a Security is printed or
// logged, the password is not in it.
func TestSecurityNeverShowsPassword(t *testing.T) {
	sec := Security{TLS: true, SASLMechanism: "SCRAM-SHA-512", Username: "tapline", Password: "pw-s3cret"}
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	logger.Info("connecting", "security", sec)
	for _, s := range []string{sec.String(), fmt.Sprint(sec), fmt.Sprintf("%v %+v %#v %s", sec, sec, sec, sec), logged.String()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("%q shows the password", s)
		}
	}
	if !strings.Contains(logged.String(), "sasl=SCRAM-SHA-512 user=tapline") {
		t.Errorf("log line %q does not say how it connects", logged.String())
	}
}

// TestSecureBroker runs against a private broker whose only client
// listener is SASL_SSL (stack.sh secure mode), started once for all the
// subtests.
func TestSecureBroker(t *testing.T) {
	stack := stacktest.Private(t, stacktest.PrivateOptions{Kafka: true, Secure: true})
	sec := stack.Secure()
	brokers := stack.Brokers()
	good := Security{CAFile: sec.CAFile, SASLMechanism: SASLScramSHA512, Username: sec.KafkaUser, Password: sec.KafkaPassword}

	// Every mechanism the broker offers: a producer, a consumer group and
	// a window move exactly the records published, over TLS.
	for _, mech := range []string{SASLScramSHA512, SASLScramSHA256, SASLPlain} {
		t.Run("round trip "+mech, func(t *testing.T) {
			ctx := testContext(t)
			s := good
			s.SASLMechanism = mech
			if err := Check(ctx, brokers, s); err != nil {
				t.Fatalf("Check: %v", err)
			}
			topic := stack.Topic(t, 2)
			start := time.Now().Add(-time.Second)
			p := newProducer(t, ProducerConfig{Brokers: brokers, Topic: topic, Security: s, Logger: discardLogger()})
			const n = 20
			recs := make([]stream.Record, n)
			for i := range recs {
				recs[i] = stream.Record{Key: []byte(fmt.Sprint("k", i%5)), Value: []byte(fmt.Sprint("v", i)), Time: time.Now()}
			}
			if err := p.Publish(ctx, recs...); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			c := newConsumer(t, ConsumerConfig{Brokers: brokers, Topic: topic, Group: "g-" + topic, Security: s, Logger: discardLogger()})
			defer c.Close()
			got := fetchN(t, ctx, c, n)
			if len(got) != n {
				t.Fatalf("consumer: %d records, want %d", len(got), n)
			}
			if err := c.Commit(ctx, got); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			w, err := NewWindow(ctx, WindowConfig{Brokers: brokers, Topic: topic, Since: start, Security: s, Logger: discardLogger()})
			if err != nil {
				t.Fatalf("NewWindow: %v", err)
			}
			defer w.Close()
			seen := map[string]bool{}
			for {
				batch, err := w.Fetch(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("window: %v", err)
				}
				for _, r := range batch {
					seen[string(r.Value)] = true
				}
			}
			if len(seen) != n {
				t.Fatalf("window: %d distinct records, want %d", len(seen), n)
			}
		})
	}

	// What goes wrong says what it was, and fails instead of waiting.
	cases := []struct {
		name   string
		sec    Security
		want   string
		wantIs error
	}{
		{"wrong password", withPassword(good, "wrong-"+sec.KafkaPassword), "SASL SCRAM-SHA-512 authentication as \"tapline\" failed", kafka.SASLAuthenticationFailed},
		{"unknown user", withUser(good, "nobody"), "authentication as \"nobody\" failed", kafka.SASLAuthenticationFailed},
		{"plaintext client at the TLS listener", Security{}, "it may expect TLS", nil},
		{"SASL without TLS at the TLS listener", Security{SASLMechanism: SASLScramSHA512, Username: sec.KafkaUser, Password: sec.KafkaPassword}, "it may expect TLS", nil},
		{"TLS without the CA", Security{TLS: true, SASLMechanism: SASLScramSHA512, Username: sec.KafkaUser, Password: sec.KafkaPassword}, "not signed by a trusted CA", nil},
		{"TLS with another server name", withServerName(good, "kafka.example"), "not valid for this name", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			err := Check(ctx, brokers, tc.sec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v, want an error containing %q", err, tc.want)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("Check: %v is not %v", err, tc.wantIs)
			}
			if ctx.Err() != nil {
				t.Fatalf("Check waited for the test's deadline: %v", err)
			}
			if strings.Contains(err.Error(), sec.KafkaPassword) {
				t.Fatalf("the error shows the password: %v", err)
			}
			// A producer fails too, with the cause, not a timeout.
			p := newProducer(t, ProducerConfig{Brokers: brokers, Topic: "tapline-no-such-topic", Security: tc.sec, MaxAttempts: 1, Logger: discardLogger()})
			err = p.Publish(ctx, stream.Record{Value: []byte("x")})
			if err == nil || ctx.Err() != nil {
				t.Fatalf("Publish: %v (context: %v), want the connection refused", err, ctx.Err())
			}
		})
	}
}

func withPassword(s Security, pw string) Security  { s.Password = pw; return s }
func withUser(s Security, u string) Security       { s.Username = u; return s }
func withServerName(s Security, n string) Security { s.ServerName = n; return s }
