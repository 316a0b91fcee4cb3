package stream

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in      string
		want    Endpoint
		wantErr bool
	}{
		{in: "kafka://127.0.0.1:9092/tapline.exchanges", want: Endpoint{Scheme: SchemeKafka, Brokers: []string{"127.0.0.1:9092"}, Topic: "tapline.exchanges"}},
		{in: "kafka://a:1,b/t", want: Endpoint{Scheme: SchemeKafka, Brokers: []string{"a:1", "b:9092"}, Topic: "t"}},
		{in: "file:///var/lib/tapline", want: Endpoint{Scheme: SchemeFile, Path: "/var/lib/tapline"}},
		{in: "file://rel/dir", want: Endpoint{Scheme: SchemeFile, Path: "rel/dir"}},
		{in: "kafka://host:9092/", wantErr: true},
		{in: "kafka://host:9092", wantErr: true},
		{in: "kafka:///topic", wantErr: true},
		{in: "kafka://a,,b/t", wantErr: true},
		{in: "kafka://h/bad topic", wantErr: true},
		{in: "http://h/t", wantErr: true},
		{in: "127.0.0.1:9092/t", wantErr: true},
		{in: "file://", wantErr: true},
		{in: "kafka://tapline:s3cret@h:9093/t", wantErr: true},
		{in: "kafka://tapline:s3/cret@h:9093/t", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				if strings.Contains(err.Error(), "s3") {
					t.Fatalf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if back, err := ParseURL(got.String()); err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("String() %q does not parse back: %+v %v", got.String(), back, err)
			}
		})
	}
}
