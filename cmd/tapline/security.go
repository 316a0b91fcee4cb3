package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stream"
)

// Secrets (passwords, API keys) are never flag values: a flag shows in ps
// and in the shell history. Each comes from a file named by a flag
// (--kafka-password-file) or from the environment variable named like
// that flag's, without _FILE (TAPLINE_REPLAY_KAFKA_PASSWORD). envFlags
// says so in the flag's usage; a config file can name the file.

// isSecretFile says whether the flag names a file holding a secret that
// may instead come from the environment (see secret).
func isSecretFile(name string) bool {
	switch name {
	case "kafka-password-file", "es-password-file", "es-api-key-file", "password-file", "api-key-file":
		return true
	}
	return false
}

// secretEnv is the variable that holds the secret of the file flag named
// flag on c's command.
func secretEnv(c *cli.Context, flag string) string {
	for _, f := range c.Command.Flags {
		if f.Names()[0] == flag {
			if env := flagEnvVars(f); len(env) > 0 {
				return strings.TrimSuffix(env[0], "_FILE")
			}
		}
	}
	return ""
}

func flagEnvVars(f cli.Flag) []string {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		return df.GetEnvVars()
	}
	return nil
}

// secret reads the secret behind the file flag named flag: the file when
// the flag is set (a trailing newline is dropped), else its variable.
func secret(c *cli.Context, flag string) (string, error) {
	if path := c.String(flag); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usageError("--%s: %v", flag, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if env := secretEnv(c, flag); env != "" {
		return os.Getenv(env), nil
	}
	return "", nil
}

// kafkaSecurityFlags are TLS and SASL for every kafka:// endpoint of a
// command (its input, output and DLQ alike).
func kafkaSecurityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "kafka-tls", Usage: "connect to Kafka with TLS (implied by --kafka-ca-file, --kafka-cert-file, --kafka-server-name)"},
		&cli.StringFlag{Name: "kafka-ca-file", Usage: "Kafka TLS: PEM file of the CAs that sign the brokers' certificates (default: the system's)"},
		&cli.StringFlag{Name: "kafka-cert-file", Usage: "Kafka TLS: client certificate (PEM) for brokers that ask for one; with --kafka-key-file"},
		&cli.StringFlag{Name: "kafka-key-file", Usage: "Kafka TLS: the client certificate's private key (PEM)"},
		&cli.StringFlag{Name: "kafka-server-name", Usage: "Kafka TLS: the name the brokers' certificates must hold (default: the host dialled)"},
		&cli.BoolFlag{Name: "kafka-insecure-skip-verify", Usage: "Kafka TLS: accept any broker certificate, encrypted but not authenticated (tests only)"},
		&cli.StringFlag{Name: "kafka-sasl", Usage: "Kafka SASL mechanism: scram-sha-512, scram-sha-256 or plain (plain only with TLS) (default: none)"},
		&cli.StringFlag{Name: "kafka-username", Usage: "Kafka SASL username"},
		&cli.StringFlag{Name: "kafka-password-file", Usage: "file holding the Kafka SASL password"},
	}
}

// kafkaSecurity is what kafkaSecurityFlags say. Commands without them
// (undefined flags read as zero) connect in plaintext.
func kafkaSecurity(c *cli.Context) (kafkaio.Security, error) {
	pw, err := secret(c, "kafka-password-file")
	if err != nil {
		return kafkaio.Security{}, err
	}
	return kafkaio.Security{
		TLS: c.Bool("kafka-tls"), CAFile: c.String("kafka-ca-file"),
		CertFile: c.String("kafka-cert-file"), KeyFile: c.String("kafka-key-file"),
		ServerName: c.String("kafka-server-name"), InsecureSkipVerify: c.Bool("kafka-insecure-skip-verify"),
		SASLMechanism: c.String("kafka-sasl"), Username: c.String("kafka-username"), Password: pw,
	}, nil
}

// checkKafka connects to the brokers of each kafka:// endpoint among the
// values of flags ("URL": the first argument) once the command's settings
// are compiled and before it runs, so that a refused TLS handshake or
// login is an error that says so, not a consumer that waits forever.
func checkKafka(c *cli.Context, flags ...string) error {
	sec, err := kafkaSecurity(c)
	if err != nil {
		return err
	}
	for _, flag := range flags {
		raw := c.String(flag)
		if flag == "URL" {
			raw = c.Args().First()
		}
		ep, err := stream.ParseURL(raw)
		if raw == "" || raw == "-" || err != nil || ep.Scheme != stream.SchemeKafka {
			continue // not Kafka, or refused already when it was opened
		}
		ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
		err = kafkaio.Check(ctx, ep.Brokers, sec)
		cancel()
		if err != nil {
			return fmt.Errorf("--%s: connecting to Kafka (%s): %w", flag, sec, err)
		}
	}
	return nil
}

// esSecurityFlags are TLS and credentials for Elasticsearch (analyze,
// report); the username flag is es-username.
func esSecurityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "es-username", Usage: "Elasticsearch basic-auth user (its password: see --es-password-file)"},
		&cli.StringFlag{Name: "es-password-file", Usage: "file holding the Elasticsearch password"},
		&cli.StringFlag{Name: "es-api-key-file", Usage: "file holding an Elasticsearch API key (the base64 id:key, \"encoded\"), instead of a user"},
		&cli.StringFlag{Name: "es-ca-file", Usage: "PEM file of the CAs to trust for an https Elasticsearch (default: the system's)"},
		&cli.StringFlag{Name: "es-ca-fingerprint", Usage: "trust an https Elasticsearch whose certificate chains up to the CA with this SHA-256 fingerprint (hex), which it must present; instead of a CA file"},
	}
}

// esCredentials reads the password and the API key of esSecurityFlags.
func esCredentials(c *cli.Context) (password, apiKey string, err error) {
	if password, err = secret(c, "es-password-file"); err != nil {
		return "", "", err
	}
	if apiKey, err = secret(c, "es-api-key-file"); err != nil {
		return "", "", err
	}
	return password, apiKey, nil
}
