package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runHook runs one hook after an account's outputs changed: a command (with
// GMSA_ACCOUNT, GMSA_KVNO and GMSA_CHANGED, the changed paths separated by spaces, in
// its environment), a signal to the process in a pid file, or a unit reload.
func (a *Agent) runHook(h Hook, sam string, kvno uint32, changed []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout.or(30*time.Second))
	defer cancel()
	switch {
	case len(h.Command) > 0:
		cmd := exec.CommandContext(ctx, h.Command[0], h.Command[1:]...)
		cmd.Env = append(os.Environ(), "GMSA_ACCOUNT="+sam, "GMSA_KVNO="+strconv.FormatUint(uint64(kvno), 10), "GMSA_CHANGED="+strings.Join(changed, " "))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %v: %s", h.Command[0], err, tail(out.String()))
		}
	case h.PIDFile != "":
		b, err := os.ReadFile(h.PIDFile)
		if err != nil {
			return fmt.Errorf("signal %s: %w", h.Signal, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			return fmt.Errorf("signal %s: %s holds no process id", h.Signal, h.PIDFile)
		}
		if err := syscall.Kill(pid, signals[strings.TrimPrefix(strings.ToUpper(h.Signal), "SIG")]); err != nil {
			return fmt.Errorf("signal %s to %d (%s): %w", h.Signal, pid, h.PIDFile, err)
		}
	case h.ReloadUnit != "":
		out, err := exec.CommandContext(ctx, a.deps.SystemctlPath, "reload-or-restart", "--", h.ReloadUnit).CombinedOutput()
		if err != nil {
			return fmt.Errorf("systemctl reload-or-restart %s: %v: %s", h.ReloadUnit, err, tail(string(out)))
		}
	}
	return nil
}

// tail is the last line of a hook's output, for the status.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
