package main

// This file checks what runs tapline outside Go — deploy/docker-compose.yml,
// deploy/Dockerfile, deploy/k8s — and the command reference in
// docs/reference, against the real command line. There is no Docker engine
// and no kubectl here, so the files are parsed and checked in Go:
//
//   - every tapline command line (compose command, k8s args) is parsed by
//     the real CLI (newApp) with stub actions: an unknown or renamed flag,
//     a bad value or an invalid rule fails here; every TAPLINE_* variable
//     must be a flag's variable or one the CLI reads with os.Getenv, for
//     the command it is given to;
//   - compose: the services, the recorder's privileges, depends_on, which
//     network each URL is reached from, the topics that exist;
//   - Dockerfile: the build targets exist and are main packages, the COPY
//     lines bring every package they import, the runtime stage;
//   - k8s: the kustomization lists exactly the files present, renders
//     (the subset of kustomize the layout uses: namespace, images,
//     configMapGenerator) and every reference resolves;
//   - docs/reference is what --help prints now (TestReference -update
//     rewrites it).

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/build"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/replayer"
)

var updateReference = flag.Bool("update", false, "rewrite docs/reference/*.md from the current --help output")

// deployRoot is the repository, seen from cmd/tapline.
const deployRoot = "../.."

// taplineImage is the image repository every tapline container uses.
const taplineImage = "ghcr.io/tapline/tapline"

// ---------------------------------------------------------------------------
// The CLI as the deploy files see it.

// stubApp returns the real app with every action replaced by one that
// records its context instead of running.
func stubApp(got **cli.Context) *cli.App {
	app := newApp(io.Discard, io.Discard)
	var stub func([]*cli.Command)
	stub = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.Action = func(c *cli.Context) error { *got = c; return nil }
			stub(c.Subcommands)
		}
	}
	stub(app.Commands)
	return app
}

// getenvVars are the TAPLINE_* variables cmd/tapline reads directly
// (secrets: never flag values), from its source.
func getenvVars(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`os\.Getenv\("(TAPLINE_[A-Z0-9_]+)"\)`)
	vars := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			vars[m[1]] = true
		}
	}
	if len(vars) == 0 {
		t.Fatal("found no os.Getenv(\"TAPLINE_...\") in cmd/tapline: the scan is broken")
	}
	// The secrets behind the file flags (secret): --kafka-password-file
	// is TAPLINE_<COMMAND>_KAFKA_PASSWORD_FILE, its secret
	// TAPLINE_<COMMAND>_KAFKA_PASSWORD.
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				if env := flagEnv(f); isSecretFile(f.Names()[0]) && len(env) > 0 {
					vars[strings.TrimSuffix(env[0], "_FILE")] = true
				}
			}
			walk(c.Subcommands)
		}
	}
	walk(newApp(io.Discard, io.Discard).Commands)
	return vars
}

func lookupCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func flagEnv(f cli.Flag) []string {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		return df.GetEnvVars()
	}
	return nil
}

// commandFor walks args as urfave/cli does: global flags, the command,
// its subcommands, then the command's flags (before any positional
// argument). It returns the command and its path, or an error naming what
// is wrong.
func commandFor(app *cli.App, args []string) (*cli.Command, []string, error) {
	i := 0
	skipFlags := func(flags []cli.Flag, where string) error {
		for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" {
			if args[i] == "--" {
				i++
				return nil
			}
			name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
			f := lookupFlag(flags, name)
			if f == nil {
				return fmt.Errorf("%s has no flag --%s", where, name)
			}
			if df, ok := f.(cli.DocGenerationFlag); ok && df.TakesValue() && !hasValue {
				i++
				if i == len(args) {
					return fmt.Errorf("%s: --%s needs a value", where, name)
				}
			}
			i++
		}
		return nil
	}
	if err := skipFlags(app.Flags, "tapline (global flags)"); err != nil {
		return nil, nil, err
	}
	if i == len(args) {
		return nil, nil, errors.New("no tapline command")
	}
	cmd := lookupCommand(app.Commands, args[i])
	if cmd == nil {
		return nil, nil, fmt.Errorf("tapline has no command %q", args[i])
	}
	cmdPath := []string{cmd.Name}
	i++
	for len(cmd.Subcommands) > 0 {
		if i == len(args) {
			return nil, nil, fmt.Errorf("tapline %s needs a subcommand", strings.Join(cmdPath, " "))
		}
		sub := lookupCommand(cmd.Subcommands, args[i])
		if sub == nil {
			return nil, nil, fmt.Errorf("tapline %s has no subcommand %q", strings.Join(cmdPath, " "), args[i])
		}
		cmd, cmdPath = sub, append(cmdPath, sub.Name)
		i++
	}
	if err := skipFlags(cmd.Flags, "tapline "+strings.Join(cmdPath, " ")); err != nil {
		return nil, nil, err
	}
	if rest := args[i:]; len(rest) > 0 {
		if cmd.ArgsUsage == "" {
			return nil, nil, fmt.Errorf("tapline %s takes no arguments, got %q", strings.Join(cmdPath, " "), rest)
		}
		for _, a := range rest[1:] {
			if strings.HasPrefix(a, "-") {
				return nil, nil, fmt.Errorf("tapline %s: flag %s after an argument is not parsed as a flag", strings.Join(cmdPath, " "), a)
			}
		}
	}
	return cmd, cmdPath, nil
}

// envFor says whether the variable name is read by the command at
// cmdPath: a global flag's, one of the command's flags', or one the CLI
// reads itself under the command's prefix (TAPLINE_REPLAY_AUTHORIZATION).
func envFor(app *cli.App, cmd *cli.Command, cmdPath []string, getenv map[string]bool, name string) bool {
	for _, flags := range [][]cli.Flag{app.Flags, cmd.Flags} {
		for _, f := range flags {
			if slices.Contains(flagEnv(f), name) {
				return true
			}
		}
	}
	return getenv[name] && strings.HasPrefix(name, "TAPLINE_"+strings.ToUpper(cmdPath[0])+"_")
}

// taplineInvocation is one tapline command line found in a deploy file.
type taplineInvocation struct {
	where string            // "docker-compose.yml service replayer"
	args  []string          // after the binary
	env   map[string]string // TAPLINE_* variables with literal values
	// secretEnv are TAPLINE_* variables whose value comes from a secret at
	// run time; the check gives them a plausible value.
	secretEnv []string
}

