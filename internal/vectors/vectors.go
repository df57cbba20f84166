// Package vectors serves the published gMSA / MS-GKDI test vectors to the tests of the
// pure packages. testdata/public-vectors.json is a verbatim copy of the project's public vector
// file; each vector names its source (Samba, dpapi-ng, RFCs) in its "source" field.
// testdata/samba422-vectors.json holds values exported from a live Samba 4.22 DC by the interop
// test (test/interop, -export-vectors).
package vectors

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

//go:embed testdata/public-vectors.json
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

//go:embed testdata/samba422-vectors.json
var sambaJSON []byte

// SambaAccount is one gMSA as a live Samba 4.22 DC served it over LDAPS.
type SambaAccount struct {
	Name         string `json:"name"`
	SID          string `json:"sid"`
	WhenCreated  string `json:"when_created"`
	IntervalDays int64  `json:"interval_days"`
	ReadAt       string `json:"read_at"` // the DC's clock just before the search
	KVNO         string `json:"kvno"`
	PasswordID   string `json:"password_id"`
	PreviousID   string `json:"previous_id"`
	Blob         string `json:"blob"`
}

// SambaExport is what the interop test exported: the forest's root keys as ldapsearch
// printed them, and the gMSAs after creation and 45 days later (after rotations).
type SambaExport struct {
	Source       string `json:"source"`
	RootKeysLDIF string `json:"root_keys_ldif"`
	Snapshots    []struct {
		Phase    string         `json:"phase"`
		Accounts []SambaAccount `json:"accounts"`
	} `json:"snapshots"`
}

// Samba returns the values exported from a live Samba 4.22 DC.
func Samba() SambaExport {
	var e SambaExport
	if err := json.Unmarshal(sambaJSON, &e); err != nil {
		panic(fmt.Sprintf("vectors: samba422-vectors.json: %v", err))
	}
	return e
}
