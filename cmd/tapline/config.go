package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// A config file (--config FILE, or TAPLINE_CONFIG) sets flags the way the
// environment does: top-level keys are global flags, a section per command
// holds that command's flags ("kibana import" is the section "kibana
// import"). Precedence: a flag on the command line, then its environment
// variable, then the config file, then the default. `tapline config
// example` prints every setting, commented.
//
//	log-level: info
//	replay:
//	  from: kafka://127.0.0.1:9092/tapline.exchanges
//	  target: [candidate=http://staging:8080, baseline=http://baseline:8080]
//	  max-inflight: 16

// applyConfig reads the config file at path and sets, for every flag it
// names whose environment variable is not set, that variable. Unknown
// commands and flags are refused, naming them.
func applyConfig(app *cli.App, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return usageError("--config: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return usageError("--config %s: %v", path, err)
	}
	sections := configSections(app)
	for key, v := range doc {
		if flags, isSection := sections[key]; isSection && key != "" {
			m, ok := v.(map[string]any)
			if !ok {
				return usageError("--config %s: %q must be a section of %s flags", path, key, key)
			}
			if err := setFromConfig(path, key, flags, m); err != nil {
				return err
			}
			continue
		}
		if err := setFromConfig(path, "", sections[""], map[string]any{key: v}); err != nil {
			return err
		}
	}
	return nil
}

// configSections maps each config section to the flags it may set: "" for
// the global flags, a command's name, "kibana import" for a subcommand.
func configSections(app *cli.App) map[string][]cli.Flag {
	out := map[string][]cli.Flag{"": app.Flags}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			var settable []cli.Flag // with an environment variable: not --help
			for _, f := range c.Flags {
				if df, ok := f.(cli.DocGenerationFlag); ok && len(df.GetEnvVars()) > 0 {
					settable = append(settable, f)
				}
			}
			if len(settable) > 0 {
				out[name] = settable
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
	return out
}

func setFromConfig(path, section string, flags []cli.Flag, values map[string]any) error {
	where := "top level"
	if section != "" {
		where = "section " + section
	}
	for name, v := range values {
		env := ""
		for _, f := range flags {
			if df, ok := f.(cli.DocGenerationFlag); ok && f.Names()[0] == name && len(df.GetEnvVars()) > 0 {
				env = df.GetEnvVars()[0]
			}
		}
		if env == "" {
			return usageError("--config %s: %s has no flag %q (tapline config example lists them)", path, where, name)
		}
		if _, set := os.LookupEnv(env); set {
			continue // the environment wins over the file
		}
		if err := os.Setenv(env, configValue(v)); err != nil {
			return err
		}
	}
	return nil
}

// configValue is a YAML value as the environment variable holds it: lists
// comma-separated, like the slice flags read them.
func configValue(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// configExample is a config file with every setting of app commented
// out, generated from the flags themselves so it cannot drift.
func configExample(app *cli.App) string {
	var b bytes.Buffer
	b.WriteString("# tapline config file: tapline --config FILE <command> (or TAPLINE_CONFIG=FILE).\n")
	b.WriteString("# A flag on the command line wins over its environment variable, which wins over this file.\n")
	b.WriteString("# Uncomment what you need; lists are YAML lists.\n")
	sections := configSections(app)
	names := make([]string, 0, len(sections))
	for name := range sections {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, section := range names {
		indent := ""
		if section != "" {
			fmt.Fprintf(&b, "\n# %s:\n", section)
			indent = "  "
		} else {
			b.WriteString("\n# global flags\n")
		}
		for _, f := range sections[section] {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok || f.Names()[0] == "help" || f.Names()[0] == "config" {
				continue
			}
			value := df.GetDefaultText()
			if value == "" {
				value = df.GetValue()
			}
			switch f.(type) {
			case *cli.StringSliceFlag, *cli.IntSliceFlag:
				value = "[" + value + "]"
			default:
				if value == "" {
					value = `""`
				}
			}
			fmt.Fprintf(&b, "#%s %s: %s    # %s\n", indent, f.Names()[0], value, df.GetUsage())
		}
	}
	return b.String()
}

func configCommand(app *cli.App) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "config files: tapline --config FILE <command>",
		Subcommands: []*cli.Command{{
			Name:  "example",
			Usage: "print a config file with every setting, commented, with its default",
			Action: func(c *cli.Context) error {
				fmt.Fprint(c.App.Writer, configExample(app))
				return nil
			},
		}},
	}
}

// bashCompletion asks tapline itself what may come next (urfave/cli's
// --generate-bash-completion): commands, subcommands and flags.
const bashCompletion = `# tapline bash completion: source <(tapline completion bash)
_tapline() {
  local cur="${COMP_WORDS[COMP_CWORD]}" opts
  if [[ "$cur" == -* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _tapline tapline
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:  "completion",
		Usage: "shell completion: source <(tapline completion bash) (zsh: autoload bashcompinit; bashcompinit first)",
		Subcommands: []*cli.Command{{
			Name:  "bash",
			Usage: "print the bash completion script",
			Action: func(c *cli.Context) error {
				fmt.Fprint(c.App.Writer, bashCompletion)
				return nil
			},
		}},
	}
}
