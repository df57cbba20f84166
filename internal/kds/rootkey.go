package kds

import (
	"fmt"

	"gmsa/internal/ntsec"
)

// KDFAlgorithm is the only msKds-KDFAlgorithmID MS-GKDI defines.
const KDFAlgorithm = "SP800_108_CTR_HMAC"

// RootKeyDataLen is the required length of msKds-RootKeyData.
const RootKeyDataLen = 64

// CreationLag is how long before a key period a root key may be used: Windows accepts a
// key up to 10 h plus the clock skew before its UseStartTime, and a new gMSA takes only
// keys whose UseStartTime is at least this far in the past (gmsa-algorithm.md §2).
const CreationLag = KeyCycle + MaxClockSkew

// RootKey is a KDS root key (msKds-ProvRootKey, gmsa-algorithm.md §2). Only ID, Data,
// Version, KDFAlgorithm, Hash and the two times matter for gMSA; the secret-agreement
// fields are carried so that keys round-trip through the directory unchanged.
type RootKey struct {
	ID           ntsec.GUID     // cn
	Data         []byte         // msKds-RootKeyData, 64 secret bytes
	Version      uint32         // msKds-Version, must be 1
	KDFAlgorithm string         // msKds-KDFAlgorithmID
	Hash         Hash           // from msKds-KDFParam
	CreateTime   ntsec.FileTime // msKds-CreateTime
	UseStartTime ntsec.FileTime // msKds-UseStartTime
	DomainID     string         // msKds-DomainID

	SecretAgreementAlgorithm string // msKds-SecretAgreementAlgorithmID ("DH")
	SecretAgreementParam     []byte // msKds-SecretAgreementParam
	PublicKeyLength          uint32 // msKds-PublicKeyLength
	PrivateKeyLength         uint32 // msKds-PrivateKeyLength
}

// Validate applies the checks a DC makes before using a root key ([MS-GKDI] 3.1.4.1):
// version 1, 64 bytes of data, SP800_108_CTR_HMAC with a known hash, a non-zero start.
func (rk *RootKey) Validate() error {
	switch {
	case rk.Version != 1:
		return fmt.Errorf("kds: root key %s: msKds-Version %d, want 1: %w", rk.ID, rk.Version, ErrBadKey)
	case len(rk.Data) != RootKeyDataLen:
		return fmt.Errorf("kds: root key %s: msKds-RootKeyData is %d bytes, want %d: %w", rk.ID, len(rk.Data), RootKeyDataLen, ErrBadKey)
	case rk.KDFAlgorithm != KDFAlgorithm:
		return fmt.Errorf("kds: root key %s: msKds-KDFAlgorithmID %q, want %q: %w", rk.ID, rk.KDFAlgorithm, KDFAlgorithm, ErrBadKey)
	case !rk.Hash.Valid():
		return fmt.Errorf("kds: root key %s: unknown KDF hash: %w", rk.ID, ErrBadKey)
	case rk.UseStartTime == 0:
		return fmt.Errorf("kds: root key %s: msKds-UseStartTime is 0: %w", rk.ID, ErrBadKey)
	}
	return nil
}

// ValidFor reports whether rk may derive the key period starting at start when named
// explicitly (by a password id): UseStartTime − (10 h + 5 min) ≤ start.
func (rk *RootKey) ValidFor(start ntsec.FileTime) error {
	if uint64(rk.UseStartTime) > uint64(start)+CreationLag {
		return fmt.Errorf("kds: root key %s becomes usable at %s, after the key period starting %s: %w",
			rk.ID, rk.UseStartTime.Time().Format("2006-01-02T15:04:05Z"), start.Time().Format("2006-01-02T15:04:05Z"), ErrBadKey)
	}
	return nil
}

// SelectRootKey picks the key to derive a password period starting at t: the valid key
// with the greatest CreateTime among those with UseStartTime ≤ t (gmsa-algorithm.md §2).
func SelectRootKey(keys []RootKey, t ntsec.FileTime) (*RootKey, error) {
	var best *RootKey
	for i := range keys {
		k := &keys[i]
		if k.Validate() != nil || k.UseStartTime > t {
			continue
		}
		if best == nil || k.CreateTime > best.CreateTime {
			best = k
		}
	}
	if best == nil {
		return nil, fmt.Errorf("kds: none of %d root keys is usable at %s: %w", len(keys), t.Time().Format("2006-01-02T15:04:05Z"), ErrNoRootKey)
	}
	return best, nil
}

// SelectRootKeyForNewAccount picks the key a DC uses when creating a gMSA at now: the
// newest valid key with UseStartTime ≤ now − (10 h + 5 min) (gmsa-algorithm.md §2).
func SelectRootKeyForNewAccount(keys []RootKey, now ntsec.FileTime) (*RootKey, error) {
	if now < CreationLag {
		return nil, fmt.Errorf("kds: time %d is too early for any root key: %w", now, ErrNoRootKey)
	}
	return SelectRootKey(keys, now-CreationLag)
}

// FindRootKey returns the key with the given id.
func FindRootKey(keys []RootKey, id ntsec.GUID) (*RootKey, error) {
	for i := range keys {
		if keys[i].ID == id {
			return &keys[i], nil
		}
	}
	return nil, fmt.Errorf("kds: root key %s: %w", id, ErrRootKeyMissing)
}
