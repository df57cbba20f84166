// Package atomicfile writes files so that readers see the old content or the new one,
// never a part: a temporary file in the same directory, created with the final mode,
// synced, renamed over the target, and the directory synced.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, readable only as mode allows (0600 for secrets). The
// temporary file is created with mode from the start, so the secret is never readable
// by others, even for an instant.
func Write(path string, data []byte, mode os.FileMode) (err error) {
	return WriteOwned(path, data, mode, -1, -1)
}

// WriteOwned is Write with the file's owner and group set (-1 keeps the process's)
// before any byte is written, so the file never exists with another owner.
func WriteOwned(path string, data []byte, mode os.FileMode, uid, gid int) error {
	return write(path, data, mode, uid, gid, true)
}

// WriteRuntime replaces path as Write does but without syncing: for the files a
// process rewrites every time it starts (its pid, the addresses it listens on), which
// a crash may lose but never leaves half written while the system runs.
func WriteRuntime(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, -1, -1, false)
}

func write(path string, data []byte, mode os.FileMode, uid, gid int, durable bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if uid >= 0 || gid >= 0 {
		if uid == os.Getuid() {
			uid = -1
		}
		if gid == os.Getgid() {
			gid = -1
		}
		if uid >= 0 || gid >= 0 {
			if err = f.Chown(uid, gid); err != nil {
				return fmt.Errorf("atomicfile: %s: %w", path, err)
			}
		}
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if durable {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("atomicfile: syncing %s: %w", path, err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if !durable {
		return nil
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
