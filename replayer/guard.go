package replayer

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapline/tapline/schema"
)

// productionGuard keeps replayed requests away from production: a target
// is refused for an exchange when it is the host the exchange was recorded
// from, that is when
//
//   - the target's host and port equal the recorded Host header's (a Host
//     without a port means 80: the recorder captures cleartext HTTP), or
//   - one of the addresses the target's host resolved to at start, with
//     the target's port, is the recorded server's IP and port.
//
// Config.AllowProductionTarget turns the guard off. Safe for concurrent
// use.
type productionGuard struct {
	targets map[string]*guardedTarget // by target name
}

type guardedTarget struct {
	hostPort string          // lowercased host:port the target URL names
	addrs    map[string]bool // ip:port it resolved to at start
	warn     sync.Once
}

// newProductionGuard resolves the targets' hosts (each lookup bounded by
// timeout; a failed lookup leaves only the name check).
func newProductionGuard(targets []Target, timeout time.Duration) *productionGuard {
	g := &productionGuard{targets: map[string]*guardedTarget{}}
	for _, t := range targets {
		host, port := t.URL.Hostname(), t.URL.Port()
		if port == "" {
			port = "80"
			if t.URL.Scheme == "https" {
				port = "443"
			}
		}
		gt := &guardedTarget{hostPort: strings.ToLower(net.JoinHostPort(host, port)), addrs: map[string]bool{}}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		cancel()
		if err == nil {
			for _, ip := range ips {
				gt.addrs[net.JoinHostPort(ip, port)] = true
			}
		}
		g.targets[t.Name] = gt
	}
	return g
}

// production says why t is the production host of ex, or "" when it is
// not.
func (g *productionGuard) production(t Target, ex *schema.Exchange) string {
	if g == nil {
		return ""
	}
	gt := g.targets[t.Name]
	if gt == nil {
		return ""
	}
	if h := ex.GetRequest().GetHost(); h != "" {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "80")
		}
		if strings.ToLower(h) == gt.hostPort {
			return "the target is the recorded Host " + h
		}
	}
	if s := ex.GetServer(); s.GetIp() != "" {
		addr := net.JoinHostPort(s.GetIp(), strconv.Itoa(int(s.GetPort())))
		if gt.addrs[addr] {
			return "the target resolves to the recorded server " + addr
		}
	}
	return ""
}
