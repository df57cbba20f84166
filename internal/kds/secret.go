package kds

import (
	"fmt"
	"log/slog"
)

// SeedKey is a 64-byte MS-GKDI seed key (L0, L1 or L2). It never prints its value.
type SeedKey [64]byte

// Password is a 256-byte gMSA password (UTF-16LE, after post-processing). It never
// prints its value.
type Password [256]byte

const redacted = "[REDACTED]"

func (SeedKey) String() string                 { return redacted }
func (SeedKey) GoString() string               { return redacted }
func (SeedKey) LogValue() slog.Value           { return slog.StringValue(redacted) }
func (SeedKey) Format(f fmt.State, verb rune)  { fmt.Fprint(f, redacted) }
func (Password) String() string                { return redacted }
func (Password) GoString() string              { return redacted }
func (Password) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (Password) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }
