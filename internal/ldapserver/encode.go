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

// encodeEntry returns the LDAPMessage carrying SearchResultEntry ([RFC 4511] 4.5.2).
func encodeEntry(id int64, dn string, attrs []entryAttr, typesOnly bool) []byte {
	var list, one, set []byte
	for _, a := range attrs {
		set = set[:0]
		if !typesOnly {
			for _, v := range a.vals {
				set = appendTLV(set, 0x04, v)
			}
		}
		one = appendTLV(one[:0], 0x04, []byte(a.name))
		one = appendTLV(one, 0x31, set) // SET OF value
		list = appendTLV(list, 0x30, one)
	}
	body := appendTLV(nil, 0x04, []byte(dn))
	body = appendTLV(body, 0x30, list)
	msg := appendInt(nil, id)
	msg = appendTLV(msg, 0x64, body) // [APPLICATION 4] constructed
	return appendTLV(make([]byte, 0, len(msg)+6), 0x30, msg)
}
