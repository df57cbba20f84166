package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var at = time.Date(2026, 11, 22, 4, 5, 6, 7, time.FixedZone("x", 3600))

func TestRecordIsOneJSONLine(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	l.Record(at, Warn, "gMSA password read denied", "principal", `EXAMPLE\bob "the" admin`, "remote", "127.0.0.1:5", "reason", "tab\there\x01", "odd")
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

func TestOpenFileBuffersAndCloses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(path, []byte("{\"earlier\":\"record\"}\n"), 0o644)
	l, err := OpenFile(path, func(err error) { t.Errorf("unexpected: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	l.Record(at, Info, "directory changed", "dn", "CN=x")
	for waited := time.Duration(0); ; waited += FlushEvery / 4 {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), "directory changed") {
			break
		}
		if waited > 25*FlushEvery { // generous: a loaded machine delays the ticker
			t.Fatalf("not written after %v", waited)
		}
		time.Sleep(FlushEvery / 4)
	}
	l.Record(at, Info, "last record")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), `{"earlier"`) || !strings.Contains(string(b), "last record") {
		t.Fatalf("append or final flush lost: %q", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
}

// Any strings make a line encoding/json accepts and decodes to the same text (invalid
// UTF-8 turns into U+FFFD, as encoding/json itself does).
func FuzzRecord(f *testing.F) {
	f.Add("msg", "key", "value")
	f.Add("\x00\"\\\u2028", "\xff", "ü\xc3")
	f.Fuzz(func(t *testing.T, msg, k, v string) {
		var buf bytes.Buffer
		New(&buf).Record(at, Info, msg, "k", k, "v", v)
		var m map[string]string
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%v: %q", err, buf.String())
		}
		valid := func(s string) string { return strings.ToValidUTF8(s, "\ufffd") }
		if m["msg"] != valid(msg) && utf8.ValidString(msg) || m["k"] != valid(k) && utf8.ValidString(k) || m["v"] != valid(v) && utf8.ValidString(v) {
			t.Fatalf("round trip: %q", buf.String())
		}
	})
}

// A failing sink is reported once, not silently dropped.
func TestWriteErrorReportedOnce(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full on this system")
	}
	full.Close()
	var errs []error
	l, err := OpenFile("/dev/full", func(err error) { errs = append(errs, err) })
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 { // more than the buffer holds
		l.Record(at, Info, "gMSA password read", "account", strings.Repeat("x", 64))
	}
	l.Close()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no space left") {
		t.Fatalf("errors reported: %v", errs)
	}
}
