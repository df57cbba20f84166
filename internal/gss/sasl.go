package gss

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Security layers of the SASL GSSAPI mechanism ([RFC 4752] 3.3).
const (
	LayerNone            = 0x01
	LayerIntegrity       = 0x02
	LayerConfidentiality = 0x04
)

// MaxBuffer is the largest max-buffer the 3-byte field carries.
const MaxBuffer = 0xffffff

// LayerOffer is the server's security-layer message: the layers it supports and the
// largest buffer it receives.
func LayerOffer(layers byte, maxBuf uint32) []byte {
	return []byte{layers, byte(maxBuf >> 16), byte(maxBuf >> 8), byte(maxBuf)}
}

// ParseLayerOffer reads the server's message; Cyrus refuses any length but 4.
func ParseLayerOffer(b []byte) (layers byte, maxBuf uint32, err error) {
	if len(b) != 4 {
		return 0, 0, fmt.Errorf("%w: the security layer offer has %d bytes, not 4", ErrMalformed, len(b))
	}
	return b[0], uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

// LayerChoice is the client's answer: one layer, its largest buffer and an
// authorization identity (empty: the authenticated one).
func LayerChoice(layer byte, maxBuf uint32, authzid string) []byte {
	return append(LayerOffer(layer, maxBuf), authzid...)
}

// ParseLayerChoice reads the client's answer.
func ParseLayerChoice(b []byte) (layer byte, maxBuf uint32, authzid string, err error) {
	if len(b) < 4 {
		return 0, 0, "", fmt.Errorf("%w: the security layer choice has %d bytes", ErrMalformed, len(b))
	}
	return b[0], uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), string(b[4:]), nil
}

// Layer is a SASL security layer over a connection ([RFC 4422] 3.7): every buffer each
// way is a 4-byte big-endian length and a wrap token. Reads reassemble what the peer
// split; writes split to the peer's maximum. Reads and writes may run concurrently
// with each other.
type Layer struct {
	r       io.Reader // the connection's reader (it may hold bytes read ahead)
	w       io.Writer
	ctx     *Context
	seal    bool
	sendMax int // the peer's max buffer: largest wrap token we send
	recvMax int // ours: largest wrap token we accept
	plain   []byte
	frame   []byte
	out     []byte
}

// ErrFrameTooLarge is a peer's buffer over the size we announced.
var ErrFrameTooLarge = errors.New("gss: SASL buffer larger than the negotiated maximum")

// NewLayer installs the layer on a connection read through r (a buffered reader may
// hold the first bytes of the first buffer already) and written through w.
func NewLayer(r io.Reader, w io.Writer, ctx *Context, seal bool, sendMax, recvMax int) (*Layer, error) {
	if sendMax > 1<<20 {
		sendMax = 1 << 20 // larger tokens only cost memory
	}
	if sendMax <= WrapOverhead(seal) {
		return nil, fmt.Errorf("gss: the peer's maximum buffer (%d bytes) cannot carry a wrap token", sendMax)
	}
	return &Layer{r: r, w: w, ctx: ctx, seal: seal, sendMax: sendMax, recvMax: recvMax}, nil
}

// Read returns unwrapped bytes, reading and checking the next buffer when none are left.
func (c *Layer) Read(p []byte) (int, error) {
	for len(c.plain) == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > c.recvMax {
			return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, n, c.recvMax)
		}
		if cap(c.frame) < n {
			c.frame = make([]byte, n)
		}
		c.frame = c.frame[:n]
		if _, err := io.ReadFull(c.r, c.frame); err != nil {
			return 0, noEOF(err)
		}
		msg, sealed, err := c.ctx.Unwrap(c.frame)
		if err != nil {
			return 0, err
		}
		if sealed != c.seal {
			return 0, fmt.Errorf("%w: the layer negotiated is %s, the token is not", ErrBadToken, map[bool]string{true: "confidentiality", false: "integrity"}[c.seal])
		}
		c.plain = msg
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Write wraps p in as many buffers as the peer's maximum needs, written at once.
func (c *Layer) Write(p []byte) (int, error) {
	chunk := c.sendMax - WrapOverhead(c.seal)
	c.out = c.out[:0]
	for rest := p; len(rest) > 0; {
		n := min(len(rest), chunk)
		at := len(c.out)
		c.out = append(c.out, 0, 0, 0, 0)
		var err error
		if c.out, err = c.ctx.Wrap(c.out, rest[:n], c.seal); err != nil {
			return 0, err
		}
		binary.BigEndian.PutUint32(c.out[at:], uint32(len(c.out)-at-4))
		rest = rest[n:]
	}
	if _, err := c.w.Write(c.out); err != nil {
		return 0, err
	}
	if cap(c.out) > 256<<10 {
		c.out = nil
	}
	return len(p), nil
}
