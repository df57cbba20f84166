package gss

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"gmsa/internal/krbkey"
)

// GSS context flags, as the initiator asks for them in the authenticator checksum
// ([RFC 4121] 4.1.1.1).
const (
	FlagDeleg    = 0x01
	FlagMutual   = 0x02
	FlagReplay   = 0x04
	FlagSequence = 0x08
	FlagConf     = 0x10
	FlagInteg    = 0x20
)

// Key usages of per-message tokens ([RFC 4121] 2).
const (
	usageAcceptorSeal  = 22
	usageAcceptorSign  = 23
	usageInitiatorSeal = 24
	usageInitiatorSign = 25
)

// Per-message token flags ([RFC 4121] 4.2.2).
const (
	flagSentByAcceptor = 0x01
	flagSealed         = 0x02
	flagAcceptorSubkey = 0x04
)

const headerSize = 16

// Errors of per-message tokens.
var (
	ErrBadToken    = errors.New("gss: defective per-message token")
	ErrBadMIC      = errors.New("gss: the token's checksum or encryption does not verify")
	ErrOutOfOrder  = errors.New("gss: the token's sequence number was already seen (replay or reordering)")
	ErrUnsupported = errors.New("gss: only aes128- and aes256-cts-hmac-sha1-96 context keys are supported")
)

// Context is an established security context. Wrap and MIC may run concurrently with
// Unwrap and VerifyMIC (one goroutine per direction), not with themselves.
type Context struct {
	initiator      bool
	acceptorSubkey bool
	flags          uint32 // what the initiator asked for
	sealOut        *krbkey.UsageKey
	sealIn         *krbkey.UsageKey
	signOut        *krbkey.UsageKey
	signIn         *krbkey.UsageKey
	sendSeq        uint64
	recvSeq        uint64
	rand           io.Reader
}

