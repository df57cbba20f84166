package pac

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// Signer computes one key's keyed checksum ([MS-PAC] 2.8: key usage 17): Type is the
// checksum type (16 HMAC-SHA1-96-AES256, 15 -AES128, -138 HMAC-MD5 for RC4), Size
// its length.
type Signer struct {
	Type int32
	Size int
	Sum  func(data []byte) ([]byte, error)
}

func (s Signer) empty() []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(s.Type)), make([]byte, s.Size)...)
}

// Sign appends the signature buffers to bufs and signs the PAC in AD's order
// ([MS-PAC] 2.8.3 and the CVE-2020-17049 / CVE-2022-37967 additions): the ticket
// signature (given, when ticketSig is set), the full-PAC signature (with full), then
// the server signature over the whole PAC, then the KDC signature over the server's.
// Service tickets carry all four; TGTs the server and KDC signatures only.
func Sign(bufs []Buffer, server, kdc Signer, ticketSig []byte, full bool) ([]byte, error) {
	all := append(append([]Buffer(nil), bufs...), Buffer{TypeServerChecksum, server.empty()}, Buffer{TypeKDCChecksum, kdc.empty()})
	if ticketSig != nil {
		all = append(all, Buffer{TypeTicketChecksum, append(binary.LittleEndian.AppendUint32(nil, uint32(kdc.Type)), ticketSig...)})
	}
	if full {
		all = append(all, Buffer{TypeFullChecksum, kdc.empty()})
	}
	b := Encode(all)
	sigs, err := signatures(b)
	if err != nil {
		return nil, err
	}
	if full {
		sum, err := kdc.Sum(b)
		if err != nil {
			return nil, err
		}
		copy(sigs[TypeFullChecksum][4:], sum)
	}
	sum, err := server.Sum(b)
	if err != nil {
		return nil, err
	}
	copy(sigs[TypeServerChecksum][4:], sum)
	if sum, err = kdc.Sum(sigs[TypeServerChecksum][4:]); err != nil {
		return nil, err
	}
	copy(sigs[TypeKDCChecksum][4:], sum)
	return b, nil
}

// signatures returns the signature buffers of a PAC by type, as slices into b.
func signatures(b []byte) (map[uint32][]byte, error) {
	bufs, err := Decode(b)
	if err != nil {
		return nil, err
	}
	m := map[uint32][]byte{}
	for _, x := range bufs {
		switch x.Type {
		case TypeServerChecksum, TypeKDCChecksum, TypeTicketChecksum, TypeFullChecksum:
			if len(x.Data) < 4 {
				return nil, fmt.Errorf("pac: signature buffer %d is %d bytes", x.Type, len(x.Data))
			}
			if _, dup := m[x.Type]; dup {
				return nil, fmt.Errorf("pac: two signature buffers of type %d", x.Type)
			}
			m[x.Type] = x.Data
		}
	}
	return m, nil
}

// Verify checks a PAC's server signature with server and its KDC signature with kdc
// ([MS-PAC] 2.8.3): both present, of the signers' types, and matching.
func Verify(b []byte, server, kdc Signer) error {
	c := append([]byte(nil), b...)
	sigs, err := signatures(c)
	if err != nil {
		return err
	}
	srv, k := sigs[TypeServerChecksum], sigs[TypeKDCChecksum]
	if srv == nil || k == nil {
		return fmt.Errorf("pac: no server or KDC signature")
	}
	if int32(binary.LittleEndian.Uint32(srv)) != server.Type || int32(binary.LittleEndian.Uint32(k)) != kdc.Type ||
		len(srv) != 4+server.Size || len(k) != 4+kdc.Size {
		return fmt.Errorf("pac: signature types %d/%d, want %d/%d", int32(binary.LittleEndian.Uint32(srv)), int32(binary.LittleEndian.Uint32(k)), server.Type, kdc.Type)
	}
	gotSrv, gotKDC := append([]byte(nil), srv[4:]...), append([]byte(nil), k[4:]...)
	wantKDC, err := kdc.Sum(gotSrv)
	if err != nil {
		return err
	}
	clear(srv[4:])
	clear(k[4:])
	wantSrv, err := server.Sum(c)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(gotSrv, wantSrv) != 1 {
		return fmt.Errorf("pac: the server signature does not verify")
	}
	if subtle.ConstantTimeCompare(gotKDC, wantKDC) != 1 {
		return fmt.Errorf("pac: the KDC signature does not verify")
	}
	return nil
}
