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
	return d.decode(buf)
}

// decodeRequest is decodeBER for a connection's next request, in d's reused room: the
// packets of its previous request must no longer be in use. A request over
// reuseBelow bytes is decoded afresh instead, so that the connection does not hold its
// tree while it is served (a 1 MB filter's packets are garbage once it is parsed).
func (d *decoder) decodeRequest(buf []byte) (*ber.Packet, error) {
	if len(buf) > reuseBelow {
		return decodeBER(buf)
	}
	d.reset()
	return d.decode(buf)
}

const reuseBelow = 4 << 10

func (d *decoder) decode(buf []byte) (*ber.Packet, error) {
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
// not one each. A connection keeps one decoder, whose first keepPackets packets and
// keepPointers child pointers are reused by each request (a typical request fits, so
// it allocates none); larger requests take fresh slabs for the rest.
type decoder struct {
	slab []ber.Packet
	ptrs []*ber.Packet
	n    int

	room     []ber.Packet  // reused packets
	roomPtrs []*ber.Packet // reused child pointers
	nPtrs    int           // child pointers handed out
}

const (
	keepPackets  = 64
	keepPointers = 128
)

// reset makes the reused room available again, cleared so that it holds on to
// nothing of the previous request.
func (d *decoder) reset() {
	if d.room == nil {
		d.room, d.roomPtrs = make([]ber.Packet, keepPackets), make([]*ber.Packet, keepPointers)
	} else {
		clear(d.room[:min(d.n, keepPackets)])
		clear(d.roomPtrs[:min(d.nPtrs, keepPointers)])
	}
	d.slab, d.ptrs, d.n, d.nPtrs = d.room, d.roomPtrs, 0, 0
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
		d.nPtrs = keepPointers // the reused room is given up for this request
		d.ptrs = make([]*ber.Packet, max(n, 32))
	}
	c := d.ptrs[:0:n]
	d.ptrs = d.ptrs[n:]
	d.nPtrs += n
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
