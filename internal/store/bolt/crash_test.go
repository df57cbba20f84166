package bolt

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gmsa/internal/store"
)

func TestMain(m *testing.M) {
	if path := os.Getenv("GMSA_CRASH_DB"); path != "" {
		crashChild(path)
	}
	os.Exit(m.Run())
}

// crashChild is the writer the crash test kills: it commits objects (each with an
// index entry in the same batch) and prints every key once Apply has returned.
func crashChild(path string) {
	s, err := Open(path, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		k := fmt.Sprintf("obj/%s-%06d", os.Getenv("GMSA_CRASH_RUN"), i)
		v := []byte(strings.Repeat("x", 100+i%900))
		if _, err := s.Apply(context.Background(), store.Create(k, v), store.Create("idx/"+k, []byte(k))); err != nil {
			fmt.Println("apply:", err)
			os.Exit(1)
		}
		fmt.Println(k)
	}
}

// A child writing objects is killed with SIGKILL at random points; on reopen every
// object it reported committed is there with its index entry, and the file opens cleanly.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	var committed []string
	for run := range 6 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "GMSA_CRASH_DB="+path, fmt.Sprintf("GMSA_CRASH_RUN=%d", run))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		killAfter := 20 + rand.IntN(200)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "obj/") {
				t.Fatalf("child: %s", line)
			}
			committed = append(committed, line)
			if n++; n == killAfter {
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // land inside a later commit
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("run %d: reopen after SIGKILL: %v", run, err)
		}
		for _, k := range committed {
			if _, err := s.Get(context.Background(), k); err != nil {
				t.Fatalf("run %d: committed %s lost: %v", run, k, err)
			}
			if _, err := s.Get(context.Background(), "idx/"+k); err != nil {
				t.Fatalf("run %d: index of %s lost: %v", run, k, err)
			}
		}
		objs, _ := s.List(context.Background(), "obj/")
		idx, _ := s.List(context.Background(), "idx/")
		if len(objs) != len(idx) {
			t.Fatalf("run %d: %d objects but %d index entries: a batch was torn", run, len(objs), len(idx))
		}
		s.Close()
	}
	t.Logf("%d committed objects survived 6 SIGKILLs", len(committed))
}
