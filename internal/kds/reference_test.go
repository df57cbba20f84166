package kds

import (
	"crypto/hmac"
	"encoding/binary"
)

// referenceKDF is SP800-108 counter mode written from the definition with crypto/hmac,
// independent of the prepared-state implementation.
func referenceKDF(h Hash, key, label, context []byte, n int) []byte {
	var out []byte
	for i := uint32(1); len(out) < n; i++ {
		m := hmac.New(h.new, key)
		m.Write(binary.BigEndian.AppendUint32(nil, i))
		m.Write(label)
		m.Write([]byte{0})
		m.Write(context)
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(8*n)))
		out = m.Sum(out)
	}
	return out[:n]
}
