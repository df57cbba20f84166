package kds

import (
	"encoding"
	"encoding/binary"
	"hash"
	"sync"
)

// prf is HMAC under one key with the inner and outer hash states precomputed, so each
// evaluation costs only the message and final blocks (RFC 2104 §4, "precomputations").
type prf struct {
	h            Hash
	inner, outer [maxState]byte
	n            int // length of the marshaled states
}

// maxState bounds a marshaled SHA-1/SHA-2 state (SHA-512: 4+64+128+8 = 204 bytes).
const maxState = 208

// scratch holds the hash objects and buffers one evaluation needs; pooled per hash so
// that derivations allocate nothing.
type scratch struct {
	inner, outer hash.Hash
	pad          [128]byte
	sum          [64]byte
	ctr, bits    [4]byte
	zero         [1]byte
	ctx          [28]byte
	state        []byte
	p            prf // the PRF of an uncached step
}

var scratchPools [SHA512 + 1]sync.Pool

func getScratch(h Hash) *scratch {
	if s, ok := scratchPools[h].Get().(*scratch); ok {
		return s
	}
	return &scratch{inner: h.new(), outer: h.new(), state: make([]byte, 0, maxState)}
}

func putScratch(h Hash, s *scratch) { scratchPools[h].Put(s) }

// prepare absorbs key⊕ipad and key⊕opad and saves both states in p.
func (s *scratch) prepare(h Hash, key []byte, p *prf) {
	p.h = h
	bs := h.blockSize()
	if len(key) > bs { // RFC 2104: keys longer than a block are hashed first
		s.inner.Reset()
		s.inner.Write(key)
		key = s.inner.Sum(s.sum[:0])
	}
	for i, c := range [2]byte{0x36, 0x5c} {
		pad := s.pad[:bs]
		clear(pad)
		copy(pad, key)
		for j := range pad {
			pad[j] ^= c
		}
		hh := s.inner
		if i == 1 {
			hh = s.outer
		}
		hh.Reset()
		hh.Write(pad)
		st, _ := hh.(encoding.BinaryAppender).AppendBinary(s.state[:0])
		if i == 0 {
			p.n = copy(p.inner[:], st)
		} else {
			copy(p.outer[:], st)
		}
	}
}

// kdf fills out with SP800-108 counter-mode output under p ([MS-GKDI] 3.1.4.1.1,
// gmsa-algorithm.md §3): T(i) = HMAC(K, BE32(i) ‖ label ‖ 0x00 ‖ context ‖ BE32(8·L)).
func (s *scratch) kdf(p *prf, label, context, out []byte) { s.kdfParts(p, label, context, nil, out) }

// kdfParts is kdf with the context given in two pieces, context ‖ extra.
func (s *scratch) kdfParts(p *prf, label, context, extra, out []byte) {
	binary.BigEndian.PutUint32(s.bits[:], uint32(8*len(out)))
	size := p.h.Size()
	for i, off := uint32(1), 0; off < len(out); i, off = i+1, off+size {
		binary.BigEndian.PutUint32(s.ctr[:], i)
		s.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(p.inner[:p.n])
		s.inner.Write(s.ctr[:])
		s.inner.Write(label)
		s.inner.Write(s.zero[:])
		s.inner.Write(context)
		s.inner.Write(extra)
		s.inner.Write(s.bits[:])
		sum := s.inner.Sum(s.sum[:0])
		s.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(p.outer[:p.n])
		s.outer.Write(sum)
		copy(out[off:], s.outer.Sum(s.sum[:0]))
	}
}

// KDF is SP800-108 in counter mode with HMAC-h, exactly as MS-GKDI uses it
// ([MS-GKDI] 3.1.4.1.1): n = ceil(L/hashlen) blocks, a big-endian 32-bit counter from 1
// first, the label, one 0x00 byte, the context, and L in bits as a big-endian u32.
func KDF(h Hash, key, label, context []byte, length int) []byte {
	out := make([]byte, length)
	s := getScratch(h)
	defer putScratch(h, s)
	s.prepare(h, key, &s.p)
	s.kdf(&s.p, label, context, out)
	return out
}
