// Command tapline records HTTP traffic off the wire, replays it against
// staging and indexes the differences into Elasticsearch.
//
//	tapline record  --pcap capture.pcap --to kafka://127.0.0.1:9092/tapline.exchanges
//	tapline replay  --from kafka://127.0.0.1:9092/tapline.exchanges --to kafka://127.0.0.1:9092/tapline.results --target staging=http://staging:8080
//	tapline analyze --from kafka://127.0.0.1:9092/tapline.results --es http://127.0.0.1:9200
//
// Every flag can also be set from an environment variable named
// TAPLINE_<COMMAND>_<FLAG> (TAPLINE_REPLAY_TARGET), global flags from
// TAPLINE_<FLAG>; --help lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "tapline:", err)
		code := 1
		var coder cli.ExitCoder
		if errors.As(err, &coder) {
			code = coder.ExitCode()
		}
		os.Exit(code)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "tapline",
		Usage: "record HTTP traffic off the wire, replay it against staging, diff the answers",
		Description: "Pipeline: record (pcap -> Kafka exchanges) -> replay (exchanges -> staging -> Kafka results)\n" +
			"-> analyze (results -> Elasticsearch pair documents); cat prints any of them. Endpoints are URLs:\n" +
			"kafka://host:9092[,host2:9092]/topic, or file://dir for the embedded log (no infrastructure).",
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Flags: envFlags("", []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log verbosity: debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format on stderr: text or json"},
			&cli.StringFlag{Name: "config", Usage: "YAML file of settings, a section per command (tapline config example prints one); flags and env vars win over it"},
		}),
		Before: func(c *cli.Context) error {
			level, format := c.String("log-level"), c.String("log-format")
			if path := c.String("config"); path != "" {
				levelSet, formatSet := c.IsSet("log-level"), c.IsSet("log-format")
				if err := applyConfig(c.App, path); err != nil {
					return err
				}
				// The global flags were parsed before the file was read.
				if v := os.Getenv("TAPLINE_LOG_LEVEL"); !levelSet && v != "" {
					level = v
				}
				if v := os.Getenv("TAPLINE_LOG_FORMAT"); !formatSet && v != "" {
					format = v
				}
			}
			logger, err := newLogger(stderr, level, format)
			if err != nil {
				return err
			}
			slog.SetDefault(logger)
			return nil
		},
		Commands: []*cli.Command{
			recordCommand(),
			replayCommand(),
			analyzeCommand(),
			catCommand(),
			importCommand(),
			reportCommand(),
			kibanaCommand(),
			{
				Name:  "version",
				Usage: "print the tapline version and the schema version it reads and writes",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(c.App.Writer, "tapline %s (schema %s)\n", version, schemaVersion())
					return nil
				},
			},
		},
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.Commands = append(app.Commands, configCommand(app), completionCommand())
	return app
}

// envFlags gives every flag an environment variable: TAPLINE_<PREFIX>_<NAME>
// with dashes as underscores, and says so in its usage.
func envFlags(prefix string, flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		name := "TAPLINE_"
		if prefix != "" {
			name += strings.ToUpper(prefix) + "_"
		}
		name += strings.ToUpper(strings.ReplaceAll(f.Names()[0], "-", "_"))
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = []string{name}
			if isSecretFile(f.Name) {
				f.Usage += "; or set " + strings.TrimSuffix(name, "_FILE") + " (never a flag value: it would show in ps)"
			}
		case *cli.StringSliceFlag:
			f.EnvVars = []string{name}
		case *cli.IntFlag:
			f.EnvVars = []string{name}
		case *cli.Int64Flag:
			f.EnvVars = []string{name}
		case *cli.IntSliceFlag:
			f.EnvVars = []string{name}
		case *cli.DurationFlag:
			f.EnvVars = []string{name}
		case *cli.Float64Flag:
			f.EnvVars = []string{name}
		case *cli.BoolFlag:
			f.EnvVars = []string{name}
		default:
			panic(fmt.Sprintf("envFlags: flag type %T not handled", f)) // a programming error, caught by TestEveryFlagHasEnv
		}
	}
	return flags
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// usageError is an error in how tapline was called; it says what to do.
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), 2)
}
