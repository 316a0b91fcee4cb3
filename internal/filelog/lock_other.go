//go:build !unix

package filelog

import (
	"errors"
	"os"
)

// tryLock is not implemented off Unix: without it two writers could
// interleave their records, so Open refuses instead.
func tryLock(*os.File) error {
	return errors.New("locking the log needs flock(2); file:// logs are supported on Unix systems only")
}
