package doctor

import (
	"testing"

	"gmsa/internal/adclient"
)

// FuzzParseGeneralizedTime: membership times as a DC (or anything posing as one) sends
// them give a time or an error, never a panic.
func FuzzParseGeneralizedTime(f *testing.F) {
	f.Add("20261204151900.0Z")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		adclient.ParseGeneralizedTime(s)
	})
}
