package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gmsa/internal/agent"
)

const defaultAgentConfig = "/etc/gmsa/agent.yaml"

func agentCommand(e *env) *cobra.Command {
	return group("agent", "Keep gMSA keytabs, ticket caches and keys fresh on this host (see docs/agent.md)",
		agentRunCommand(e), agentOnceCommand(e), agentStatusCommand(e), agentCheckCommand(e))
}

func agentLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func agentRunCommand(e *env) *cobra.Command {
	var cfgPath, level string
	c := &cobra.Command{
		Use:   "run [--config FILE]",
		Short: "Run the agent in the foreground (systemd Type=notify with watchdog; SIGHUP reloads the configuration; SIGTERM stops)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := agentLogger(e.stderr, level)
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}()
			return agent.Run(cmd.Context(), agent.RunOptions{ConfigPath: cfgPath, Reload: reload, Getenv: e.getenv},
				agent.Deps{Now: e.now, Logger: log})
		}}
	c.Flags().StringVar(&cfgPath, "config", defaultAgentConfig, "the agent's configuration (YAML)")
	c.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	return c
}

func agentOnceCommand(e *env) *cobra.Command {
	var cfgPath, level string
	var accounts []string
	c := &cobra.Command{
		Use:   "once [--config FILE] [--account NAME …]",
		Short: "Refresh every account (or those named) once and exit: status 0 when all succeeded, 1 otherwise (for cron, CI and container entrypoints)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := agentLogger(e.stderr, level)
			if err != nil {
				return err
			}
			cfg, err := agent.LoadConfig(cfgPath)
			if err != nil {
				return asUsage(err)
			}
			var keys []string
			for _, n := range accounts {
				keys = append(keys, agent.StatusKey(n))
			}
			st := agent.New(cfg, agent.Deps{Now: e.now, Logger: log}).Refresh(cmd.Context(), keys)
			return e.printAgentStatus(st)
		}}
	c.Flags().StringVar(&cfgPath, "config", defaultAgentConfig, "the agent's configuration (YAML)")
	c.Flags().StringVar(&level, "log-level", "warn", "debug, info, warn or error")
	c.Flags().StringArrayVar(&accounts, "account", nil, "refresh only this account (repeatable)")
	return c
}

func agentStatusCommand(e *env) *cobra.Command {
	var cfgPath, stateDir string
	c := &cobra.Command{
		Use:   "status [--config FILE | --state-dir DIR]",
		Short: "Show each account's last refresh, next refresh and password change, kvno, ticket expiry and last error (exit 1 when one is failing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stateDir == "" {
				cfg, err := agent.LoadConfig(cfgPath)
				if err != nil {
					return asUsage(err)
				}
				stateDir = cfg.StateDir
			}
			st, err := agent.ReadStatus(stateDir)
			if err != nil {
				return err
			}
			return e.printAgentStatus(st)
		}}
	c.Flags().StringVar(&cfgPath, "config", defaultAgentConfig, "the agent's configuration (YAML): its state_dir holds the status")
	c.Flags().StringVar(&stateDir, "state-dir", "", "read the status from this directory")
	return c
}

func agentCheckCommand(e *env) *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "check [--config FILE]",
		Short: "Validate the configuration, listing every problem at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(cfgPath)
			if err != nil {
				return asUsage(err)
			}
			fmt.Fprintf(e.stdout, "%s: %d accounts in %s\n", cfgPath, len(cfg.Accounts), cfg.Domain)
			return nil
		}}
	c.Flags().StringVar(&cfgPath, "config", defaultAgentConfig, "the agent's configuration (YAML)")
	return c
}

// printAgentStatus prints the accounts' statuses; exit status 1 when one failed.
func (e *env) printAgentStatus(st []agent.AccountStatus) error {
	failed := false
	for _, s := range st {
		failed = failed || !s.OK
	}
	if e.output == "json" {
		if err := e.writeJSON(st); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tSTATE\tKVNO\tLAST SUCCESS\tNEXT REFRESH\tPASSWORD CHANGES\tTICKET EXPIRES\tLAST ERROR")
		for _, s := range st {
			state := "ok"
			if !s.OK {
				state = "FAILING"
				if s.Cause != "" {
					state += " (" + s.Cause + ")"
				}
				if s.LastAttempt.IsZero() {
					state = "never run"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Account, state, s.KVNO, stamp(s.LastSuccess), stamp(s.NextRefresh),
				stamp(s.NextPassword), stamp(s.TicketExpires), s.LastError)
		}
		tw.Flush()
	}
	if failed {
		return silentExit(1)
	}
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
