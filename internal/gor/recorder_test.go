package gor

import (
	"strings"
	"testing"

	"github.com/tapline/tapline/recorder"
)

// TestWithRecorderRedactor: the recorder's Redactor and session keys plug
// into Config, and the session key is taken after redaction, so a cookie
// session keys by its pseudonym and the secret never becomes a record key.
func TestWithRecorderRedactor(t *testing.T) {
	redactor, err := recorder.NewRedactor(recorder.RedactConfig{Key: []byte("0123456789abcdef"), Preset: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := recorder.ParseSessionKey("cookie:sid")
	if err != nil {
		t.Fatal(err)
	}
	capture := "1 c35a0050c0a8000a00000001 1700000000000000000 1000\nGET /a HTTP/1.1\r\nCookie: sid=secret-session\r\n\r\n" + joinSeparator +
		"2 c35a0050c0a8000a00000001 1700000000001000000 1000\nHTTP/1.1 200 OK\r\nSet-Cookie: sid=secret-session; Path=/\r\nContent-Length: 0\r\n\r\n" + joinSeparator
	r := NewReader(strings.NewReader(capture), Config{Redact: redactor.Apply, SessionKey: key, Logger: quietLogger()})
	var n int
	for ex := range exchanges(t, r) {
		n++
		if strings.Contains(ex.String(), "secret-session") {
			t.Errorf("the secret left the reader: %v", ex)
		}
		if !strings.HasPrefix(ex.GetSessionKey(), "tap_") {
			t.Errorf("session key %q, want the cookie's pseudonym", ex.GetSessionKey())
		}
	}
	if st := r.Stats(); n != 1 || st.Redacted != 2 {
		t.Errorf("%d exchanges, %d values redacted; want 1 and 2", n, st.Redacted)
	}
}
