//go:build unix

package filelog

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock(2) on f without waiting. It reports
// errLocked when another open file description holds the lock, in this
// process or another. The lock goes away when f is closed or the process
// dies, so a killed writer never leaves a stale lock behind.
func tryLock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
