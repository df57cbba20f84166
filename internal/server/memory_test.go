package server

import (
	"context"
	"runtime/debug"
	"strings"
	"testing"

	"gmsa/internal/store/bolt"
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

// memory.read_cache sizes the embedded store's read cache; left out it is 64 MiB, and a
// negative size is a configuration error.
func TestReadCacheSetting(t *testing.T) {
	for size, want := range map[int64]int64{0: bolt.DefaultReadCache, 3 << 20: 3 << 20} {
		c := DefaultConfig()
		c.Data = t.TempDir()
		c.Memory.ReadCache = size
		st, release, err := OpenConfigured(context.Background(), c, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.(*bolt.Store).ReadCacheBytes(); got != want {
			t.Errorf("read_cache %d: a cache of %d bytes, want %d", size, got, want)
		}
		release()
	}
	c := DefaultConfig()
	c.Data = t.TempDir()
	c.Memory.ReadCache = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "memory.read_cache: -1 is negative") {
		t.Fatalf("a negative read cache: %v", err)
	}
}
