// Package cli is the gmsa command line. Commands parse flags, call the pure packages
// and print tables or JSON; they hold no logic of their own beyond that.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gmsa/internal/adclient"
	"gmsa/internal/admin"
	"gmsa/internal/krbclient"
)

// Exit codes.
const (
	ExitFailure = 1 // the command could not do its work
	ExitUsage   = 2 // the command line or an input value is wrong
)

// usageError marks an error the user fixes by changing the command line or its input.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// asUsage marks err, if any, as a usage error.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// silentExit ends the command with a status and no message (its output said it all).
type silentExit int

func (s silentExit) Error() string { return "" }

// ExitCode maps an error returned by Run to the process exit code.
func ExitCode(err error) int {
	var u usageError
	var s silentExit
	switch {
	case errors.As(err, &u):
		return ExitUsage
	case errors.As(err, &s):
		return int(s)
	}
	return ExitFailure
}

// env is what commands may touch of the outside world, injected for tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	rand           io.Reader
	getenv         func(string) string
	output         string            // "table" or "json"
	data           string            // --data
	configFile     string            // --config: the server's YAML (its store section for local commands)
	store          storeFlags        // --store, --etcd-endpoints, --etcd-prefix
	cmd            *cobra.Command    // the command running
	remote         adclient.Options  // --server, --user, --ca-file …
	passwordFile   string            // --password-file: the bind password
	krb            krbclient.Options // --kerberos, --keytab, --principal, --ccache
	useKerberos    bool

	openAdminHook func(context.Context) (admin.Admin, error) // tests: another Admin
}

// Run executes the gmsa command line args.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, &env{stdin: os.Stdin, stdout: stdout, stderr: stderr, now: time.Now, rand: rand.Reader, getenv: os.Getenv})
}

func run(ctx context.Context, args []string, e *env) error {
	root := &cobra.Command{
		Use:           "gmsa",
		Short:         "Group Managed Service Accounts: KDS engine, DC-lite, host tools",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			e.cmd = cmd
			if e.output != "table" && e.output != "json" {
				return usagef("--output %q: want table or json", e.output)
			}
			return nil
		},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetArgs(args)
	root.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format: table or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })
	root.AddCommand(kdsCommand(e), blobCommand(e), keytabCommand(e), domainCommand(e), serverCommand(e),
		backupCommand(e), restoreCommand(e), compactCommand(e), indexCommand(e), accountCommand(e), groupCommand(e), ouCommand(e), computerCommand(e), userCommand(e), certCommand(e), credspecCommand(e), doctorCommand(e), agentCommand(e))
	err := root.ExecuteContext(ctx)
	if err != nil && (strings.HasPrefix(err.Error(), "unknown command") || strings.Contains(err.Error(), "accepts ") ||
		strings.HasPrefix(err.Error(), "required flag")) {
		return asUsage(err)
	}
	return err
}

// group returns a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("%s needs a subcommand: %s", cmd.CommandPath(), subNames(cmd))
		}}
	c.AddCommand(subs...)
	return c
}

func subNames(c *cobra.Command) string {
	var n []string
	for _, s := range c.Commands() {
		n = append(n, s.Name())
	}
	return strings.Join(n, ", ")
}

// writeJSON prints v as indented JSON.
func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned "label  value" rows; empty values are skipped.
func (e *env) table(rows [][2]string) {
	w := 0
	for _, r := range rows {
		w = max(w, len(r[0]))
	}
	for _, r := range rows {
		if r[1] != "" {
			fmt.Fprintf(e.stdout, "%-*s  %s\n", w, r[0], r[1])
		}
	}
}

// jsonIndent encodes v as indented JSON with a final newline.
func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

// remarshal converts v to dst through JSON.
func remarshal(v, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
