package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Each kind of hook does what it says: a signal reaches the process of a pid file, a
// unit reload runs systemctl reload-or-restart UNIT, a failing command says why.
func TestHooks(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	child := exec.Command("/bin/sh", "-c", `trap 'echo HUP >> `+got+`; exit 0' HUP; echo ready >> `+got+`; while :; do sleep 0.05; done`)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(got); strings.Contains(string(b), "ready") {
			break
		}
		if i == 200 {
			t.Fatal("the child did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pidFile := filepath.Join(dir, "app.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(child.Process.Pid)+"\n"), 0o644)
	systemctl := filepath.Join(dir, "systemctl")
	os.WriteFile(systemctl, []byte("#!/bin/sh\necho \"$@\" >> "+filepath.Join(dir, "systemctl.log")+"\n"), 0o755)
	a := New(&Config{StateDir: dir}, Deps{SystemctlPath: systemctl})

	if err := a.runHook(Hook{Signal: "hup", PIDFile: pidFile}, "web$", 2, nil); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if b, _ := os.ReadFile(got); !strings.Contains(string(b), "HUP") {
		t.Fatalf("the signal did not arrive: %q", b)
	}
	if err := a.runHook(Hook{ReloadUnit: "nginx.service"}, "web$", 2, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "systemctl.log")); strings.TrimSpace(string(b)) != "reload-or-restart -- nginx.service" {
		t.Fatalf("systemctl ran with %q", b)
	}
	err := a.runHook(Hook{Command: []string{"/bin/sh", "-c", "echo first; echo 'cannot reload' >&2; exit 3"}}, "web$", 2, []string{"/x"})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "cannot reload") {
		t.Fatalf("a failing command: %v", err)
	}
	if err := a.runHook(Hook{Signal: "HUP", PIDFile: filepath.Join(dir, "none.pid")}, "web$", 2, nil); err == nil {
		t.Fatal("a missing pid file was not an error")
	}
	if err := a.runHook(Hook{Command: []string{"/bin/sleep", "5"}, Timeout: Duration(100 * time.Millisecond)}, "web$", 2, nil); err == nil {
		t.Fatal("a hook past its timeout was not stopped")
	}
}
