// Command gmsa is the group Managed Service Account toolkit: offline KDS tools, and
// (as they land) the DC-lite server, the host agent and admin commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"gmsa/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "gmsa:", msg)
		}
		os.Exit(cli.ExitCode(err))
	}
}
