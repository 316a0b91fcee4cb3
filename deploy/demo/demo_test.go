package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestDemo runs the `make demo` scenario, smaller: live capture on lo needs
// root or CAP_NET_RAW (CI runs as root); without them it fails, it does
// not skip. run itself checks that the report shows the regression.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tapline")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/tapline").CombinedOutput(); err != nil {
		t.Fatalf("building tapline: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run(ctx, bin, filepath.Join(t.TempDir(), "demo"), "lo", 300, 300, fileBackend("")); err != nil {
		t.Fatal(err)
	}
}
