package ldapserver

// Direct BER encoding ([X.690] 8.1) of the hot responses, SearchResultEntry and
// SearchResultDone, without building a packet tree.

import (
	"gmsa/internal/directory"
	"gmsa/internal/tlv"
)

// encodeResult returns the LDAPMessage carrying an LDAPResult-shaped response without
// controls ([RFC 4511] 4.1.9): the same bytes as message(id, result(…)).
func encodeResult(id int64, app byte, code int, matched, diag string) []byte {
	body := tlv.AppendInt(make([]byte, 0, 16+len(matched)+len(diag)), 0x0a, int64(code))
	body = tlv.Append(body, 0x04, []byte(matched))
	body = tlv.Append(body, 0x04, []byte(diag))
	msg := tlv.AppendInt(make([]byte, 0, len(body)+16), 0x02, id)
	msg = tlv.Append(msg, 0x60|app, body) // [APPLICATION app] constructed
	return tlv.Append(make([]byte, 0, len(msg)+6), 0x30, msg)
}

// encodeEntry appends to dst the LDAPMessage carrying SearchResultEntry ([RFC 4511]
// 4.5.2). Sizes are computed first, so the message is written once, in place.
func encodeEntry(dst []byte, id int64, dn string, attrs []directory.Attr, typesOnly bool) []byte {
	setSize := func(a directory.Attr) int {
		n := 0
		if !typesOnly {
			for _, v := range a.Values {
				n += tlv.Size(len(v))
			}
		}
		return n
	}
	oneSize := func(a directory.Attr) int { return tlv.Size(len(a.Name)) + tlv.Size(setSize(a)) }
	list := 0
	for _, a := range attrs {
		list += tlv.Size(oneSize(a))
	}
	body := tlv.Size(len(dn)) + tlv.Size(list)
	var idBuf [12]byte
	idTLV := tlv.AppendInt(idBuf[:0], 0x02, id)
	msg := len(idTLV) + tlv.Size(body)

	dst = tlv.AppendLength(append(dst, 0x30), msg)
	dst = append(dst, idTLV...)
	dst = tlv.AppendLength(append(dst, 0x64), body) // [APPLICATION 4] constructed
	dst = tlv.AppendLength(append(dst, 0x04), len(dn))
	dst = append(dst, dn...)
	dst = tlv.AppendLength(append(dst, 0x30), list)
	for _, a := range attrs {
		dst = tlv.AppendLength(append(dst, 0x30), oneSize(a))
		dst = tlv.AppendLength(append(dst, 0x04), len(a.Name))
		dst = append(dst, a.Name...)
		dst = tlv.AppendLength(append(dst, 0x31), setSize(a)) // SET OF value
		if !typesOnly {
			for _, v := range a.Values {
				dst = tlv.AppendLength(append(dst, 0x04), len(v))
				dst = append(dst, v...)
			}
		}
	}
	return dst
}
