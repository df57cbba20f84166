package ldapserver

import (
	"errors"
	"fmt"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/tlv"
)

// maxBERDepth bounds nesting in a request.
const maxBERDepth = 100

// decodeBER parses one BER element that fills buf ([X.690] 8.1, definite lengths only)
// in a single pass. Primitive contents are slices of buf (ByteValue), integers and
// enumerations also get Value; constructed elements get Children. This is all the
// server reads of a request.
func decodeBER(buf []byte) (*ber.Packet, error) {
	var d decoder
	p, n, err := d.element(buf, 0)
	if err != nil {
		return nil, err
	}
	if n != len(buf) {
		return nil, fmt.Errorf("ber: %d bytes after the element", len(buf)-n)
	}
	return p, nil
}

// decoder hands out packets from slabs: a request's elements cost a few allocations,
// not one each.
type decoder struct {
	slab []ber.Packet
	ptrs []*ber.Packet
	n    int
}

// maxBERElements bounds the elements of one request, and so the memory its decoded
// form takes (a packet is ~60 times the two bytes of the smallest element).
const maxBERElements = 1 << 16

func (d *decoder) packet() *ber.Packet {
	d.n++
	if len(d.slab) == 0 {
		d.slab = make([]ber.Packet, 16)
	}
	p := &d.slab[0]
	d.slab = d.slab[1:]
	return p
}

// children returns room for n child pointers, carved from a shared slab.
func (d *decoder) children(n int) []*ber.Packet {
	if len(d.ptrs) < n {
		d.ptrs = make([]*ber.Packet, max(n, 32))
	}
	c := d.ptrs[:0:n]
	d.ptrs = d.ptrs[n:]
	return c
}

func (d *decoder) element(buf []byte, depth int) (*ber.Packet, int, error) {
	if depth > maxBERDepth {
		return nil, 0, errors.New("ber: nested too deeply")
	}
	id, pos, length, err := tlv.Header(buf)
	if err != nil {
		return nil, 0, err
	}
	content := buf[pos : pos+length]
	if d.n >= maxBERElements {
		return nil, 0, fmt.Errorf("ber: more than %d elements", maxBERElements)
	}
	p := d.packet()
	p.Identifier = ber.Identifier{ClassType: ber.Class(id & 0xc0), TagType: ber.Type(id & 0x20), Tag: ber.Tag(id & 0x1f)}
	if p.TagType == ber.TypeConstructed {
		count := 0
		for off := 0; off < len(content); count++ {
			_, cpos, clen, err := tlv.Header(content[off:])
			if err != nil {
				return nil, 0, err
			}
			off += cpos + clen
		}
		p.Children = d.children(count)
		for off := 0; off < len(content); {
			c, n, err := d.element(content[off:], depth+1)
			if err != nil {
				return nil, 0, err
			}
			p.Children = append(p.Children, c)
			off += n
		}
	} else {
		p.ByteValue = content
		if p.ClassType == ber.ClassUniversal && (p.Tag == ber.TagInteger || p.Tag == ber.TagEnumerated) {
			v, err := ber.ParseInt64(content)
			if err != nil {
				return nil, 0, err
			}
			p.Value = v
		}
	}
	return p, pos + length, nil
}
