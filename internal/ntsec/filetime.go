package ntsec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FileTime is a Windows FILETIME / NTTIME: 100-nanosecond intervals since
// 1601-01-01 UTC ([MS-DTYP] 2.3.3). Durations in the same unit are plain uint64.
type FileTime uint64

// Ticks per unit of time in FILETIME's 100 ns resolution.
const (
	TicksPerSecond = 10_000_000
	TicksPerMinute = 60 * TicksPerSecond
	TicksPerHour   = 60 * TicksPerMinute
	TicksPerDay    = 24 * TicksPerHour
)

// epochDelta is the number of seconds between 1601-01-01 and 1970-01-01.
const epochDelta = 11_644_473_600

// FileTimeFromTime converts t; times before 1601 become 0.
func FileTimeFromTime(t time.Time) FileTime {
	s := t.Unix() + epochDelta
	if s < 0 {
		return 0
	}
	return FileTime(uint64(s)*TicksPerSecond + uint64(t.Nanosecond())/100)
}

// Time converts f to a UTC time.Time. Values beyond year 2262's time.Time limits are
// representable as FILETIMEs but saturate here.
func (f FileTime) Time() time.Time {
	sec := int64(uint64(f)/TicksPerSecond) - epochDelta
	nsec := int64(uint64(f)%TicksPerSecond) * 100
	return time.Unix(sec, nsec).UTC()
}

// String renders f as RFC 3339 with the raw value, e.g. "2024-02-15T10:00:00Z (133524...)".
func (f FileTime) String() string {
	return f.Time().Format(time.RFC3339Nano) + " (" + strconv.FormatUint(uint64(f), 10) + ")"
}

// ParseFileTime accepts either a FILETIME integer or an RFC 3339 time.
func ParseFileTime(s string) (FileTime, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return FileTime(n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("ntsec: time %q: want RFC 3339 (2024-01-02T15:04:05Z) or a FILETIME integer", s)
	}
	if t.Unix()+epochDelta < 0 {
		return 0, fmt.Errorf("ntsec: time %q is before 1601-01-01, which FILETIME cannot represent", s)
	}
	return FileTimeFromTime(t), nil
}

// FormatTicks renders an interval in 100 ns units as a readable duration ("29d 23h 12m 7s").
func FormatTicks(ticks uint64) string {
	d := ticks / TicksPerDay
	rest := ticks % TicksPerDay
	h, m := rest/TicksPerHour, (rest%TicksPerHour)/TicksPerMinute
	s := float64(rest%TicksPerMinute) / TicksPerSecond
	var b strings.Builder
	if d > 0 {
		fmt.Fprintf(&b, "%dd ", d)
	}
	fmt.Fprintf(&b, "%dh %dm %ss", h, m, strconv.FormatFloat(s, 'f', -1, 64))
	return b.String()
}
