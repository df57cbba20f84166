package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"gmsa/internal/agent/leaseapi"
	"gmsa/internal/credspec"
)

// MaxLeases bounds the leases one agent holds (each is a ticket cache per gMSA kept
// fresh); MaxSpecsPerLease the credential specs of one request.
const (
	MaxLeases        = 1024
	MaxSpecsPerLease = 64
	// maxLocalConns bounds the lease API's and the metrics listener's connections.
	maxLocalConns = 64
)

// lease is a set of ticket caches a container runtime asked for.
type lease struct {
	id       string
	user     string // non-domain-joined: the user that reads, else ""
	domain   string
	accounts []*Account
	dirs     []string
}

// leaseServer is credentials-fetcher's service on the agent.
type leaseServer struct {
	leaseapi.UnimplementedCredentialsFetcherServiceServer
	a *Agent
}

// serveLeases serves the lease API on a Unix socket (mode 0660) until ctx ends.
func (a *Agent) serveLeases(ctx context.Context, ln net.Listener) error {
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(1<<20), grpc.MaxConcurrentStreams(16), grpc.ConnectionTimeout(10*time.Second))
	ln = netutil.LimitListener(ln, maxLocalConns)
	leaseapi.RegisterCredentialsFetcherServiceServer(srv, &leaseServer{a: a})
	go func() { <-ctx.Done(); srv.Stop() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// ListenLeases opens the lease API's socket, replacing a stale one.
func ListenLeases(path string) (net.Listener, error) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("agent: lease API: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: lease API: %w", err)
	}
	return ln, nil
}

func (l *leaseServer) HealthCheck(context.Context, *leaseapi.HealthCheckRequest) (*leaseapi.HealthCheckResponse, error) {
	return &leaseapi.HealthCheckResponse{Status: "OK"}, nil
}

func (l *leaseServer) AddKerberosLease(ctx context.Context, r *leaseapi.CreateKerberosLeaseRequest) (*leaseapi.CreateKerberosLeaseResponse, error) {
	id, paths, err := l.a.addLease(ctx, r.GetCredspecContents(), nil, "")
	if err != nil {
		return nil, err
	}
	return &leaseapi.CreateKerberosLeaseResponse{LeaseId: id, CreatedKerberosFilePaths: paths}, nil
}

func (l *leaseServer) AddNonDomainJoinedKerberosLease(ctx context.Context, r *leaseapi.CreateNonDomainJoinedKerberosLeaseRequest) (*leaseapi.CreateNonDomainJoinedKerberosLeaseResponse, error) {
	if r.GetUsername() == "" || r.GetPassword() == "" {
		return nil, status.Error(codes.InvalidArgument, "a non-domain-joined lease needs username and password")
	}
	id := &Identity{User: userAt(r.GetUsername(), r.GetDomain()), password: r.GetPassword()}
	lid, paths, err := l.a.addLease(ctx, r.GetCredspecContents(), id, r.GetDomain())
	if err != nil {
		return nil, err
	}
	return &leaseapi.CreateNonDomainJoinedKerberosLeaseResponse{LeaseId: lid, CreatedKerberosFilePaths: paths}, nil
}

func (l *leaseServer) RenewNonDomainJoinedKerberosLease(ctx context.Context, r *leaseapi.RenewNonDomainJoinedKerberosLeaseRequest) (*leaseapi.RenewNonDomainJoinedKerberosLeaseResponse, error) {
	user := userAt(r.GetUsername(), r.GetDomain())
	a := l.a
	a.mu.Lock()
	var keys, paths []string
	for _, le := range a.leases {
		if !strings.EqualFold(le.user, user) {
			continue
		}
		for _, acc := range le.accounts {
			acc.Identity = &Identity{User: user, password: r.GetPassword()}
			keys = append(keys, acc.statusKey())
			paths = append(paths, filepath.Dir(acc.CCache.Path))
		}
	}
	a.mu.Unlock()
	if len(keys) == 0 {
		return nil, status.Errorf(codes.NotFound, "no lease was made with %s", user)
	}
	for _, s := range a.Refresh(ctx, keys) {
		if !s.OK {
			return nil, status.Errorf(codes.Unavailable, "%s: %s", s.Account, s.LastError)
		}
	}
	return &leaseapi.RenewNonDomainJoinedKerberosLeaseResponse{RenewedKerberosFilePaths: paths}, nil
}

