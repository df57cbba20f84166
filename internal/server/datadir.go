package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gmsa/internal/store"
	"gmsa/internal/store/bolt"
)

// Files of a data directory.
const (
	DBFile       = "gmsa.db"
	PIDFile      = "gmsa.pid"
	AdminSocket  = "admin.sock"
	AdminPWFile  = "admin-password"
	backupVerb   = "backup\n"
	socketReadTO = 5 * time.Second
)

// OpenStore opens the embedded store of a data directory. While a server holds it, the
// error says so and names the server's pid.
func OpenStore(dir string, opt bolt.Options) (*bolt.Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return openDB(dir, opt)
}

// ErrNoDataDir is a data directory without a store: nothing was provisioned there.
var ErrNoDataDir = errors.New("no gmsa data directory")

// OpenExisting opens the store of a data directory that already holds one, creating
// nothing: commands that read or change a domain use it.
func OpenExisting(dir string, opt bolt.Options) (*bolt.Store, error) {
	if _, err := os.Stat(filepath.Join(dir, DBFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s (looked for %s): pass --data DIR (or set GMSA_DATA) where 'gmsa domain provision' or 'gmsa server --dev' made one, or --server ldaps://HOST:PORT --user NAME --password-file FILE to work against a running DC",
			ErrNoDataDir, dir, filepath.Join(dir, DBFile))
	}
	return openDB(dir, opt)
}

func openDB(dir string, opt bolt.Options) (*bolt.Store, error) {
	st, err := bolt.Open(filepath.Join(dir, DBFile), opt)
	if errors.Is(err, store.ErrLocked) {
		return nil, heldError(dir)
	}
	return st, err
}

// heldError says which server holds the store of dir and how to reach it instead.
func heldError(dir string) error {
	pid := "another process"
	if b, rerr := os.ReadFile(filepath.Join(dir, PIDFile)); rerr == nil {
		pid = "gmsa server pid " + strings.TrimSpace(string(b))
	}
	remote := "--server ldaps://HOST:PORT"
	var ep Endpoints
	if b, rerr := os.ReadFile(filepath.Join(dir, EndpointsFile)); rerr == nil && json.Unmarshal(b, &ep) == nil && ep.LDAPS != "" {
		remote = "--server " + ep.LDAPS
		if ep.CA != "" {
			remote += " --ca-file " + ep.CA
		}
	}
	return fmt.Errorf("data directory %s is held by %s: while it runs, talk to it over LDAP (%s --user Administrator --password-file FILE), or stop it; 'gmsa backup' works either way: %w",
		dir, pid, remote, store.ErrLocked)
}

// Compact rewrites the embedded store of a data directory no server holds with full
// pages and no free space (bolt.Compact); an etcd store defragments with its own tools.
func Compact(cfg Config) (bolt.CompactStats, error) {
	if cfg.Store.backend() == "etcd" {
		return bolt.CompactStats{}, errors.New("the store is etcd: it compacts its own history, and 'etcdctl defrag' returns its free space; 'gmsa compact' rewrites the embedded store")
	}
	path := filepath.Join(cfg.Data, DBFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return bolt.CompactStats{}, fmt.Errorf("%w at %s (looked for %s): pass --data DIR (or set GMSA_DATA)", ErrNoDataDir, cfg.Data, path)
	}
	st, err := bolt.Compact(path)
	if errors.Is(err, store.ErrLocked) {
		return st, heldError(cfg.Data)
	}
	return st, err
}

// serveAdmin answers local admin requests on a Unix socket only the owner can use:
// "backup" streams a consistent snapshot of the store.
func serveAdmin(ctx context.Context, l net.Listener, st store.Store, log func(msg string, args ...any)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed on shutdown
		}
		go func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(socketReadTO))
			buf := make([]byte, len(backupVerb))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != backupVerb {
				return
			}
			c.SetReadDeadline(time.Time{})
			n, err := store.Dump(ctx, st, c)
			log("backup served", "keys", n, "err", err)
		}()
	}
}

// Backup writes a consistent snapshot of the configured store to w: straight from the
// store when no server holds it (always so on etcd, which many clients share),
// otherwise through the running server's admin socket.
func Backup(ctx context.Context, cfg Config, w io.Writer) (int, error) {
	dir := cfg.Data
	st, release, err := OpenConfigured(ctx, cfg, true, false)
	if err == nil {
		defer release()
		return store.Dump(ctx, st, w)
	}
	if !errors.Is(err, store.ErrLocked) {
		return 0, err
	}
	c, derr := net.Dial("unix", filepath.Join(dir, AdminSocket))
	if derr != nil {
		return 0, fmt.Errorf("%w; and its admin socket does not answer: %v", err, derr)
	}
	defer c.Close()
	if _, err := io.WriteString(c, backupVerb); err != nil {
		return 0, err
	}
	n, err := store.Verify(io.TeeReader(c, w)) // what is written is what verified
	if err != nil {
		return 0, fmt.Errorf("backup from the running server: %w; see its log", err)
	}
	return n, nil
}
