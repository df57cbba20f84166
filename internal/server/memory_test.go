package server

import (
	"runtime/debug"
	"strings"
	"testing"
)

// memory.gc_percent defaults to 400, GOGC and GOMEMLIMIT in the environment win, and
// negative values are configuration errors.
func TestApplyMemory(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	none := func(string) string { return "" }

	ApplyMemory(MemoryConfig{}, none)
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("default GC percent %d", got)
	}
	ApplyMemory(MemoryConfig{GCPercent: 150, Limit: 1 << 30}, none)
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("GC percent %d, want 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("memory limit %d", got)
	}
	debug.SetMemoryLimit(1 << 40)
	env := map[string]string{"GOGC": "200", "GOMEMLIMIT": "2GiB"}
	ApplyMemory(MemoryConfig{GCPercent: 150, Limit: 1 << 30}, func(k string) string { return env[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC in the environment overridden: %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Fatalf("GOMEMLIMIT in the environment overridden: %d", got)
	}

	c := DefaultConfig()
	c.Data = t.TempDir()
	c.Memory.GCPercent, c.Memory.Limit = -1, -5
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "memory.gc_percent: -1 is negative") || !strings.Contains(err.Error(), "memory.limit: -5 is negative") {
		t.Fatalf("negative memory settings: %v", err)
	}
}
