package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/replayer"
)

// TestReplayConfig: every replay flag that is a plain replayer setting
// reaches replayer.Config, with its default and with a value given. (The
// breaker, connect timeout, TLS and session-parallel flags were once
// parsed and then ignored.)
func TestReplayConfig(t *testing.T) {
	isolateEnv(t)
	base := []string{"replay", "--from", "kafka://127.0.0.1:9092/x", "--to", "-", "--target", "staging=http://127.0.0.1:1"}
	cases := []struct {
		name string
		args []string
		want replayer.Config
	}{
		{"defaults", nil, replayer.Config{
			Workers: 8, PrefetchBytes: 32 << 20, Timeout: 10 * time.Second, ConnectTimeout: 3 * time.Second, BodyCap: 1 << 20,
			BreakerThreshold: 5, BreakerPause: 10 * time.Second, StatsInterval: 30 * time.Second,
		}},
		{"every flag", []string{
			"--allow-method", "GET", "--allow-method", "POST", "--rate", "50", "--max-gap", "2s", "--max-inflight", "3",
			"--session-parallel", "--timeout", "1s", "--connect-timeout", "500ms", "--body-cap", "1024",
			"--breaker-threshold", "-1", "--breaker-pause", "2s", "--ca-file", "ca.pem", "--insecure-skip-verify",
			"--allow-production-target", "--stats-interval", "1s", "--since", "-1h", "--speed", "2", "--max-buffered-bytes", "1000",
		}, replayer.Config{
			AllowMethods: []string{"GET", "POST"}, Rate: 50, MaxGap: 2 * time.Second, Workers: 3, SessionParallel: true, PrefetchBytes: 1000,
			Timeout: time.Second, ConnectTimeout: 500 * time.Millisecond, BodyCap: 1024,
			BreakerThreshold: -1, BreakerPause: 2 * time.Second, CAFile: "ca.pem", InsecureSkipVerify: true,
			AllowProductionTarget: true, StatsInterval: time.Second, Speed: 2,
		}},
		{"speed only for a window", []string{"--speed", "2"}, replayer.Config{
			Workers: 8, PrefetchBytes: 32 << 20, Timeout: 10 * time.Second, ConnectTimeout: 3 * time.Second, BodyCap: 1 << 20,
			BreakerThreshold: 5, BreakerPause: 10 * time.Second, StatsInterval: 30 * time.Second,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *cli.Context
			if err := stubApp(&c).Run(append([]string{"tapline"}, append(base, tc.args...)...)); err != nil {
				t.Fatal(err)
			}
			got := replayConfig(c)
			if len(got.AllowMethods) == 0 {
				got.AllowMethods = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("tapline %s\n got %+v\nwant %+v", strings.Join(tc.args, " "), got, tc.want)
			}
		})
	}
}
