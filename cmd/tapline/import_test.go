package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestImportGoReplay imports a GoReplay file into the file log twice and
// prints it back: every pair arrives once, ids are stable across imports,
// and redaction applies as in record.
func TestImportGoReplay(t *testing.T) {
	ctx := context.Background()
	ids := func(out string) []string {
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var x struct{ ID string }
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			got = append(got, x.ID)
		}
		return got
	}
	var runs [][]string
	for range 2 {
		log := "file://" + t.TempDir() + "/exchanges"
		if _, stderr, err := runTaplineOut(ctx, "import", "--gor", "../../internal/gor/testdata/pairs.gor", "--to", log); err != nil {
			t.Fatalf("import: %v\n%s", err, stderr)
		} else if !strings.Contains(stderr, "exchanges=4") || !strings.Contains(stderr, "published=4") {
			t.Fatalf("import summary does not say 4 exchanges published:\n%s", stderr)
		}
		out, stderr, err := runTaplineOut(ctx, "cat", log)
		if err != nil {
			t.Fatalf("cat: %v\n%s", err, stderr)
		}
		runs = append(runs, ids(out))
	}
	if len(runs[0]) != 4 || strings.Join(runs[0], ",") != strings.Join(runs[1], ",") {
		t.Fatalf("ids of two imports of one file: %v and %v, want the same 4", runs[0], runs[1])
	}

	// Redaction and filters from record's flags.
	t.Setenv("TAPLINE_IMPORT_REDACT_KEY", "0123456789abcdef0123")
	out, stderr, err := runTaplineOut(ctx, "import", "--gor", "../../internal/gor/testdata/pairs.gor", "--to", "-",
		"--redact-header", "Set-Cookie", "--deny-method", "GET")
	if err != nil {
		t.Fatalf("import with redaction: %v\n%s", err, stderr)
	}
	if strings.Contains(out, "a=1") || !strings.Contains(out, "POST") || strings.Contains(out, `"method":"GET"`) {
		t.Fatalf("redacted, filtered import printed:\n%s", out)
	}
	if _, err := runTapline(ctx, "import", "--to", "-"); err == nil || !strings.Contains(err.Error(), "--gor") {
		t.Errorf("import without --gor: %v", err)
	}
	if _, err := runTapline(ctx, "import", "--gor", "../../recorder/testdata/loopback.want", "--to", "-"); err == nil {
		t.Error("a file that is not GoReplay was imported without complaint")
	}
}
