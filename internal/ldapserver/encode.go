package ldapserver

// Direct BER encoding ([X.690] 8.1) of the hot response, SearchResultEntry, without
// building a packet tree: a tag, a definite length, the contents.

func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendTLV(b []byte, tag byte, content []byte) []byte {
	return append(appendLength(append(b, tag), len(content)), content...)
}

func appendInt(b []byte, v int64) []byte {
	var tmp [9]byte
	n := 0
	for {
		tmp[8-n] = byte(v)
		n++
		v >>= 8
		if (v == 0 && tmp[9-n]&0x80 == 0) || (v == -1 && tmp[9-n]&0x80 != 0) {
			break
		}
	}
	return appendTLV(b, 0x02, tmp[9-n:])
}

// encodeResult returns the LDAPMessage carrying an LDAPResult-shaped response without
// controls ([RFC 4511] 4.1.9): the same bytes as message(id, result(…)).
func encodeResult(id int64, app byte, code int, matched, diag string) []byte {
	body := appendInt(make([]byte, 0, 16+len(matched)+len(diag)), int64(code))
	body[0] = 0x0a // ENUMERATED
	body = appendTLV(body, 0x04, []byte(matched))
	body = appendTLV(body, 0x04, []byte(diag))
	msg := appendInt(make([]byte, 0, len(body)+16), id)
	msg = appendTLV(msg, 0x60|app, body) // [APPLICATION app] constructed
	return appendTLV(make([]byte, 0, len(msg)+6), 0x30, msg)
}

// entryAttr is one attribute of an entry being encoded.
type entryAttr struct {
	name string
	vals [][]byte
}

// tlvSize is the encoded size of an element with n content bytes.
func tlvSize(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n < 0x100:
		return 3 + n
	case n < 0x10000:
		return 4 + n
	case n < 0x1000000:
		return 5 + n
	}
	return 6 + n
}

// encodeEntry appends to dst the LDAPMessage carrying SearchResultEntry ([RFC 4511]
// 4.5.2). Sizes are computed first, so the message is written once, in place.
func encodeEntry(dst []byte, id int64, dn string, attrs []entryAttr, typesOnly bool) []byte {
	setSize := func(a entryAttr) int {
		n := 0
		if !typesOnly {
			for _, v := range a.vals {
				n += tlvSize(len(v))
			}
		}
		return n
	}
	oneSize := func(a entryAttr) int { return tlvSize(len(a.name)) + tlvSize(setSize(a)) }
	list := 0
	for _, a := range attrs {
		list += tlvSize(oneSize(a))
	}
	body := tlvSize(len(dn)) + tlvSize(list)
	var idBuf [12]byte
	idTLV := appendInt(idBuf[:0], id)
	msg := len(idTLV) + tlvSize(body)

	dst = appendLength(append(dst, 0x30), msg)
	dst = append(dst, idTLV...)
	dst = appendLength(append(dst, 0x64), body) // [APPLICATION 4] constructed
	dst = appendLength(append(dst, 0x04), len(dn))
	dst = append(dst, dn...)
	dst = appendLength(append(dst, 0x30), list)
	for _, a := range attrs {
		dst = appendLength(append(dst, 0x30), oneSize(a))
		dst = appendLength(append(dst, 0x04), len(a.name))
		dst = append(dst, a.name...)
		dst = appendLength(append(dst, 0x31), setSize(a)) // SET OF value
		if !typesOnly {
			for _, v := range a.vals {
				dst = appendLength(append(dst, 0x04), len(v))
				dst = append(dst, v...)
			}
		}
	}
	return dst
}
