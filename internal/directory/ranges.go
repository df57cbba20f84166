package directory

import (
	"strconv"
	"strings"
)

// Range retrieval ([MS-ADTS] 3.1.1.3.1.3.3): a client asks for "member;range=0-*" (or
// "low-high") and gets the values from low on, at most MaxValRange of them, under the
// name "member;range=low-last", or "member;range=low-*" when they reach the last value;
// it asks again from last+1 for the rest. Without the option an attribute comes whole.

// MaxValRange is how many values one ranged read returns (AD's MaxValRange).
const MaxValRange = 1500

// linked are the link attributes held here (forward and back links), whose ranged
// reads past the last value are an error unless the no-error control is sent.
var linked = map[string]bool{"member": true, "memberof": true, "masteredby": true, "msds-masteredby": true, "msds-isdomainfor": true}

// valueRange is a requested range of values: from low to high (-1: to the end).
type valueRange struct{ low, high int }

// parseRange splits "attr;range=low-high" into the attribute and the range; any other
// name is returned as it is.
func parseRange(name string) (string, valueRange, bool) {
	attr, opt, ok := strings.Cut(name, ";")
	if !ok || len(opt) < 6 || !strings.EqualFold(opt[:6], "range=") {
		return name, valueRange{}, false
	}
	lo, hi, ok := strings.Cut(opt[6:], "-")
	low, err := strconv.Atoi(lo)
	if !ok || err != nil || low < 0 {
		return name, valueRange{}, false
	}
	r := valueRange{low: low, high: -1}
	if hi != "*" {
		if r.high, err = strconv.Atoi(hi); err != nil || r.high < low {
			return name, valueRange{}, false
		}
	}
	return attr, r, true
}

// apply cuts vals to the range and names what it returns.
func (r valueRange) apply(attr string, vals [][]byte) ([][]byte, string) {
	if r.low >= len(vals) {
		return nil, attr
	}
	end := len(vals) - 1
	if r.high >= 0 {
		end = min(end, r.high)
	}
	end = min(end, r.low+MaxValRange-1)
	last := strconv.Itoa(end)
	if end == len(vals)-1 {
		last = "*"
	}
	return vals[r.low : end+1], attr + ";range=" + strconv.Itoa(r.low) + "-" + last
}
