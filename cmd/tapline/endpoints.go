package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/replayer"
	"github.com/tapline/tapline/schema"
)

// kafkaEndpoint parses the URL given to flag and insists on kafka://.
func kafkaEndpoint(flag, raw string) (stream.Endpoint, error) {
	if raw == "" {
		return stream.Endpoint{}, usageError("--%s is required (kafka://host:9092/topic)", flag)
	}
	ep, err := stream.ParseURL(raw)
	if err != nil {
		return stream.Endpoint{}, usageError("--%s: %v", flag, err)
	}
	if ep.Scheme != stream.SchemeKafka {
		return stream.Endpoint{}, usageError("--%s %s: want kafka://host:9092/topic here", flag, raw)
	}
	return ep, nil
}

// consumerFor opens a consumer-group member for the kafka:// URL given to
// flag; start is the value of --start.
func consumerFor(flag, raw, group, start string, sec kafkaio.Security) (*kafkaio.Consumer, error) {
	ep, err := kafkaEndpoint(flag, raw)
	if err != nil {
		return nil, err
	}
	latest, err := startAtLatest(start)
	if err != nil {
		return nil, err
	}
	c, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Brokers: ep.Brokers, Topic: ep.Topic, Group: group, StartAtLatest: latest, Security: sec})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return c, nil
}

func startAtLatest(v string) (bool, error) {
	switch v {
	case "latest":
		return true, nil
	case "earliest":
		return false, nil
	}
	return false, usageError("--start %q: want latest or earliest", v)
}

// parseTargets parses --target name=URL values.
func parseTargets(values []string) ([]replayer.Target, error) {
	if len(values) == 0 {
		return nil, usageError("--target is required: name=http://staging:8080 (repeat it for several targets)")
	}
	var out []replayer.Target
	for _, v := range values {
		name, raw, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, usageError("--target %q: want name=http://host:port", v)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageError("--target %q: %q is not an http(s) URL", v, raw)
		}
		out = append(out, replayer.Target{Name: name, URL: u})
	}
	return out, nil
}

func schemaVersion() string { return schema.Version }

// errLost is returned when a command ends with records it could not
// deliver, so a script notices.
var errLost = errors.New("records were lost")

func lostError(what string, n uint64) error {
	return fmt.Errorf("%d %s could not be delivered (see the log): %w", n, what, errLost)
}
