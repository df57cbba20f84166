//go:build race

package kds

// raceEnabled: the race detector makes sync.Pool drop items on purpose, so allocation
// counts are only asserted without it (scripts/test.sh runs the suite both ways).
const raceEnabled = true
