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
				"TAPLINE_KIBANA_PASSWORD, an API key from TAPLINE_KIBANA_API_KEY. Afterwards open the\n" +
				"\"tapline overview\" dashboard; its data view is tapline-pairs*.",
			Flags: envFlags("kibana", []cli.Flag{
				&cli.StringFlag{Name: "url", Usage: "Kibana's base URL, e.g. http://127.0.0.1:5601"},
				&cli.StringFlag{Name: "space", Usage: "Kibana space to import into (default: the default space)"},
				&cli.StringFlag{Name: "username", Usage: "basic-auth user (password from TAPLINE_KIBANA_PASSWORD)"},
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
				res, err := kibana.Import(c.Context, kibana.Config{
					URL: c.String("url"), SpaceID: c.String("space"), Username: c.String("username"),
					Password: os.Getenv("TAPLINE_KIBANA_PASSWORD"), APIKey: os.Getenv("TAPLINE_KIBANA_API_KEY"),
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