func (l *leaseServer) DeleteKerberosLease(_ context.Context, r *leaseapi.DeleteKerberosLeaseRequest) (*leaseapi.DeleteKerberosLeaseResponse, error) {
	a := l.a
	a.refreshing.Lock() // not while a refresh writes this lease's caches
	defer a.refreshing.Unlock()
	a.mu.Lock()
	le := a.leases[r.GetLeaseId()]
	delete(a.leases, r.GetLeaseId())
	if le != nil {
		for _, acc := range le.accounts {
			delete(a.status, acc.statusKey())
		}
	}
	a.mu.Unlock()
	if le == nil {
		return nil, status.Errorf(codes.NotFound, "no lease %q", r.GetLeaseId())
	}
	os.RemoveAll(filepath.Join(a.config().LeaseAPI.Directory, le.id))
	a.saveStatus()
	return &leaseapi.DeleteKerberosLeaseResponse{LeaseId: le.id, DeletedKerberosFilePaths: le.dirs}, nil
}

func userAt(user, domain string) string {
	if strings.ContainsAny(user, "@\\") || domain == "" {
		return user
	}
	return user + "@" + domain
}

// addLease makes a lease of a ticket cache per gMSA the specs name, under
// DIRECTORY/LEASE/ACCOUNT/krb5cc, read with id (nil: the agent's identity); it answers
// only once every cache is written, and keeps them fresh after.
func (a *Agent) addLease(ctx context.Context, specs []string, id *Identity, domain string) (string, []string, error) {
	cfg := a.config()
	if len(specs) == 0 || len(specs) > MaxSpecsPerLease {
		return "", nil, status.Errorf(codes.InvalidArgument, "give 1 to %d credential specs", MaxSpecsPerLease)
	}
	if domain != "" && !strings.EqualFold(domain, cfg.Domain) {
		return "", nil, status.Errorf(codes.InvalidArgument, "domain %s: this agent serves %s", domain, cfg.Domain)
	}
	var b [10]byte
	rand.Read(b[:])
	le := &lease{id: hex.EncodeToString(b[:]), domain: cfg.Domain}
	if id != nil {
		le.user = id.User
	}
	root := filepath.Join(cfg.LeaseAPI.Directory, le.id)
	seen := map[string]bool{}
	for i, text := range specs {
		spec, problems := credspec.Parse([]byte(text))
		for _, p := range problems {
			if p.Fatal {
				return "", nil, status.Errorf(codes.InvalidArgument, "credspec_contents[%d]: %s", i, p)
			}
		}
		if !strings.EqualFold(spec.DomainJoinConfig.DnsName, cfg.Domain) {
			return "", nil, status.Errorf(codes.InvalidArgument, "credspec_contents[%d]: domain %s: this agent serves %s", i, spec.DomainJoinConfig.DnsName, cfg.Domain)
		}
		name := spec.DomainJoinConfig.MachineAccountName
		if seen[strings.ToLower(name)] {
			continue
		}
		seen[strings.ToLower(name)] = true
		dir := filepath.Join(root, strings.TrimSuffix(name, "$"))
		o := cfg.LeaseAPI.Output
		o.Path = filepath.Join(dir, "krb5cc")
		le.accounts = append(le.accounts, &Account{Name: name, Identity: id, CCache: &CCacheOutput{Output: o}, lease: le.id})
		le.dirs = append(le.dirs, dir)
	}
	a.mu.Lock()
	full := len(a.leases) >= MaxLeases
	if !full {
		a.leases[le.id] = le
	}
	a.mu.Unlock()
	if full {
		return "", nil, status.Errorf(codes.ResourceExhausted, "%d leases held: delete some first", MaxLeases)
	}
	fail := func(err error) (string, []string, error) {
		a.mu.Lock()
		delete(a.leases, le.id)
		for _, acc := range le.accounts {
			delete(a.status, acc.statusKey())
		}
		a.mu.Unlock()
		os.RemoveAll(root)
		return "", nil, err
	}
	for _, d := range le.dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(status.Errorf(codes.Internal, "%v", err))
		}
		os.Chown(d, cfg.LeaseAPI.uid, cfg.LeaseAPI.gid)
	}
	var keys []string
	for _, acc := range le.accounts {
		keys = append(keys, acc.statusKey())
	}
	for _, s := range a.Refresh(ctx, keys) {
		if !s.OK {
			return fail(status.Errorf(codes.Unavailable, "%s: %s", s.Account, s.LastError))
		}
	}
	a.deps.Logger.Info("agent: lease made", "lease", le.id, "accounts", len(le.accounts), "user", le.user)
	return le.id, le.dirs, nil
}
