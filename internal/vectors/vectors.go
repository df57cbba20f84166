// Package vectors serves the published gMSA / MS-GKDI test vectors to the tests of the
// pure packages. public-vectors.json is a verbatim copy of the project's public vector
// file; each vector names its source (Samba, dpapi-ng, RFCs) in its "source" field.
// samba422-vectors.json holds values exported from a live Samba 4.22 DC by the interop
// test (test/interop, -export-vectors).
package vectors

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

//go:embed public-vectors.json
var publicJSON []byte

// Vector is one entry; Inputs and Expected keep the JSON shapes of the file.
type Vector struct {
	Name     string                     `json:"name"`
	Kind     string                     `json:"kind"`
	Inputs   map[string]json.RawMessage `json:"inputs"`
	Expected map[string]json.RawMessage `json:"expected"`
	Derived  map[string]json.RawMessage `json:"derived_by_script_not_in_source"`
}

// Public returns the vectors of the given kind from public-vectors.json.
func Public(kind string) []Vector {
	var f struct {
		Vectors []Vector `json:"vectors"`
	}
	if err := json.Unmarshal(publicJSON, &f); err != nil {
		panic(fmt.Sprintf("vectors: public-vectors.json: %v", err))
	}
	var out []Vector
	for _, v := range f.Vectors {
		if v.Kind == kind {
			out = append(out, v)
		}
	}
	return out
}

// Get decodes a field of m into dst.
func Get(m map[string]json.RawMessage, key string, dst any) error {
	raw, ok := m[key]
	if !ok {
		return fmt.Errorf("vectors: no field %q", key)
	}
	return json.Unmarshal(raw, dst)
}

// Hex decodes a hex string field of m; it panics on a malformed file.
func Hex(m map[string]json.RawMessage, key string) []byte {
	var s string
	if err := Get(m, key, &s); err != nil {
		panic(err)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("vectors: field %q: %v", key, err))
	}
	return b
}

// String returns a string field of m.
func String(m map[string]json.RawMessage, key string) string {
	var s string
	if err := Get(m, key, &s); err != nil {
		panic(err)
	}
	return s
}
