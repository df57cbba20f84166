package kds

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// gmsaSD is the fixed security descriptor O:SYD:(A;;FRFW;;;S-1-5-9) that every gMSA
// seed-key derivation uses ([MS-ADTS] 3.1.1.4.5.39, gmsa-algorithm.md §5).
var gmsaSD = []byte{
	0x01, 0x00, 0x04, 0x80, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x14, 0x00, 0x00, 0x00, 0x02, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00,
	0x9f, 0x01, 0x12, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x09, 0x00, 0x00, 0x00,
	0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00,
}

// GMSASecurityDescriptor returns a copy of the fixed gMSA seed-key security descriptor.
func GMSASecurityDescriptor() []byte { return bytes.Clone(gmsaSD) }

// context writes the 28-byte KDF context G ‖ L0 ‖ L1 ‖ L2 (signed little-endian) into s.
func (s *scratch) context(root []byte, l0, l1, l2 int32) []byte {
	copy(s.ctx[:16], root)
	binary.LittleEndian.PutUint32(s.ctx[16:], uint32(l0))
	binary.LittleEndian.PutUint32(s.ctx[20:], uint32(l1))
	binary.LittleEndian.PutUint32(s.ctx[24:], uint32(l2))
	return s.ctx[:]
}

// step computes out = KDF(h, key, "KDS service", context ‖ extra, 64).
func (s *scratch) step(h Hash, key, context, extra []byte, out *SeedKey) {
	s.prepare(h, key, &s.p)
	s.kdfParts(&s.p, labelKDSService, context, extra, out[:])
}

// seedChain walks MS-GKDI's derivation ([MS-GKDI] 3.1.4.1.2, gmsa-algorithm.md §5) from the
// root key to g, calling l1 for each L1 key from index 31 down and l2 for each L2 key.
func (s *scratch) seedChain(rk *RootKey, g GKID, sd []byte, l1 func(int32, *SeedKey), l2 func(int32, *SeedKey)) {
	root, h := rk.ID[:], rk.Hash
	var k0, k SeedKey
	s.step(h, rk.Data, s.context(root, g.L0, -1, -1), nil, &k0)
	s.step(h, k0[:], s.context(root, g.L0, 31, -1), sd, &k)
	l1(31, &k)
	for n := int32(30); n >= g.L1; n-- {
		s.step(h, k[:], s.context(root, g.L0, n, -1), nil, &k)
		l1(n, &k)
	}
	if g.L2 < 0 {
		return
	}
	s.step(h, k[:], s.context(root, g.L0, g.L1, 31), nil, &k)
	l2(31, &k)
	for n := int32(30); n >= g.L2; n-- {
		s.step(h, k[:], s.context(root, g.L0, g.L1, n), nil, &k)
		l2(n, &k)
	}
}

func checkDerivable(rk *RootKey, g GKID) error {
	if err := rk.Validate(); err != nil {
		return err
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if g.L1 < 0 {
		return fmt.Errorf("kds: GKID %v: an L0 key is not handed out, ask for an L1 or L2 key", g)
	}
	return nil
}

// DeriveSeedKey derives the L1 (g.L2 = −1) or L2 seed key g of rk, with sd appended to
// the context of the L1 index-31 step. gMSA passwords use GMSASecurityDescriptor.
func DeriveSeedKey(rk *RootKey, g GKID, sd []byte) (SeedKey, error) {
	var out SeedKey
	if err := checkDerivable(rk, g); err != nil {
		return out, err
	}
	s := getScratch(rk.Hash)
	defer putScratch(rk.Hash, s)
	s.seedChain(rk, g, sd,
		func(n int32, k *SeedKey) {
			if g.L2 < 0 && n == g.L1 {
				out = *k
			}
		},
		func(n int32, k *SeedKey) {
			if n == g.L2 {
				out = *k
			}
		})
	return out, nil
}

// DeriveL0Key derives the L0 seed key (L0, −1, −1), which does not depend on any SD.
func DeriveL0Key(rk *RootKey, l0 int32) (SeedKey, error) {
	var out SeedKey
	if err := checkDerivable(rk, GKID{L0: l0, L1: 0, L2: -1}); err != nil {
		return out, err
	}
	s := getScratch(rk.Hash)
	defer putScratch(rk.Hash, s)
	s.step(rk.Hash, rk.Data, s.context(rk.ID[:], l0, -1, -1), nil, &out)
	return out, nil
}

// Envelope is the key material of a Group Key Envelope that GetKey returns ([MS-GKDI]
// 2.2.4): when L2 is 31, L1Key is the L1 key (L0, L1, −1); otherwise it is
// (L0, L1 − 1, −1) and L2Key is the L2 key (L0, L1, L2).
type Envelope struct {
	RootKeyID  [16]byte
	Hash       Hash
	L0, L1, L2 int32
	L1Key      []byte
	L2Key      []byte
}

// L2KeyFrom walks an envelope's chains down to the L2 key target, as an MS-GKDI client
// does (gmsa-algorithm.md §5, "GetKey results").
func L2KeyFrom(env *Envelope, target GKID) (SeedKey, error) {
	var out SeedKey
	if !target.IsL2() || target.L0 != env.L0 || target.L1 > env.L1 ||
		(target.L1 == env.L1 && target.L2 > env.L2) {
		return out, fmt.Errorf("kds: envelope (%d,%d,%d) cannot reach %v: chains only run downward", env.L0, env.L1, env.L2, target)
	}
	l1, l2 := env.L1, env.L2
	reseed := l2 == 31 || l1 != target.L1
	if l2 != 31 && l1 != target.L1 {
		l1-- // the envelope's L1 key is (L0, L1−1, −1)
	}
	var k1, k2 SeedKey
	copy(k1[:], env.L1Key)
	copy(k2[:], env.L2Key)
	if (reseed && len(env.L1Key) != 64) || (!reseed && len(env.L2Key) != 64) {
		return out, fmt.Errorf("kds: envelope (%d,%d,%d): the key this walk starts from is missing or not 64 bytes", env.L0, env.L1, env.L2)
	}
	s := getScratch(env.Hash)
	defer putScratch(env.Hash, s)
	for l1 != target.L1 {
		reseed = true
		l1--
		s.step(env.Hash, k1[:], s.context(env.RootKeyID[:], env.L0, l1, -1), nil, &k1)
	}
	if reseed {
		l2 = 31
		s.step(env.Hash, k1[:], s.context(env.RootKeyID[:], env.L0, l1, l2), nil, &k2)
	}
	for l2 != target.L2 {
		l2--
		s.step(env.Hash, k2[:], s.context(env.RootKeyID[:], env.L0, l1, l2), nil, &k2)
	}
	return k2, nil
}
