package replayer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/tapline/tapline/schema"
)

// Middleware is an external process that sees every exchange before it
// is replayed and returns the request to send, or a drop. It speaks JSON
// lines on its stdin and stdout, one reply per request, matched by id:
//
//	tapline → process: {"id":"…","session_key":"…","request":{"method":"GET","target":"/a?b=1",
//	                    "host":"api.example.com","headers":[["Accept","*/*"]],"body":"<base64>"}}
//	process → tapline: {"id":"…","request":{…same shape…}}   send this request instead
//	                   {"id":"…","drop":true}                 do not replay this exchange
//
// Its stderr is passed through to tapline's stderr. A reply that does not
// come within the timeout fails that exchange (its outcomes say why; a
// late reply is discarded by id); a process that exits stops the replay
// with an error. deploy/middleware/example.py is a working example.
type Middleware struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan middlewareMessage
	exited  chan struct{}
	waitErr error
	timeout time.Duration
	log     *slog.Logger

	mu sync.Mutex // one request at a time
}

// MiddlewareConfig configures a Middleware.
type MiddlewareConfig struct {
	Command []string // the program and its arguments; required
	// Timeout bounds the wait for one reply. Default 1s.
	Timeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

type middlewareRequest struct {
	Method  string      `json:"method"`
	Target  string      `json:"target"`
	Host    string      `json:"host,omitempty"`
	Headers [][2]string `json:"headers"`
	Body    []byte      `json:"body,omitempty"` // base64 in JSON
}

type middlewareMessage struct {
	ID         string             `json:"id"`
	SessionKey string             `json:"session_key,omitempty"`
	Request    *middlewareRequest `json:"request,omitempty"`
	Drop       bool               `json:"drop,omitempty"`
}

// errMiddlewareDrop is returned by transform when the middleware asked to
// drop the exchange.
var errMiddlewareDrop = errors.New("dropped by the middleware")

// StartMiddleware starts the process.
func StartMiddleware(cfg MiddlewareConfig) (*Middleware, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("middleware: no command")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = middlewareStderr{cfg.Logger}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting middleware %q: %w", cfg.Command[0], err)
	}
	m := &Middleware{cmd: cmd, stdin: stdin, replies: make(chan middlewareMessage, 16), exited: make(chan struct{}),
		timeout: cfg.Timeout, log: cfg.Logger}
	go m.read(stdout)
	return m, nil
}

// read decodes replies until the process closes its stdout, then waits
// for it to exit.
func (m *Middleware) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var msg middlewareMessage
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			m.log.Warn("middleware wrote a line that is not a reply", "err", err)
			continue
		}
		m.replies <- msg
	}
	m.waitErr = m.cmd.Wait()
	close(m.exited)
}

// transform asks the middleware for the request to send for ex. It
// returns errMiddlewareDrop for a drop, and another error when there is no
// usable reply; a process that exited is reported with errMiddlewareExited.
func (m *Middleware) transform(ctx context.Context, ex *schema.Exchange) (*schema.Request, error) {
	in := ex.GetRequest()
	msg := middlewareMessage{ID: ex.GetId(), SessionKey: ex.GetSessionKey(), Request: &middlewareRequest{
		Method: in.GetMethod(), Target: in.GetTarget(), Host: in.GetHost(), Body: in.GetBody(),
	}}
	for _, h := range in.GetHeaders() {
		msg.Request.Headers = append(msg.Request.Headers, [2]string{h.GetName(), h.GetValue()})
	}
	line, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.exited:
		return nil, fmt.Errorf("%w: %v", errMiddlewareExited, m.waitErr)
	default:
	}
	if _, err := m.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("%w: writing to it: %v", errMiddlewareExited, err)
	}
	timer := time.NewTimer(m.timeout)
	defer timer.Stop()
	for {
		select {
		case reply := <-m.replies:
			if reply.ID != msg.ID {
				continue // a late reply to an exchange that timed out
			}
			if reply.Drop {
				return nil, errMiddlewareDrop
			}
			if reply.Request == nil || reply.Request.Method == "" || reply.Request.Target == "" {
				return nil, errors.New("middleware reply has neither drop nor a request with method and target")
			}
			out := &schema.Request{Method: reply.Request.Method, Target: reply.Request.Target, Proto: in.GetProto(),
				Host: reply.Request.Host, Body: reply.Request.Body, BodySize: int64(len(reply.Request.Body))}
			for _, h := range reply.Request.Headers {
				out.Headers = append(out.Headers, &schema.Header{Name: h[0], Value: h[1]})
			}
			return out, nil
		case <-timer.C:
			return nil, fmt.Errorf("middleware did not answer within %s", m.timeout)
		case <-m.exited:
			return nil, fmt.Errorf("%w: %v", errMiddlewareExited, m.waitErr)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// errMiddlewareExited means the middleware process is gone: the replay
// cannot go on as configured.
var errMiddlewareExited = errors.New("middleware process exited")

// Close closes the process's stdin and waits for it to exit.
func (m *Middleware) Close() error {
	m.stdin.Close()
	select {
	case <-m.exited:
	case <-time.After(2 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
	return nil
}

// middlewareStderr logs what the process writes to stderr.
type middlewareStderr struct{ log *slog.Logger }

func (w middlewareStderr) Write(p []byte) (int, error) {
	w.log.Info("middleware", "stderr", string(p))
	return len(p), nil
}