// newContext derives the per-message keys from the context key.
func newContext(initiator, acceptorSubkey bool, etype int32, key []byte, flags uint32, sendSeq, recvSeq uint64, rand io.Reader) (*Context, error) {
	if etype != krbkey.EtypeAES128CTSHMACSHA && etype != krbkey.EtypeAES256CTSHMACSHA {
		return nil, fmt.Errorf("%w (the context key is %s)", ErrUnsupported, krbkey.EtypeName(etype))
	}
	c := &Context{initiator: initiator, acceptorSubkey: acceptorSubkey, flags: flags, sendSeq: sendSeq, recvSeq: recvSeq, rand: rand}
	out, in := [2]uint32{usageInitiatorSeal, usageInitiatorSign}, [2]uint32{usageAcceptorSeal, usageAcceptorSign}
	if !initiator {
		out, in = in, out
	}
	var err error
	for _, k := range []struct {
		dst   **krbkey.UsageKey
		usage uint32
	}{{&c.sealOut, out[0]}, {&c.signOut, out[1]}, {&c.sealIn, in[0]}, {&c.signIn, in[1]}} {
		if *k.dst, err = krbkey.NewUsageKey(key, k.usage); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Flags are the GSS flags the initiator asked for.
func (c *Context) Flags() uint32 { return c.flags }

// header builds a per-message token header ([RFC 4121] 4.2.6).
func (c *Context) header(id [2]byte, sealed bool, ec, rrc uint16, seq uint64) [headerSize]byte {
	var h [headerSize]byte
	h[0], h[1] = id[0], id[1]
	if !c.initiator {
		h[2] |= flagSentByAcceptor
	}
	if sealed {
		h[2] |= flagSealed
	}
	if c.acceptorSubkey {
		h[2] |= flagAcceptorSubkey
	}
	if id == tokWrap {
		h[3] = 0xff
		binary.BigEndian.PutUint16(h[4:], ec)
		binary.BigEndian.PutUint16(h[6:], rrc)
	} else {
		h[3], h[4], h[5], h[6], h[7] = 0xff, 0xff, 0xff, 0xff, 0xff
	}
	binary.BigEndian.PutUint64(h[8:], seq)
	return h
}

var (
	tokWrap = [2]byte{0x05, 0x04}
	tokMIC  = [2]byte{0x04, 0x04}
)

// WrapOverhead is how many bytes Wrap adds to a message.
func WrapOverhead(seal bool) int {
	if seal {
		return headerSize + krbkey.ConfounderSize + headerSize + krbkey.ChecksumSize
	}
	return headerSize + krbkey.ChecksumSize
}

// Wrap protects msg in a wrap token ([RFC 4121] 4.2.6.2), sealed (encrypted and
// integrity-protected) or with integrity only, appending it to dst. The rotation count
// sent is 0, which every peer accepts.
func (c *Context) Wrap(dst, msg []byte, seal bool) ([]byte, error) {
	seq := c.sendSeq
	c.sendSeq++
	if seal {
		h := c.header(tokWrap, true, 0, 0, seq)
		var conf [krbkey.ConfounderSize]byte
		if _, err := io.ReadFull(c.rand, conf[:]); err != nil {
			return nil, fmt.Errorf("gss: confounder: %w", err)
		}
		plain := make([]byte, 0, len(msg)+headerSize)
		plain = append(append(plain, msg...), h[:]...)
		return c.sealOut.Encrypt(append(dst, h[:]...), conf[:], plain), nil
	}
	zero := c.header(tokWrap, false, 0, 0, seq)
	h := c.header(tokWrap, false, krbkey.ChecksumSize, 0, seq)
	dst = append(append(dst, h[:]...), msg...)
	return append(dst, c.sealOut.Checksum(msg, zero[:])...), nil
}

// Unwrap checks a wrap token from the peer and returns its message and whether it was
// sealed. The body is rotated back by the token's RRC (Heimdal and Windows send 12 and
// 28); the sequence number must increase.
func (c *Context) Unwrap(tok []byte) ([]byte, bool, error) {
	if len(tok) < headerSize || tok[0] != tokWrap[0] || tok[1] != tokWrap[1] || tok[3] != 0xff {
		return nil, false, fmt.Errorf("%w: not a wrap token", ErrBadToken)
	}
	flags := tok[2]
	if err := c.checkFlags(flags); err != nil {
		return nil, false, err
	}
	ec, rrc := int(binary.BigEndian.Uint16(tok[4:])), int(binary.BigEndian.Uint16(tok[6:]))
	seq := binary.BigEndian.Uint64(tok[8:])
	body := tok[headerSize:]
	if len(body) == 0 {
		return nil, false, fmt.Errorf("%w: empty wrap token", ErrBadToken)
	}
	if r := rrc % len(body); r != 0 {
		body = append(append(make([]byte, 0, len(body)), body[r:]...), body[:r]...)
	}
	var h [headerSize]byte
	copy(h[:], tok)
	h[6], h[7] = 0, 0 // RRC is not protected
	var msg []byte
	sealed := flags&flagSealed != 0
	if sealed {
		plain, err := c.sealIn.Decrypt(body)
		if err != nil {
			return nil, false, ErrBadMIC
		}
		if len(plain) < headerSize+ec || [headerSize]byte(plain[len(plain)-headerSize:]) != h {
			return nil, false, fmt.Errorf("%w: the encrypted header differs", ErrBadToken)
		}
		msg = plain[:len(plain)-headerSize-ec]
	} else {
		if ec != krbkey.ChecksumSize || len(body) < ec {
			return nil, false, fmt.Errorf("%w: checksum length %d", ErrBadToken, ec)
		}
		h[4], h[5] = 0, 0
		msg = body[:len(body)-ec]
		if !hmacEqual(c.sealIn.Checksum(msg, h[:]), body[len(body)-ec:]) {
			return nil, false, ErrBadMIC
		}
	}
	if err := c.sequence(seq); err != nil {
		return nil, false, err
	}
	return msg, sealed, nil
}

// MIC returns a MIC token over msg ([RFC 4121] 4.2.6.1).
func (c *Context) MIC(msg []byte) []byte {
	h := c.header(tokMIC, false, 0, 0, c.sendSeq)
	c.sendSeq++
	return append(h[:], c.signOut.Checksum(msg, h[:])...)
}

// VerifyMIC checks the peer's MIC token over msg.
func (c *Context) VerifyMIC(msg, tok []byte) error {
	if len(tok) != headerSize+krbkey.ChecksumSize || tok[0] != tokMIC[0] || tok[1] != tokMIC[1] ||
		tok[3] != 0xff || tok[4] != 0xff || tok[5] != 0xff || tok[6] != 0xff || tok[7] != 0xff {
		return fmt.Errorf("%w: not a MIC token", ErrBadToken)
	}
	if err := c.checkFlags(tok[2]); err != nil {
		return err
	}
	if !hmacEqual(c.signIn.Checksum(msg, tok[:headerSize]), tok[headerSize:]) {
		return ErrBadMIC
	}
	return c.sequence(binary.BigEndian.Uint64(tok[8:]))
}

// checkFlags refuses a token sent in our own direction or under another key.
func (c *Context) checkFlags(flags byte) error {
	if (flags&flagSentByAcceptor != 0) != c.initiator {
		return fmt.Errorf("%w: the token was sent in the wrong direction", ErrBadToken)
	}
	if (flags&flagAcceptorSubkey != 0) != c.acceptorSubkey {
		return fmt.Errorf("%w: the token's acceptor-subkey flag does not match the context", ErrBadToken)
	}
	return nil
}

func (c *Context) sequence(seq uint64) error {
	if seq < c.recvSeq {
		return ErrOutOfOrder
	}
	c.recvSeq = seq + 1
	return nil
}
