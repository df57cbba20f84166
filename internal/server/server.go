package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gmsa/internal/atomicfile"
	"gmsa/internal/directory"
	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Deps are the server's injected dependencies.
type Deps struct {
	Now    func() time.Time
	Rand   io.Reader
	Stdout io.Writer // where first-start notices go
	Logger *slog.Logger
}

// NewLogger builds the slog logger a config asks for.
func NewLogger(c *Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(strings.ToUpper(c.Log.Level)))
	opt := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(c.Log.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opt))
	}
	return slog.New(slog.NewTextHandler(w, opt))
}

// Run serves until ctx ends (SIGTERM, SIGINT), then shuts down in order.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := deps.Logger
	st, err := OpenStore(cfg.Data)
	if err != nil {
		return err
	}
	defer st.Close()
	pidPath := filepath.Join(cfg.Data, PIDFile)
	if err := atomicfile.Write(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidPath)

	opts := directory.Options{Now: deps.Now, Rand: deps.Rand, Logger: log}
	dir, err := directory.Open(ctx, st, opts)
	if errors.Is(err, directory.ErrNotProvisioned) && cfg.Dev {
		dir, err = provisionDev(ctx, cfg, deps, st, opts)
	}
	if err != nil {
		return err
	}
	sock := filepath.Join(cfg.Data, AdminSocket)
	os.Remove(sock) // left by a killed server; the store lock proves none runs
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	os.Chmod(sock, 0o600)
	defer os.Remove(sock)
	done := make(chan struct{})
	go func() { serveAdmin(ctx, l, st, log.Info); close(done) }()

	dom := dir.Domain()
	log.Info("gmsa server running", "realm", dom.Realm, "data", cfg.Data, "pid", os.Getpid())
	<-ctx.Done()
	log.Info("shutting down")
	l.Close()
	<-done
	return nil
}

// provisionDev creates EXAMPLE.TEST with a root key back-dated past the 10-hour wait,
// and writes the Administrator password to a 0600 file.
func provisionDev(ctx context.Context, cfg Config, deps Deps, st store.Store, opts directory.Options) (*directory.Directory, error) {
	now := ntsec.FileTimeFromTime(deps.Now())
	back := now - kds.CreationLag - ntsec.TicksPerHour
	p, err := directory.Provision(ctx, st, directory.ProvisionOptions{Realm: cfg.Realm, NetBIOS: cfg.NetBIOS, RootKey: &back}, opts)
	if err != nil {
		return nil, err
	}
	pwPath := filepath.Join(cfg.Data, AdminPWFile)
	if err := atomicfile.Write(pwPath, []byte(p.AdminPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	dom := p.Directory.Domain()
	fmt.Fprintf(deps.Stdout, "provisioned %s (%s) for development, with a KDS root key usable now\n"+
		"Administrator's password is in %s (mode 0600)\n", dom.Realm, dom.SID, pwPath)
	return p.Directory, nil
}
