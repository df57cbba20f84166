package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

var at = time.Date(2026, 11, 22, 4, 5, 6, 7, time.FixedZone("x", 3600))

// syncBuf is a bytes.Buffer the writer goroutine and the test share.
type syncBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes atomic.Int64
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.writes.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRecordIsOneJSONLine(t *testing.T) {
	buf := &syncBuf{}
	l := New(buf, Options{})
	defer l.Close()
	l.Record(at, Warn, "gMSA password read denied", "principal", `EXAMPLE\bob "the" admin`, "remote", "127.0.0.1:5", "reason", "tab\there\x01", "odd")
	if err := l.Barrier(); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("not one line: %q", line)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	want := map[string]string{"at": "2026-11-22T03:05:06.000000007Z", "level": "WARN", "msg": "gMSA password read denied",
		"principal": `EXAMPLE\bob "the" admin`, "remote": "127.0.0.1:5", "reason": "tab\there\x01", "odd": ""}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if !strings.HasPrefix(line, `{"at":"2026-11-22T03:05:06.000000007Z","level":"WARN","msg":"gMSA password read denied","principal":`) {
		t.Errorf("field order: %s", line)
	}
}

// Barrier returns only once every record queued before it is written; concurrent
// records share writes (group commit).
func TestBarrierGroupCommits(t *testing.T) {
	buf := &syncBuf{}
	l := New(buf, Options{})
	defer l.Close()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := fmt.Sprintf("g%02d-%03d", g, i)
				l.Record(at, Info, "gMSA password read", "n", key)
				if err := l.Barrier(); err != nil {
					t.Error(err)
					return
				}
				if !strings.Contains(buf.String(), key) {
					t.Errorf("barrier returned before %s was written", key)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 32*200 {
		t.Fatalf("%d records, want %d", n, 32*200)
	}
	if w := buf.writes.Load(); w >= 32*200 {
		t.Fatalf("%d writes for %d records: no group commit", w, 32*200)
	}
	t.Logf("%d records in %d writes", 32*200, buf.writes.Load())
}

func TestOpenFileAppendsAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(path, []byte("{\"earlier\":\"record\"}\n"), 0o644)
	l, err := OpenFile(path, Options{Fsync: true, OnError: func(err error) { t.Errorf("unexpected: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(at, Info, "directory changed", "dn", "CN=x")
	if err := l.Barrier(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "directory changed") || !strings.HasPrefix(string(b), `{"earlier"`) {
		t.Fatalf("not appended before the barrier returned: %q", b)
	}
	// logrotate moves the file away; SIGHUP's Reopen starts a new one at the path.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Record(at, Info, "before reopen")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Record(at, Info, "after reopen")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "before reopen") || !strings.Contains(string(cur), "after reopen") || strings.Contains(string(cur), "before") {
		t.Fatalf("rotation: old %q, new %q", old, cur)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
}

// A record a crash tore is cut off when the log is opened again, and the cut recorded:
// every line stays whole JSON. Whole files are left as they are.
func TestOpenFileCutsATornRecord(t *testing.T) {
	dir := t.TempDir()
	whole := "{\"a\":1}\n{\"b\":2}\n"
	for name, c := range map[string]struct{ before, kept string }{
		"torn":       {whole + `{"msg":"gMSA password re`, whole},
		"whole":      {whole, whole},
		"only torn":  {`{"msg":"x`, ""},
		"long torn":  {whole + strings.Repeat("x", 200<<10), whole},
		"empty file": {"", ""},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(path, []byte(c.before), 0o600)
		l, err := OpenFile(path, Options{Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		l.Record(at, Info, "after")
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		rest, ok := strings.CutPrefix(string(b), c.kept)
		cut := strings.Contains(rest, "torn by a crash")
		if !ok || cut != (c.before != c.kept) || !strings.HasSuffix(rest, "\n") {
			t.Fatalf("%s: %q", name, b)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				t.Fatalf("%s: line %q", name, line)
			}
		}
	}
}

// Any strings make a line encoding/json accepts and decodes to the same text (invalid
// UTF-8 turns into U+FFFD, as encoding/json itself does; long values are cut).
func FuzzRecord(f *testing.F) {
	f.Add("msg", "key", "value")
	f.Add("\x00\"\\\u2028", "\xff", "ü\xc3")
	f.Add("m", strings.Repeat("é", 200), strings.Repeat("x", 300))
	f.Fuzz(func(t *testing.T, msg, k, v string) {
		b := appendRecord(nil, at, Info, msg, []string{"k", k, "v", v})
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%v: %q", err, b)
		}
		valid := func(s string) string {
			s = strings.ToValidUTF8(s, "\ufffd")
			if len(s) > MaxValue {
				return ""
			}
			return s
		}
		for key, in := range map[string]string{"msg": msg, "k": k, "v": v} {
			if len(in) > MaxValue {
				if !strings.HasSuffix(m[key], "…") || len(m[key]) > 3*MaxValue+8 {
					t.Fatalf("long %s not cut: %d bytes", key, len(m[key]))
				}
				continue
			}
			if utf8.ValidString(in) && m[key] != valid(in) {
				t.Fatalf("round trip of %s: %q", key, b)
			}
		}
	})
}

// A failing sink is reported once per run of failures, and fails the barrier: no
// operation is acknowledged whose record was lost.
// A file another process appends to too (Shared): nothing is cut, not even an
// unfinished last line, which is ended so that the new record starts a line of its own.
func TestSharedOpenCutsNothing(t *testing.T) {
	dir := t.TempDir()
	for name, before := range map[string]string{"unfinished": "{\"a\":1}\n{\"msg\":\"in flight", "whole": "{\"a\":1}\n", "empty": ""} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(before), 0o600)
		l, err := OpenFile(path, Options{Shared: true})
		if err != nil {
			t.Fatal(err)
		}
		l.Record(at, Info, "after")
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		rest, ok := strings.CutPrefix(string(b), before)
		if before != "" && !strings.HasSuffix(before, "\n") {
			rest, ok = strings.CutPrefix(rest, "\n")
		}
		if !ok || !strings.HasPrefix(rest, `{"at":`) || strings.Count(rest, "\n") != 1 || strings.Contains(rest, "torn") {
			t.Fatalf("%s: %q", name, b)
		}
	}
}

func TestWriteErrorFailsBarrier(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("this test needs /dev/full: %v", err)
	}
	full.Close()
	var errs atomic.Int64
	l, err := OpenFile("/dev/full", Options{OnError: func(err error) {
		if strings.Contains(err.Error(), "no space left") {
			errs.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		l.Record(at, Info, "gMSA password read", "account", strings.Repeat("x", 64))
		if err := l.Barrier(); err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("barrier after a failed write: %v", err)
		}
	}
	l.Close()
	if errs.Load() != 1 {
		t.Fatalf("%d errors reported, want 1", errs.Load())
	}
}

// A source that fails again and again gets Burst records per window and one summary.
func TestNoisySourcesAreAggregated(t *testing.T) {
	buf := &syncBuf{}
	now := at
	var mu sync.Mutex
	l := New(buf, Options{Burst: 3, Window: time.Hour, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	for range 1000 {
		l.RecordNoisy("10.0.0.1", at, Warn, "authentication failed", "name", strings.Repeat("n", 5000))
	}
	l.RecordNoisy("10.0.0.2", at, Warn, "authentication failed", "name", "other")
	l.Close() // ends the windows: summaries are written
	out := buf.String()
	if n := strings.Count(out, `"msg":"authentication failed"`); n != 4 {
		t.Fatalf("%d failure records, want 3 + 1:\n%s", n, out)
	}
	if !strings.Contains(out, `"msg":"records suppressed","source":"10.0.0.1","count":"997"`) {
		t.Fatalf("no summary:\n%s", out)
	}
	if len(out) > 4*(3*MaxValue+200)+600 {
		t.Fatalf("%d bytes for 1001 failures", len(out))
	}
}