// checkInvocation parses inv with the real CLI and compiles what can be
// compiled without Kafka or staging: URLs, targets, capture rules,
// selection filters, comparison options. It returns the parsed context.
func checkInvocation(t *testing.T, inv taplineInvocation) (*cli.Context, []string) {
	t.Helper()
	var got *cli.Context
	app := stubApp(&got)
	cmd, cmdPath, err := commandFor(app, inv.args)
	if err != nil {
		t.Errorf("%s: %v\n  tapline %s", inv.where, err, strings.Join(inv.args, " "))
		return nil, nil
	}
	getenv := getenvVars(t)
	names := slices.Sorted(maps.Keys(inv.env))
	for _, name := range append(names, inv.secretEnv...) {
		if strings.HasPrefix(name, "TAPLINE_") && !envFor(app, cmd, cmdPath, getenv, name) {
			t.Errorf("%s: environment variable %s is read by no flag of tapline %s (nor by the command itself)",
				inv.where, name, strings.Join(cmdPath, " "))
		}
	}
	// The real parse, in a clean environment holding only inv's variables.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TAPLINE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range inv.env {
		t.Setenv(k, v)
	}
	for _, k := range inv.secretEnv {
		t.Setenv(k, "a-secret-of-32-bytes-for-the-check")
	}
	if err := app.Run(append([]string{"tapline"}, inv.args...)); err != nil {
		t.Errorf("%s: tapline %s: %v", inv.where, strings.Join(inv.args, " "), err)
		return nil, nil
	}
	if got == nil {
		t.Errorf("%s: tapline %s ran no command", inv.where, strings.Join(inv.args, " "))
		return nil, nil
	}
	c := got
	fail := func(err error) {
		if err != nil {
			t.Errorf("%s: tapline %s: %v", inv.where, strings.Join(cmdPath, " "), err)
		}
	}
	for _, name := range []string{"from", "to", "dlq"} {
		if v := c.String(name); lookupFlag(cmd.Flags, name) != nil && v != "" && v != "-" {
			_, err := stream.ParseURL(v)
			fail(err)
		}
	}
	for _, name := range []string{"es", "url"} {
		if v := c.String(name); lookupFlag(cmd.Flags, name) != nil && v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				fail(fmt.Errorf("--%s %q is not an http(s) URL", name, v))
			}
		}
	}
	switch strings.Join(cmdPath, " ") {
	case "record":
		fail(captureRules(c, &recorder.Config{}))
	case "replay":
		_, err := parseTargets(c.StringSlice("target"))
		fail(err)
		_, err = replaySelect(c, nil)
		fail(err)
	case "analyze":
		_, err := comparerFrom(c)
		fail(err)
	}
	return c, cmdPath
}

// kafkaTopicFlags returns the topics of the kafka:// URLs in the flags of c.
func kafkaTopicFlags(c *cli.Context) map[string]string {
	out := map[string]string{}
	for _, name := range []string{"from", "to", "dlq"} {
		if ep, err := stream.ParseURL(c.String(name)); err == nil && ep.Scheme == stream.SchemeKafka {
			out[name] = ep.Topic
		}
	}
	return out
}

// scriptTopics reads the topic names and the partition count from a
// shell script running kafka-topics.sh --create.
func scriptTopics(t *testing.T, where, script string) (topics []string, partitions int) {
	t.Helper()
	if !strings.Contains(script, "kafka-topics.sh") || !strings.Contains(script, "--create") {
		t.Fatalf("%s: no kafka-topics.sh --create in %q", where, script)
	}
	m := regexp.MustCompile(`--partitions\s+(\d+)`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("%s: no --partitions in the topic script", where)
	}
	partitions, _ = strconv.Atoi(m[1])
	for _, tp := range regexp.MustCompile(`\btapline\.[a-z]+\b`).FindAllString(script, -1) {
		if !slices.Contains(topics, tp) {
			topics = append(topics, tp)
		}
	}
	return topics, partitions
}

// ---------------------------------------------------------------------------
// YAML helpers.

// composeStrings is a YAML string or list of strings (compose's command,
// entrypoint, healthcheck test). A string is split on spaces: use the
// list form for anything with quotes.
type composeStrings []string

func (s *composeStrings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if strings.ContainsAny(n.Value, `"'`) && !strings.Contains(n.Value, "\n") {
			return fmt.Errorf("line %d: %q: quoted string form; use the list form", n.Line, n.Value)
		}
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// decodeYAMLStrict decodes one YAML document into v refusing unknown fields
// (as docker compose and kubectl's strict field validation do).
func decodeYAMLStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// yamlDocs splits a multi-document YAML file into its documents,
// dropping empty ones (comments only).
func yamlDocs(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs [][]byte
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		out, err := yaml.Marshal(n.Content[0])
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, out)
	}
	return docs
}

// hostPort splits a URL's host:port (kafka URLs may list several).
func urlHostPorts(raw string) ([]string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return nil, fmt.Errorf("%s: %q: want host:port", raw, h)
		}
		out = append(out, h)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// docker-compose.yml

type composeFile struct {
	Name       string                     `yaml:"name"`
	Services   map[string]*composeService `yaml:"services"`
	Volumes    map[string]any             `yaml:"volumes"`
	Extensions map[string]any             `yaml:",inline"` // x-*: anchors
}

