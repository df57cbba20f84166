package directory

import (
	"encoding/json"
	"testing"
)

func BenchmarkZZDecode(b *testing.B) {
	d, _ := lab(b)
	u := must(d.NewUser(ctx, sys, UserOptions{Name: "sample", Password: "Sample-Pass-123!"}))
	rec := must(d.st.Get(ctx, objKey(u.GUID))).Value
	b.ReportAllocs()
	for b.Loop() {
		var o Object
		if err := json.Unmarshal(rec, &o); err != nil {
			b.Fatal(err)
		}
	}
}
