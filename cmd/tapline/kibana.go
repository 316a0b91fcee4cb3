package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	kibanaobjects "github.com/tapline/tapline/deploy/kibana"
	"github.com/tapline/tapline/internal/kibana"
)

func kibanaCommand() *cli.Command {
	return &cli.Command{
		Name:  "kibana",
		Usage: "Kibana dashboards for the pair documents",
		Subcommands: []*cli.Command{{
			Name:  "import",
			Usage: "import tapline's data view, visualizations and dashboard into Kibana",
			Description: "Sends deploy/kibana/tapline.ndjson (built into the binary; --file for another export) to\n" +
				"Kibana's saved-objects import API, replacing objects with the same ids. The password comes from\n" +
				"--password-file or TAPLINE_KIBANA_PASSWORD, an API key from --api-key-file or\n" +
				"TAPLINE_KIBANA_API_KEY, never from a flag value. Afterwards open the\n" +
				"\"tapline overview\" dashboard; its data view is tapline-pairs*.",
			Flags: envFlags("kibana", []cli.Flag{
				&cli.StringFlag{Name: "url", Usage: "Kibana's base URL, e.g. http://127.0.0.1:5601"},
				&cli.StringFlag{Name: "space", Usage: "Kibana space to import into (default: the default space)"},
				&cli.StringFlag{Name: "username", Usage: "basic-auth user (its password: see --password-file)"},
				&cli.StringFlag{Name: "password-file", Usage: "file holding the Kibana password"},
				&cli.StringFlag{Name: "api-key-file", Usage: "file holding a Kibana API key (the base64 id:key), instead of a user"},
				&cli.StringFlag{Name: "ca-file", Usage: "PEM file of the CAs to trust for an https Kibana (default: the system's)"},
				&cli.StringFlag{Name: "ca-fingerprint", Usage: "trust an https Kibana whose certificate chains up to the CA with this SHA-256 fingerprint (hex), which it must present"},
				&cli.StringFlag{Name: "file", Usage: "import this saved-objects export instead of the built-in one"},
			}),
			Action: func(c *cli.Context) error {
				if c.String("url") == "" {
					return usageError("--url is required: Kibana's base URL, e.g. http://127.0.0.1:5601")
				}
				nd := kibanaobjects.NDJSON
				if f := c.String("file"); f != "" {
					b, err := os.ReadFile(f)
					if err != nil {
						return usageError("--file: %v", err)
					}
					nd = b
				}
				if errs := kibana.Validate(nd, nil); len(errs) > 0 {
					return usageError("the export is not valid: %v", errors.Join(errs...))
				}
				password, err := secret(c, "password-file")
				if err != nil {
					return err
				}
				apiKey, err := secret(c, "api-key-file")
				if err != nil {
					return err
				}
				res, err := kibana.Import(c.Context, kibana.Config{
					URL: c.String("url"), SpaceID: c.String("space"), Username: c.String("username"),
					Password: password, APIKey: apiKey, CAFile: c.String("ca-file"), CAFingerprint: c.String("ca-fingerprint"),
				}, nd, true)
				if err != nil {
					return err
				}
				slog.Info("imported into Kibana", "objects", res.SuccessCount, "url", c.String("url"))
				fmt.Fprintf(c.App.Writer, "imported %d saved objects; open the \"tapline overview\" dashboard\n", res.SuccessCount)
				return nil
			},
		}},
	}
}
