package filelog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// cursorFile is the content of dir/cursors/<name>.
type cursorFile struct {
	Next      int64     `json:"next"`      // offset of the first record not committed
	Committed time.Time `json:"committed"` // when, for people reading the file
}

func cursorPath(dir, name string) string { return filepath.Join(dir, "cursors", name) }

// validCursor reports whether name is usable as a file name everywhere.
func validCursor(name string) bool {
	if name == "" || len(name) > 200 || name == "." || name == ".." {
		return false
	}
	for _, c := range name {
		ok := c == '.' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// readCursor returns the committed offset of the cursor, and false when it
// was never committed.
func readCursor(dir, name string) (int64, bool, error) {
	path := cursorPath(dir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("filelog: reading cursor %s: %w", path, err)
	}
	var c cursorFile
	if err := json.Unmarshal(b, &c); err != nil || c.Next < 0 {
		return 0, false, fmt.Errorf("filelog: cursor %s is unreadable (delete it to start over): %v", path, err)
	}
	return c.Next, true, nil
}

// writeCursor stores next as the cursor's position: a temporary file,
// fsynced, renamed over the old one, and the directory fsynced, so a crash
// leaves either the old position or the new one.
func writeCursor(dir, name string, next int64) error {
	cdir := filepath.Join(dir, "cursors")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", cdir, err)
	}
	b, err := json.Marshal(cursorFile{Next: next, Committed: time.Now().UTC()})
	if err != nil {
		return err
	}
	path := cursorPath(dir, name)
	tmp, err := os.CreateTemp(cdir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing cursor %s: %w", path, err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing cursor %s: %w", path, err)
	}
	return syncDir(cdir)
}