// composeService holds the keys this compose file uses; decoding is
// strict, so a misspelt key fails (docker compose would refuse it too).
// Add a real compose key here when the file starts using it.
type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	PullPolicy  string            `yaml:"pull_policy"`
	Hostname    string            `yaml:"hostname"`
	Restart     string            `yaml:"restart"`
	User        string            `yaml:"user"`
	NetworkMode string            `yaml:"network_mode"`
	Privileged  bool              `yaml:"privileged"`
	CapAdd      []string          `yaml:"cap_add"`
	CapDrop     []string          `yaml:"cap_drop"`
	SecurityOpt []string          `yaml:"security_opt"`
	ReadOnly    bool              `yaml:"read_only"`
	Ports       []string          `yaml:"ports"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Entrypoint  composeStrings    `yaml:"entrypoint"`
	Command     composeStrings    `yaml:"command"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        composeStrings `yaml:"test"`
		Interval    string         `yaml:"interval"`
		Timeout     string         `yaml:"timeout"`
		Retries     int            `yaml:"retries"`
		StartPeriod string         `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

// publishedPort returns the host port of a compose port mapping
// ([ip:]host:container).
func publishedPort(spec string) string {
	parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(spec, "/tcp"), "/udp"), ":")
	if len(parts) < 2 {
		return ""
	}
	return parts[len(parts)-2]
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployRoot, "deploy/docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := decodeYAMLStrict(b, &cf); err != nil {
		t.Fatalf("deploy/docker-compose.yml: %v", err)
	}
	return &cf
}

// taplineArgs returns the tapline command line of a compose service, or
// nil when the service does not run tapline.
func (s *composeService) taplineArgs() []string {
	if !strings.HasPrefix(s.Image, taplineImage+":") {
		return nil
	}
	switch {
	case len(s.Entrypoint) == 0:
		return s.Command // the image's ENTRYPOINT is tapline (TestDockerfile)
	case path.Base(s.Entrypoint[0]) == "tapline":
		return append(append([]string(nil), s.Entrypoint[1:]...), s.Command...)
	}
	return nil
}

func TestComposeFile(t *testing.T) {
	cf := loadCompose(t)
	for k := range cf.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("deploy/docker-compose.yml: unknown top-level key %q", k)
		}
	}
	for _, name := range []string{"kafka", "topics", "elasticsearch", "kibana", "shop-production", "shop-staging",
		"traffic", "recorder", "replayer", "analyzer", "kibana-import"} {
		if cf.Services[name] == nil {
			t.Errorf("deploy/docker-compose.yml: no service %q", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, name := range slices.Sorted(maps.Keys(cf.Services)) {
		s := cf.Services[name]
		where := "docker-compose.yml service " + name
		// Images: pinned third-party images, or tapline's built here.
		switch {
		case s.Image == "":
			t.Errorf("%s: no image", where)
		case strings.HasPrefix(s.Image, taplineImage+":"):
			if s.Build == nil {
				t.Errorf("%s: the tapline image without a build section", where)
				break
			}
			ctx := filepath.Join(deployRoot, "deploy", s.Build.Context)
			if abs, _ := filepath.Abs(ctx); abs != absPath(t, deployRoot) {
				t.Errorf("%s: build context %s is not the repository root", where, s.Build.Context)
			}
			if _, err := os.Stat(filepath.Join(ctx, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: dockerfile: %v", where, err)
			}
		case !strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest"):
			t.Errorf("%s: image %q: pin a version", where, s.Image)
		}
		if s.Privileged {
			t.Errorf("%s: privileged", where)
		}
		// depends_on: existing services, valid conditions that can hold.
		for dep, d := range s.DependsOn {
			target := cf.Services[dep]
			switch {
			case target == nil:
				t.Errorf("%s: depends_on %q: no such service", where, dep)
				continue
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s: depends_on %s: service_healthy, but %s has no healthcheck", where, dep, dep)
			case d.Condition == "service_completed_successfully" && (target.Restart == "always" || target.Restart == "unless-stopped"):
				t.Errorf("%s: depends_on %s: service_completed_successfully, but %s restarts %s", where, dep, dep, target.Restart)
			case !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition):
				t.Errorf("%s: depends_on %s: condition %q", where, dep, d.Condition)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := cf.Volumes[src]; !ok {
					t.Errorf("%s: volume %q is not declared under volumes:", where, src)
				}
			}
		}
		if s.NetworkMode != "" && s.NetworkMode != "host" {
			t.Errorf("%s: network_mode %q: only host is expected", where, s.NetworkMode)
		}
		if s.NetworkMode == "host" && len(s.Ports) > 0 {
			t.Errorf("%s: host network with ports: (they are ignored)", where)
		}
	}

	// The recorder: host network, root with NET_RAW as its only capability.
	rec := cf.Services["recorder"]
	if rec.NetworkMode != "host" || !slices.Equal(rec.CapDrop, []string{"ALL"}) || !slices.Equal(rec.CapAdd, []string{"NET_RAW"}) || rec.User != "0" {
		t.Errorf("recorder: network_mode %q, cap_drop %v, cap_add %v, user %q; want host, [ALL], [NET_RAW], \"0\" (see deploy/Dockerfile)",
			rec.NetworkMode, rec.CapDrop, rec.CapAdd, rec.User)
	}
	for name, s := range cf.Services {
		if name != "recorder" && len(s.CapAdd) > 0 {
			t.Errorf("service %s adds capabilities %v: only the recorder needs one", name, s.CapAdd)
		}
		if strings.HasPrefix(s.Image, taplineImage+":") && name != "recorder" && (s.User != "" || !slices.Equal(s.CapDrop, []string{"ALL"})) {
			t.Errorf("service %s: user %q, cap_drop %v: tapline's image runs as 65532 with no capabilities", name, s.User, s.CapDrop)
		}
	}

	// Topics: every kafka:// topic used exists.
	topicsScript := strings.Join(cf.Services["topics"].Command, " ")
	created, partitions := scriptTopics(t, "docker-compose.yml service topics", topicsScript)

	// Kafka's listeners, for the reachability of broker addresses.
	advertised := cf.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"]
	published := map[string]bool{}
	for _, s := range cf.Services {
		for _, p := range s.Ports {
			published[publishedPort(p)] = true
		}
	}
	// reachable checks that a service on its network can reach host:port.
	reachable := func(where string, s *composeService, hostport string, kafka bool) {
		host, port, _ := net.SplitHostPort(hostport)
		if s.NetworkMode == "host" {
			if host != "127.0.0.1" && host != "localhost" {
				t.Errorf("%s: host network, but %s is not on this host", where, hostport)
			} else if !published[port] {
				t.Errorf("%s: host network, but no service publishes port %s", where, port)
			}
		} else if target := cf.Services[host]; target == nil || target.NetworkMode == "host" {
			t.Errorf("%s: %s is not a service on the compose network", where, hostport)
		}
		if kafka && !strings.Contains(advertised, "//"+hostport) {
			t.Errorf("%s: Kafka does not advertise %s (KAFKA_ADVERTISED_LISTENERS %s): the client would be sent elsewhere", where, hostport, advertised)
		}
	}

	var ran int
	for _, name := range slices.Sorted(maps.Keys(cf.Services)) {
		s := cf.Services[name]
		args := s.taplineArgs()
		if args == nil {
			continue
		}
		ran++
		t.Run(name, func(t *testing.T) {
			where := "docker-compose.yml service " + name
			c, cmdPath := checkInvocation(t, taplineInvocation{where: where, args: args, env: s.Environment})
			if c == nil {
				return
			}
			for flagName, topic := range kafkaTopicFlags(c) {
				if !slices.Contains(created, topic) {
					t.Errorf("%s: --%s topic %q is not created by the topics service (%v)", where, flagName, topic, created)
				}
				hosts, _ := urlHostPorts(c.String(flagName))
				for _, h := range hosts {
					reachable(where+" --"+flagName, s, h, true)
				}
			}
			for _, flagName := range []string{"es", "url"} {
				if lookupFlag(c.Command.Flags, flagName) != nil && c.String(flagName) != "" {
					hosts, err := urlHostPorts(c.String(flagName))
					if err != nil {
						t.Errorf("%s: --%s: %v", where, flagName, err)
					}
					for _, h := range hosts {
						reachable(where+" --"+flagName, s, h, false)
					}
				}
			}
			if cmdPath[0] == "replay" {
				for _, tg := range c.StringSlice("target") {
					_, raw, _ := strings.Cut(tg, "=")
					hosts, err := urlHostPorts(raw)
					if err != nil {
						t.Errorf("%s: --target: %v", where, err)
					}
					for _, h := range hosts {
						reachable(where+" --target", s, h, false)
					}
				}
			}
			if name == "recorder" {
				// It must capture the port production listens on, on lo.
				prod := cf.Services["shop-production"]
				i := slices.Index(prod.Command, "-listen")
				if i < 0 || i+1 >= len(prod.Command) || prod.NetworkMode != "host" {
					t.Fatalf("shop-production: want -listen HOST:PORT on the host network, got %v (%q)", prod.Command, prod.NetworkMode)
				}
				host, portText, _ := net.SplitHostPort(prod.Command[i+1])
				port, _ := strconv.Atoi(portText)
				if c.String("iface") != "lo" || !isLoopbackName(host) || !slices.Contains(c.IntSlice("port"), port) {
					t.Errorf("recorder captures --iface %s --port %v; production listens on %s (host network): want lo and that port",
						c.String("iface"), c.IntSlice("port"), prod.Command[i+1])
				}
			}
		})
	}
	if ran < 4 {
		t.Errorf("found %d tapline command lines in the compose file, want the recorder, replayer, analyzer and kibana-import at least", ran)
	}
	if partitions < 1 {
		t.Errorf("topics: %d partitions", partitions)
	}
}

func isLoopbackName(h string) bool { return h == "127.0.0.1" || h == "localhost" }

func absPath(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// ---------------------------------------------------------------------------
// Dockerfile

type dockerStage struct {
	from, name string
	lines      []string // instructions, continuation lines joined
}

func parseDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployRoot, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		ins := cur.String()
		cur.Reset()
		if f := strings.Fields(ins); strings.EqualFold(f[0], "FROM") {
			st := dockerStage{from: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				st.name = f[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("deploy/Dockerfile: %q before FROM", ins)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, ins)
	}
	return stages
}

// localImports returns the module's packages (as directories relative to
// the repository) that the package in dir imports, transitively.
func localImports(t *testing.T, module, dir string, seen map[string]bool) {
	t.Helper()
	if seen[dir] {
		return
	}
	seen[dir] = true
	pkg, err := build.ImportDir(filepath.Join(deployRoot, dir), 0)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	for _, imp := range pkg.Imports {
		if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
			localImports(t, module, rel, seen)
		}
	}
}

func goModule(t *testing.T) (module, goVersion string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "module":
			module = f[1]
		case len(f) == 2 && f[0] == "go":
			goVersion = f[1]
		}
	}
	return module, goVersion
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("deploy/Dockerfile: %d stages, want build and runtime", len(stages))
	}
	buildStage, runtime := stages[0], stages[1]
	module, goVersion := goModule(t)
	if v := strings.Join(strings.SplitN(goVersion, ".", 3)[:2], "."); buildStage.from != "golang:"+v+"-bookworm" || buildStage.name == "" {
		t.Errorf("build stage FROM %s AS %q, want golang:%s-bookworm (go.mod says go %s) with a name", buildStage.from, buildStage.name, v, goVersion)
	}
	if runtime.from != "debian:bookworm-slim" {
		t.Errorf("runtime stage FROM %s, want debian:bookworm-slim (the Debian release the build links libpcap against)", runtime.from)
	}

	// The go build targets exist and are commands; the COPY lines bring
	// every package they import.
	var targets []string
	copied := map[string]bool{}
	for _, ins := range buildStage.lines {
		f := strings.Fields(ins)
		switch strings.ToUpper(f[0]) {
		case "COPY":
			for _, src := range f[1 : len(f)-1] {
				if !strings.HasPrefix(src, "--") {
					copied[strings.TrimSuffix(src, "/")] = true
				}
			}
		case "RUN":
			if i := strings.Index(ins, "go build"); i >= 0 {
				for _, w := range strings.Fields(ins[i:]) {
					if strings.HasPrefix(w, "./") {
						targets = append(targets, path.Clean(w))
					}
					if w == "&&" {
						break
					}
				}
				if !strings.Contains(ins, "CGO_ENABLED=1") || !strings.Contains(ins, "-trimpath") {
					t.Errorf("deploy/Dockerfile: %q: want CGO_ENABLED=1 (libpcap) and -trimpath", ins)
				}
			}
		}
	}
	if !slices.Contains(targets, "cmd/tapline") || !slices.Contains(targets, "deploy/demo/shopd") {
		t.Errorf("deploy/Dockerfile builds %v, want cmd/tapline and deploy/demo/shopd", targets)
	}
	if !copied["go.mod"] || !copied["go.sum"] {
		t.Errorf("deploy/Dockerfile does not COPY go.mod and go.sum: %v", copied)
	}
	needed := map[string]bool{}
	for _, target := range targets {
		pkg, err := build.ImportDir(filepath.Join(deployRoot, target), 0)
		if err != nil {
			t.Errorf("deploy/Dockerfile builds %s: %v", target, err)
			continue
		}
		if pkg.Name != "main" {
			t.Errorf("deploy/Dockerfile builds %s: package %s, not a command", target, pkg.Name)
		}
		localImports(t, module, target, needed)
	}
	for dir := range needed {
		top, _, _ := strings.Cut(dir, "/")
		if !copied[top] && !copied[dir] {
			t.Errorf("deploy/Dockerfile: package %s is needed by the build but no COPY brings %s/", dir, top)
		}
	}

	// Runtime: only libpcap and the CA bundle, non-root, tapline as the
	// entrypoint (the compose file and the manifests rely on it).
	var user, entrypoint string
	var binaries []string
	for _, ins := range runtime.lines {
		f := strings.Fields(ins)
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = strings.TrimSpace(ins[len(f[0]):])
		case "COPY":
			if strings.HasPrefix(f[1], "--from=") {
				binaries = append(binaries, f[2:len(f)-1]...)
			}
		case "RUN":
			if i := strings.Index(ins, "apt-get install"); i >= 0 {
				var pkgs []string
				for _, w := range strings.Fields(ins[i+len("apt-get install"):]) {
					if w == "&&" {
						break
					}
					if !strings.HasPrefix(w, "-") {
						pkgs = append(pkgs, w)
					}
				}
				sort.Strings(pkgs)
				if !slices.Equal(pkgs, []string{"ca-certificates", "libpcap0.8"}) {
					t.Errorf("runtime stage installs %v, want only ca-certificates and libpcap0.8", pkgs)
				}
			}
		}
	}
	if user != "65532:65532" && user != "65532" {
		t.Errorf("runtime USER %q, want 65532", user)
	}
	if entrypoint != `["/usr/local/bin/tapline"]` {
		t.Errorf("runtime ENTRYPOINT %s, want [\"/usr/local/bin/tapline\"]", entrypoint)
	}
	for _, bin := range []string{"/out/tapline", "/out/shopd"} {
		if !slices.Contains(binaries, bin) {
			t.Errorf("runtime stage copies %v from the build, want %s", binaries, bin)
		}
	}
}

// ---------------------------------------------------------------------------
// deploy/k8s

type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Images     []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
	ConfigMapGenerator []struct {
		Name     string   `yaml:"name"`
		Files    []string `yaml:"files"`
		Literals []string `yaml:"literals"`
	} `yaml:"configMapGenerator"`
}

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sHeader struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
}

type k8sSecret struct {
	k8sHeader  `yaml:",inline"`
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

// k8sWorkload is a DaemonSet, Deployment or Job, with the fields these
// manifests use (decoded strictly: a misspelt field fails).
type k8sWorkload struct {
	k8sHeader `yaml:",inline"`
	Spec      struct {
		Replicas *int `yaml:"replicas"`
		Selector *struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		UpdateStrategy          map[string]any `yaml:"updateStrategy"`
		Strategy                map[string]any `yaml:"strategy"`
		BackoffLimit            *int           `yaml:"backoffLimit"`
		TTLSecondsAfterFinished *int           `yaml:"ttlSecondsAfterFinished"`
		Template                struct {
			Metadata k8sMeta    `yaml:"metadata"`
			Spec     k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	HostNetwork                   bool             `yaml:"hostNetwork"`
	DNSPolicy                     string           `yaml:"dnsPolicy"`
	RestartPolicy                 string           `yaml:"restartPolicy"`
	AutomountServiceAccountToken  *bool            `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds *int             `yaml:"terminationGracePeriodSeconds"`
	Tolerations                   []map[string]any `yaml:"tolerations"`
	SecurityContext               *struct {
		RunAsNonRoot   *bool  `yaml:"runAsNonRoot"`
		RunAsUser      *int64 `yaml:"runAsUser"`
		RunAsGroup     *int64 `yaml:"runAsGroup"`
		SeccompProfile *struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers     []k8sContainer `yaml:"containers"`
	InitContainers []k8sContainer `yaml:"initContainers"`
	Volumes        []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name     string `yaml:"name"`
			Optional bool   `yaml:"optional"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Optional   bool   `yaml:"optional"`
		} `yaml:"secret"`
		EmptyDir map[string]any `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type k8sKeyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			ConfigMapKeyRef *k8sKeyRef `yaml:"configMapKeyRef"`
			SecretKeyRef    *k8sKeyRef `yaml:"secretKeyRef"`
			FieldRef        *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	LivenessProbe   map[string]any `yaml:"livenessProbe"`
	ReadinessProbe  map[string]any `yaml:"readinessProbe"`
	SecurityContext *struct {
		RunAsUser                *int64 `yaml:"runAsUser"`
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		Privileged               *bool  `yaml:"privileged"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

// k8sRender is deploy/k8s after the kustomize transformations it uses:
// namespace set on every object (and the Namespace's name), images
// overridden, ConfigMaps generated. Generated ConfigMaps keep their plain
// names: kustomize appends a content hash and rewrites the references, so
// resolving references by the plain name is equivalent.
type k8sRender struct {
	k          kustomization
	namespaces []k8sHeader
	workloads  []*k8sWorkload
	configMaps map[string]map[string]string // name → key → value
	secrets    map[string]bool              // Secrets in the kustomization
	files      map[string]string            // generator file → content
	partitions int
	topics     []string
}

var k8sNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func renderK8s(t *testing.T) *k8sRender {
	t.Helper()
	dir := filepath.Join(deployRoot, "deploy/k8s")
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := &k8sRender{configMaps: map[string]map[string]string{}, secrets: map[string]bool{}, files: map[string]string{}}
	if err := decodeYAMLStrict(b, &r.k); err != nil {
		t.Fatalf("deploy/k8s/kustomization.yaml (only the fields this layout uses are expected): %v", err)
	}
	if r.k.APIVersion != "kustomize.config.k8s.io/v1beta1" || r.k.Kind != "Kustomization" || r.k.Namespace == "" {
		t.Fatalf("kustomization.yaml: apiVersion %q kind %q namespace %q", r.k.APIVersion, r.k.Kind, r.k.Namespace)
	}

	// The files present are exactly the kustomization's resources,
	// generator inputs and itself.
	listed := map[string]string{"kustomization.yaml": "the kustomization"}
	for _, res := range r.k.Resources {
		listed[res] = "resource"
	}
	for _, g := range r.k.ConfigMapGenerator {
		if !k8sNameRE.MatchString(g.Name) {
			t.Errorf("configMapGenerator %q: not a DNS label", g.Name)
		}
		data := map[string]string{}
		for _, f := range g.Files {
			listed[f] = "configMapGenerator " + g.Name
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Errorf("configMapGenerator %s: %v", g.Name, err)
				continue
			}
			data[filepath.Base(f)] = string(b)
			r.files[f] = string(b)
		}
		for _, l := range g.Literals {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				t.Errorf("configMapGenerator %s: literal %q: want key=value", g.Name, l)
			}
			data[k] = v
		}
		r.configMaps[g.Name] = data
	}
	present, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, p := range present {
		if _, ok := listed[filepath.Base(p)]; !ok {
			t.Errorf("deploy/k8s/%s is not in kustomization.yaml (resources or configMapGenerator)", filepath.Base(p))
		}
	}
	for f, what := range listed {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("kustomization.yaml lists %s (%s): %v", f, what, err)
		}
	}
	if len(r.k.Images) != 1 || r.k.Images[0].Name != taplineImage || (r.k.Images[0].NewTag == "" && r.k.Images[0].Digest == "") {
		t.Fatalf("kustomization.yaml images: %+v, want one entry for %s with newTag (or digest)", r.k.Images, taplineImage)
	}

	for _, res := range r.k.Resources {
		for i, doc := range yamlDocs(t, filepath.Join(dir, res)) {
			where := fmt.Sprintf("deploy/k8s/%s document %d", res, i+1)
			var h k8sHeader
			if err := yaml.Unmarshal(doc, &h); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if h.APIVersion == "" || h.Kind == "" || !k8sNameRE.MatchString(h.Metadata.Name) {
				t.Errorf("%s: apiVersion %q, kind %q, metadata.name %q", where, h.APIVersion, h.Kind, h.Metadata.Name)
				continue
			}
			switch h.Kind {
			case "Namespace":
				if err := decodeYAMLStrict(doc, &h); err != nil {
					t.Errorf("%s: %v", where, err)
				}
				h.Metadata.Name = r.k.Namespace // kustomize renames the Namespace object
				r.namespaces = append(r.namespaces, h)
			case "Secret":
				var s k8sSecret
				if err := decodeYAMLStrict(doc, &s); err != nil {
					t.Errorf("%s: %v", where, err)
				}
				r.secrets[s.Metadata.Name] = true
			case "DaemonSet", "Deployment", "Job":
				w := &k8sWorkload{}
				if err := decodeYAMLStrict(doc, w); err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				w.Metadata.Namespace = r.k.Namespace
				for _, cs := range [][]k8sContainer{w.Spec.Template.Spec.Containers, w.Spec.Template.Spec.InitContainers} {
					for i := range cs {
						cs[i].Image = r.overrideImage(cs[i].Image)
					}
				}
				r.workloads = append(r.workloads, w)
			default:
				t.Errorf("%s: kind %s: add a check for it to deploy_test.go", where, h.Kind)
			}
		}
	}
	return r
}

// overrideImage applies the kustomization's images entry.
func (r *k8sRender) overrideImage(image string) string {
	for _, im := range r.k.Images {
		repo, _, _ := strings.Cut(image, "@")
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		if repo != im.Name {
			continue
		}
		if im.NewName != "" {
			repo = im.NewName
		}
		if im.Digest != "" {
			return repo + "@" + im.Digest
		}
		return repo + ":" + im.NewTag
	}
	return image
}

// expand resolves Kubernetes' $(VAR) references in s from vars.
func expandK8sVars(s string, vars map[string]string) (string, error) {
	var missing []string
	out := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q: $(%s) is not a variable of the container with a known value", s, strings.Join(missing, "), $("))
	}
	return out, nil
}

func TestK8sManifests(t *testing.T) {
	r := renderK8s(t)
	if len(r.namespaces) != 1 || r.namespaces[0].Metadata.Name != r.k.Namespace {
		t.Errorf("want one Namespace object, named %s", r.k.Namespace)
	}
	image := r.overrideImage(taplineImage)
	rulesFile := ""
	kinds := map[string]int{}
	var topicJobs int
	type consumer struct {
		where    string
		replicas int
		topic    string
	}
	var consumers []consumer
	var used []string // kafka topics used by tapline containers
	secretRefs := map[string][]string{}

	for _, w := range r.workloads {
		kinds[w.Kind+"/"+w.Metadata.Name]++
		where := fmt.Sprintf("%s %s", w.Kind, w.Metadata.Name)
		spec := w.Spec.Template.Spec
		if w.Metadata.Namespace != r.k.Namespace {
			t.Errorf("%s: k8sRender in namespace %q", where, w.Metadata.Namespace)
		}
		// Selectors select the template.
		if w.Kind != "Job" {
			if w.Spec.Selector == nil || len(w.Spec.Selector.MatchLabels) == 0 {
				t.Errorf("%s: no selector", where)
			} else {
				for k, v := range w.Spec.Selector.MatchLabels {
					if w.Spec.Template.Metadata.Labels[k] != v {
						t.Errorf("%s: selector %s=%s does not match the pod template's labels", where, k, v)
					}
				}
			}
		} else {
			if spec.RestartPolicy != "OnFailure" && spec.RestartPolicy != "Never" {
				t.Errorf("%s: restartPolicy %q", where, spec.RestartPolicy)
			}
			if w.Spec.BackoffLimit == nil {
				t.Errorf("%s: no backoffLimit (the job retries until its dependency answers)", where)
			}
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: tapline talks to no Kubernetes API: set automountServiceAccountToken: false", where)
		}
		volumes := map[string]string{} // name → configMap name
		for _, v := range spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				if _, ok := r.configMaps[v.ConfigMap.Name]; !ok && !v.ConfigMap.Optional {
					t.Errorf("%s: volume %s: ConfigMap %s is not in the kustomization", where, v.Name, v.ConfigMap.Name)
				}
				volumes[v.Name] = v.ConfigMap.Name
			case v.Secret != nil:
				if !r.secrets[v.Secret.SecretName] && !v.Secret.Optional {
					t.Errorf("%s: volume %s: Secret %s is neither in the kustomization nor optional", where, v.Name, v.Secret.SecretName)
				}
				volumes[v.Name] = ""
			default:
				volumes[v.Name] = ""
			}
		}
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			cwhere := where + " container " + c.Name
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["cpu"] == "" || c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: want cpu and memory requests and limits, got %+v", cwhere, c.Resources)
			}
			// Variables: literal, from a generated ConfigMap, a Secret
			// (in the kustomization or optional), or the downward API.
			vars := map[string]string{}
			var secretEnv []string
			env := map[string]string{}
			for _, e := range c.Env {
				switch {
				case e.Value != nil:
					vars[e.Name] = *e.Value
					env[e.Name] = *e.Value
				case e.ValueFrom == nil:
					t.Errorf("%s: env %s has no value", cwhere, e.Name)
				case e.ValueFrom.ConfigMapKeyRef != nil:
					ref := e.ValueFrom.ConfigMapKeyRef
					data, ok := r.configMaps[ref.Name]
					v, hasKey := data[ref.Key]
					if (!ok || !hasKey) && !ref.Optional {
						t.Errorf("%s: env %s: ConfigMap %s key %s is not generated by the kustomization", cwhere, e.Name, ref.Name, ref.Key)
					}
					vars[e.Name] = v
					env[e.Name] = v
				case e.ValueFrom.SecretKeyRef != nil:
					ref := e.ValueFrom.SecretKeyRef
					if !r.secrets[ref.Name] && !ref.Optional {
						t.Errorf("%s: env %s: Secret %s is neither in the kustomization nor optional", cwhere, e.Name, ref.Name)
					}
					secretRefs[ref.Name] = append(secretRefs[ref.Name], ref.Key)
					secretEnv = append(secretEnv, e.Name)
				case e.ValueFrom.FieldRef != nil:
					vars[e.Name] = "node-1"
					env[e.Name] = "node-1"
				}
			}
			mounts := map[string]string{} // mountPath → ConfigMap
			for _, m := range c.VolumeMounts {
				cm, ok := volumes[m.Name]
				if !ok {
					t.Errorf("%s: volumeMount %s: no such volume", cwhere, m.Name)
				}
				mounts[m.MountPath] = cm
			}
			var args []string
			for _, a := range append(append([]string(nil), c.Command...), c.Args...) {
				x, err := expandK8sVars(a, vars)
				if err != nil {
					t.Errorf("%s: %v", cwhere, err)
				}
				args = append(args, x)
			}

			if !strings.HasPrefix(c.Image, taplineImage) {
				// Third-party: pinned, and not running tapline.
				if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
					t.Errorf("%s: image %q: pin a version", cwhere, c.Image)
				}
				if strings.Contains(strings.Join(args, " "), "kafka-topics.sh") {
					topics, partitions := scriptTopics(t, cwhere, strings.Join(args, " "))
					r.topics, r.partitions = topics, partitions
					topicJobs++
				}
				checkRestricted(t, cwhere, spec, c)
				continue
			}
			// tapline: the kustomization's image, the image's entrypoint.
			if c.Image != image {
				t.Errorf("%s: image %s, want %s (the kustomization's images entry)", cwhere, c.Image, image)
			}
			if len(c.Command) > 0 {
				t.Errorf("%s: command %v: leave it to the image's ENTRYPOINT (tapline) and give args", cwhere, c.Command)
				continue
			}
			t.Run(w.Metadata.Name+"/"+c.Name, func(t *testing.T) {
				ctx, cmdPath := checkInvocation(t, taplineInvocation{where: cwhere, args: args, env: env, secretEnv: secretEnv})
				if ctx == nil {
					return
				}
				for flagName, topic := range kafkaTopicFlags(ctx) {
					used = append(used, cwhere+" --"+flagName+" "+topic)
					if flagName == "from" && w.Kind == "Deployment" {
						n := 1
						if w.Spec.Replicas != nil {
							n = *w.Spec.Replicas
						}
						consumers = append(consumers, consumer{cwhere, n, topic})
					}
				}
				if f := ctx.String("rules"); cmdPath[0] == "replay" && f != "" {
					cm := mounts[path.Dir(f)]
					if _, ok := r.configMaps[cm][path.Base(f)]; cm == "" || !ok {
						t.Errorf("%s: --rules %s: no ConfigMap volume with key %s is mounted at %s", cwhere, f, path.Base(f), path.Dir(f))
					}
					for gf := range r.files {
						if filepath.Base(gf) == path.Base(f) {
							rulesFile = gf
						}
					}
				}
				if addr := ctx.String("metrics-addr"); addr != "" {
					_, port, _ := net.SplitHostPort(addr)
					if ann := w.Spec.Template.Metadata.Annotations; ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != port {
						t.Errorf("%s: --metrics-addr %s but prometheus.io annotations %v", cwhere, addr, ann)
					}
				}
				if cmdPath[0] == "record" {
					checkRecorder(t, cwhere, w, c, ctx)
				} else {
					checkRestricted(t, cwhere, spec, c)
				}
			})
		}
	}
	for _, want := range []string{"DaemonSet/tapline-recorder", "Deployment/tapline-replayer", "Deployment/tapline-analyzer", "Job/tapline-topics", "Job/tapline-kibana-import"} {
		if kinds[want] != 1 {
			t.Errorf("want one %s, found %d", want, kinds[want])
		}
	}
	if topicJobs != 1 {
		t.Fatalf("want one container creating topics with kafka-topics.sh, found %d", topicJobs)
	}
	for _, u := range used {
		topic := u[strings.LastIndex(u, " ")+1:]
		if !slices.Contains(r.topics, topic) {
			t.Errorf("%s: the topics job does not create it (%v)", u, r.topics)
		}
	}
	for _, c := range consumers {
		if c.replicas > r.partitions {
			t.Errorf("%s: %d replicas consume %s, which has %d partitions: the extra ones would sit idle", c.where, c.replicas, c.topic, r.partitions)
		}
	}
	if len(consumers) < 2 {
		t.Errorf("found %d consumer-group Deployments, want the replayer and the analyzer", len(consumers))
	}

	// The rules file is what replay --rules accepts.
	if rulesFile == "" {
		t.Fatal("no replayer reads a rules file from a generated ConfigMap")
	}
	dec := yaml.NewDecoder(strings.NewReader(r.files[rulesFile]))
	dec.KnownFields(true)
	var rules replayer.Rules
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("deploy/k8s/%s: %v", rulesFile, err)
	}
	if _, err := replayer.NewRewriter(rules); err != nil {
		t.Errorf("deploy/k8s/%s: %v", rulesFile, err)
	}

	// examples/secrets.yaml defines exactly the Secrets and keys referenced.
	example := map[string][]string{}
	for i, doc := range yamlDocs(t, filepath.Join(deployRoot, "deploy/k8s/examples/secrets.yaml")) {
		var s k8sSecret
		if err := decodeYAMLStrict(doc, &s); err != nil || s.Kind != "Secret" || s.APIVersion != "v1" {
			t.Errorf("examples/secrets.yaml document %d: %v (kind %q)", i+1, err, s.Kind)
			continue
		}
		if s.Metadata.Namespace != r.k.Namespace {
			t.Errorf("examples/secrets.yaml %s: namespace %q, want %s", s.Metadata.Name, s.Metadata.Namespace, r.k.Namespace)
		}
		for k := range s.StringData {
			example[s.Metadata.Name] = append(example[s.Metadata.Name], k)
		}
	}
	for name, keys := range secretRefs {
		for _, k := range keys {
			if !slices.Contains(example[name], k) {
				t.Errorf("Secret %s key %s is referenced but not in examples/secrets.yaml", name, k)
			}
		}
	}
	for name, keys := range example {
		for _, k := range keys {
			if !slices.Contains(secretRefs[name], k) {
				t.Errorf("examples/secrets.yaml: Secret %s key %s is referenced by no container", name, k)
			}
		}
	}
}

// checkRecorder: one agent per node in the node's network namespace,
// NET_RAW as the only capability, bounded resources, several ports.
func checkRecorder(t *testing.T, where string, w *k8sWorkload, c k8sContainer, ctx *cli.Context) {
	t.Helper()
	spec := w.Spec.Template.Spec
	if w.Kind != "DaemonSet" || !spec.HostNetwork || spec.DNSPolicy != "ClusterFirstWithHostNet" {
		t.Errorf("%s: %s hostNetwork %v dnsPolicy %q; want a DaemonSet, hostNetwork, ClusterFirstWithHostNet", where, w.Kind, spec.HostNetwork, spec.DNSPolicy)
	}
	tolerateAll := false
	for _, tol := range spec.Tolerations {
		if tol["operator"] == "Exists" && tol["key"] == nil && tol["effect"] == nil {
			tolerateAll = true
		}
	}
	if !tolerateAll {
		t.Errorf("%s: want a toleration {operator: Exists} to run on every node", where)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []string{"NET_RAW"}) ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || (sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("%s: want capabilities drop [ALL] add [NET_RAW], allowPrivilegeEscalation false, not privileged", where)
	}
	if len(ctx.IntSlice("port")) < 2 || ctx.String("iface") == "" {
		t.Errorf("%s: want --iface and several --port values, got %q %v", where, ctx.String("iface"), ctx.IntSlice("port"))
	}
}

// checkRestricted: the fields of the Pod Security "restricted" level that
// these manifests set: non-root, no privilege escalation, no
// capabilities, seccomp RuntimeDefault, no host namespaces.
func checkRestricted(t *testing.T, where string, spec k8sPodSpec, c k8sContainer) {
	t.Helper()
	psc, sc := spec.SecurityContext, c.SecurityContext
	nonRoot := (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot) || (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot)
	user := int64(-1)
	if psc != nil && psc.RunAsUser != nil {
		user = *psc.RunAsUser
	}
	if sc != nil && sc.RunAsUser != nil {
		user = *sc.RunAsUser
	}
	switch {
	case spec.HostNetwork:
		t.Errorf("%s: hostNetwork: only the recorder needs it", where)
	case !nonRoot || user <= 0:
		t.Errorf("%s: want runAsNonRoot and a numeric non-zero runAsUser (a named image user cannot be verified)", where)
	case psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault":
		t.Errorf("%s: want seccompProfile RuntimeDefault", where)
	case sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: want allowPrivilegeEscalation: false", where)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: want capabilities drop [ALL], nothing added", where)
	}
}

// TestDeployRenamedFlagFails shows that the command-line check catches a
// renamed flag or a variable that no flag reads.
func TestDeployRenamedFlagFails(t *testing.T) {
	app := stubApp(new(*cli.Context))
	for _, args := range [][]string{
		{"replay", "--form", "kafka://k:9092/t"},
		{"record", "--iface", "lo", "--ports", "80"},
		{"kibana", "export"},
		{"--log-fmt", "json", "analyze"},
	} {
		if _, _, err := commandFor(app, args); err == nil {
			t.Errorf("tapline %s: accepted", strings.Join(args, " "))
		}
	}
	cmd, cmdPath, err := commandFor(app, []string{"replay", "--from=kafka://k:9092/t", "--target", "a=http://b:1", "--session-parallel"})
	if err != nil {
		t.Fatal(err)
	}
	getenv := getenvVars(t)
	for name, want := range map[string]bool{
		"TAPLINE_REPLAY_TARGET": true, "TAPLINE_REPLAY_AUTHORIZATION": true, "TAPLINE_LOG_FORMAT": true,
		"TAPLINE_REPLAY_TARGETS": false, "TAPLINE_ANALYZE_ES": false, "TAPLINE_ANALYZE_ES_PASSWORD": false,
		"TAPLINE_REPLAY_KAFKA_PASSWORD": true, "TAPLINE_REPLAY_KAFKA_PASSWORD_FILE": true, "TAPLINE_ANALYZE_KAFKA_PASSWORD": false,
		"TAPLINE_REPLAY_KAFKA_SASL": true,
	} {
		if got := envFor(app, cmd, cmdPath, getenv, name); got != want {
			t.Errorf("%s for replay: %v, want %v", name, got, want)
		}
	}
}

// ---------------------------------------------------------------------------
// docs/reference

// helpPages are the commands with a reference page, as paths under tapline.
func helpPages(app *cli.App) [][]string {
	pages := [][]string{nil}
	var walk func(prefix []string, cmds []*cli.Command)
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" || c.Hidden {
				continue
			}
			p := append(append([]string(nil), prefix...), c.Name)
			pages = append(pages, p)
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
	return pages
}

func pageFile(cmdPath []string) string {
	return strings.Join(append([]string{"tapline"}, cmdPath...), "-") + ".md"
}

// referencePage renders the page of one command from its --help output
// and its flags.
func referencePage(t *testing.T, cmdPath []string, getenv map[string]bool) string {
	t.Helper()
	var help bytes.Buffer
	app := newApp(&help, io.Discard)
	if err := app.Run(append(append([]string{"tapline"}, cmdPath...), "--help")); err != nil {
		t.Fatalf("tapline %s --help: %v", strings.Join(cmdPath, " "), err)
	}
	title := strings.Join(append([]string{"tapline"}, cmdPath...), " ")
	app = newApp(io.Discard, io.Discard) // Run added help commands and flags to the one above
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from `%s --help` by `go test ./cmd/tapline -run TestReference -update`. Do not edit. -->\n\n", title)
	fmt.Fprintf(&b, "# %s\n\n", title)
	flags := app.Flags
	if len(cmdPath) > 0 {
		cmd := lookupCommand(app.Commands, cmdPath[0])
		for _, name := range cmdPath[1:] {
			cmd = lookupCommand(cmd.Subcommands, name)
		}
		fmt.Fprintf(&b, "%s.\n\n", strings.TrimSuffix(cmd.Usage, "."))
		flags = cmd.Flags
		if len(cmd.Subcommands) > 0 {
			b.WriteString("Subcommands: ")
			for i, sub := range cmd.Subcommands {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "[%s %s](%s)", title, sub.Name, pageFile(append(append([]string(nil), cmdPath...), sub.Name)))
			}
			b.WriteString(".\n\n")
		}
	} else {
		b.WriteString("The commands: ")
		for i, c := range app.Commands {
			if c.Name == "help" {
				continue
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "[%s](%s)", c.Name, pageFile([]string{c.Name}))
		}
		b.WriteString(". Every flag can also be set from the environment variable shown in brackets.\n\n")
	}
	b.WriteString("```text\n")
	b.WriteString(strings.TrimRight(help.String(), "\n"))
	b.WriteString("\n```\n")

	if len(flags) > 0 {
		b.WriteString("\n## Flags\n\n| flag | environment | default | |\n| --- | --- | --- | --- |\n")
		for _, f := range flags {
			df := f.(cli.DocGenerationFlag)
			names := make([]string, 0, len(f.Names()))
			for _, n := range f.Names() {
				names = append(names, "`--"+n+"`")
			}
			def := df.GetDefaultText()
			if _, isBool := f.(*cli.BoolFlag); isBool && def == "false" {
				def = ""
			}
			if def != "" {
				def = "`" + def + "`"
			}
			usage := df.GetUsage()
			if sf, ok := f.(cli.DocGenerationSliceFlag); ok && sf.IsSliceFlag() && !strings.Contains(usage, "repeat") {
				usage += " (repeatable)"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", strings.Join(names, ", "), strings.Join(df.GetEnvVars(), "`, `"),
				def, strings.ReplaceAll(usage, "|", `\|`))
		}
	}
	if len(cmdPath) > 0 {
		prefix := "TAPLINE_" + strings.ToUpper(cmdPath[0]) + "_"
		var secrets []string
		for name := range getenv {
			if strings.HasPrefix(name, prefix) && len(flags) > 0 {
				secrets = append(secrets, "`"+name+"`")
			}
		}
		sort.Strings(secrets)
		if len(secrets) > 0 {
			fmt.Fprintf(&b, "\nRead from the environment only (secrets, never flag values): %s.\n", strings.Join(secrets, ", "))
		}
	}
	return b.String()
}

// TestReference: docs/reference holds one page per command, generated
// from the real --help output, and nothing else. Run with -update after
// changing a command or a flag.
func TestReference(t *testing.T) {
	for _, kv := range os.Environ() { // values from the environment would show as defaults
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TAPLINE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := filepath.Join(deployRoot, "docs/reference")
	getenv := getenvVars(t)
	want := map[string]string{}
	var index strings.Builder
	index.WriteString("<!-- Generated by `go test ./cmd/tapline -run TestReference -update`. Do not edit. -->\n\n")
	index.WriteString("# Command reference\n\nOne page per command, generated from its `--help` output; `go test ./cmd/tapline`\n" +
		"fails when a page differs from what the command prints, so the pages cannot drift.\n" +
		"Every flag can also be set from the environment: `TAPLINE_<COMMAND>_<FLAG>`, global flags `TAPLINE_<FLAG>`.\n\n")
	app := newApp(io.Discard, io.Discard)
	for _, cmdPath := range helpPages(app) {
		file := pageFile(cmdPath)
		want[file] = referencePage(t, cmdPath, getenv)
		usage := app.Usage
		if len(cmdPath) > 0 {
			cmd := lookupCommand(app.Commands, cmdPath[0])
			for _, name := range cmdPath[1:] {
				cmd = lookupCommand(cmd.Subcommands, name)
			}
			usage = cmd.Usage
		}
		fmt.Fprintf(&index, "- [`%s`](%s): %s\n", strings.Join(append([]string{"tapline"}, cmdPath...), " "), file, usage)
	}
	want["README.md"] = index.String()

	if *updateReference {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(dir, "*.md"))
		for _, f := range old {
			if _, ok := want[filepath.Base(f)]; !ok {
				os.Remove(f)
			}
		}
		for f, content := range want {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	present, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range present {
		if _, ok := want[filepath.Base(f)]; !ok {
			t.Errorf("docs/reference/%s is not generated (a removed command?); run go test ./cmd/tapline -run TestReference -update", filepath.Base(f))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(want)) {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("docs/reference/%s: %v; run go test ./cmd/tapline -run TestReference -update", f, err)
			continue
		}
		if string(got) != want[f] {
			t.Errorf("docs/reference/%s differs from the current --help output; run go test ./cmd/tapline -run TestReference -update\n%s",
				f, firstDiffLine(string(got), want[f]))
		}
	}
}

// firstDiffLine shows the first line that differs.
func firstDiffLine(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  file: %s\n  help: %s", i+1, gl, wl)
		}
	}
	return ""
}
