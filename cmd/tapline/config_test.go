package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// isolateEnv lets a test set TAPLINE_* variables through a config file:
// every flag's variable is unset now and restored after the test.
func isolateEnv(t *testing.T) {
	for _, flags := range configSections(newApp(io.Discard, io.Discard)) {
		for _, f := range flags {
			if df, ok := f.(cli.DocGenerationFlag); ok {
				for _, env := range df.GetEnvVars() {
					t.Setenv(env, "")
					os.Unsetenv(env)
				}
			}
		}
	}
}

func writeConfig(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "tapline.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFile(t *testing.T) {
	isolateEnv(t)
	ctx := context.Background()
	cfg := writeConfig(t, `
log-level: warn
replay:
  from: file:///nonexistent/from-config
  to: "-"
  target: [a=http://127.0.0.1:1, b=http://127.0.0.1:2]
  since: -1h
`)
	// The file supplies everything replay needs; its --from does not exist.
	if _, err := runTapline(ctx, "--config", cfg, "replay"); err == nil || !strings.Contains(err.Error(), "from-config") {
		t.Fatalf("replay from the config file: %v, want its --from used", err)
	}
	// A flag on the command line wins over the file.
	if _, err := runTapline(ctx, "--config", cfg, "replay", "--from", "file:///nonexistent/from-flag"); err == nil || !strings.Contains(err.Error(), "from-flag") {
		t.Fatalf("with --from: %v, want the flag's value", err)
	}
	// The environment wins over the file too.
	os.Unsetenv("TAPLINE_REPLAY_FROM")
	t.Setenv("TAPLINE_REPLAY_FROM", "file:///nonexistent/from-env")
	if _, err := runTapline(ctx, "--config", cfg, "replay"); err == nil || !strings.Contains(err.Error(), "from-env") {
		t.Fatalf("with TAPLINE_REPLAY_FROM: %v, want the variable's value", err)
	}
	if got := os.Getenv("TAPLINE_REPLAY_TARGET"); got != "a=http://127.0.0.1:1,b=http://127.0.0.1:2" {
		t.Errorf("a list became %q", got)
	}

	for text, want := range map[string]string{
		"replay:\n  form: x\n":    `section replay has no flag "form"`,
		"replay: x\n":             `"replay" must be a section`,
		"verbose: true\n":         `top level has no flag "verbose"`,
		"kibana import:\n  url\n": "must be a section",
		"[not yaml":               "--config",
	} {
		if _, err := runTapline(ctx, "--config", writeConfig(t, text), "version"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: %v, want an error containing %s", text, err, want)
		}
	}
}

// TestConfigExample: the example, uncommented, is a config file tapline
// accepts: every section and flag in it exists.
func TestConfigExample(t *testing.T) {
	isolateEnv(t)
	out, stderr, err := runTaplineOut(context.Background(), "config", "example")
	if err != nil {
		t.Fatalf("config example: %v\n%s", err, stderr)
	}
	var lines []string
	settings := 0
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "#   "): // a command's setting
			lines = append(lines, "  "+strings.TrimPrefix(l, "#   "))
			settings++
		case strings.HasPrefix(l, "# ") && strings.HasSuffix(l, ":"): // a section
			lines = append(lines, strings.TrimPrefix(l, "# "))
		case strings.HasPrefix(l, "# ") && strings.Contains(l, ": ") && strings.Contains(l, "    # "): // a global setting
			lines = append(lines, strings.TrimPrefix(l, "# "))
			settings++
		}
	}
	if settings < 100 {
		t.Fatalf("only %d settings in the example:\n%s", settings, out)
	}
	if _, err := runTapline(context.Background(), "--config", writeConfig(t, strings.Join(lines, "\n")), "version"); err != nil {
		t.Fatalf("the uncommented example is refused: %v\n%s", err, strings.Join(lines, "\n"))
	}
}

// TestCompletion: the completion script exists and tapline answers its
// questions: commands, then a command's flags.
func TestCompletion(t *testing.T) {
	ctx := context.Background()
	script, _, err := runTaplineOut(ctx, "completion", "bash")
	if err != nil || !strings.Contains(script, "complete -o bashdefault -o default -F _tapline tapline") {
		t.Fatalf("completion bash: %v\n%s", err, script)
	}
	// The built binary: run in-process, urfave/cli answers nothing.
	bin := buildTapline(t)
	cmds, _ := exec.Command(bin, "--generate-bash-completion").Output()
	flagsOut, _ := exec.Command(bin, "replay", "--max", "--generate-bash-completion").Output()
	flags := string(flagsOut)
	if !strings.Contains(string(cmds), "replay\n") || !strings.Contains(string(cmds), "report\n") || !strings.Contains(flags, "--max-inflight\n") {
		t.Fatalf("commands %q, replay flags %q", cmds, flags)
	}
}
