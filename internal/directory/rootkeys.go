package directory

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// dhParams is the msKds-SecretAgreementParam blob Windows and Samba write: u32 length,
// "DHPM", u32 key length, then p and g of the RFC 5114 §2.3 2048-bit MODP group with a
// 256-bit subgroup (checked against OpenSSL's dh_rfc5114:3 in the tests).
var dhParams, _ = hex.DecodeString("0c0200004448504d0001000087a8e61db4b6663cffbbd19c651959998ceef608660dd0f25d2ceed4435e3b00e00df8f1d61957d4faf7df4561b2aa3016c3d91134096faa3bf4296d830e9a7c209e0c6497517abd5a8a9d306bcf67ed91f9e6725b4758c022e0b1ef4275bf7b6c5bfc11d45f9088b941f54eb1e59bb8bc39a0bf12307f5c4fdb70c581b23f76b63acae1caa6b7902d52526735488a0ef13c6d9a51bfa4ab3ad8347796524d8ef6a167b5a41825d967e144e5140564251ccacb83e6b486f6b3ca3f7971506026c0b857f689962856ded4010abd0be621c3a3960a54e710c375f26375d7014103a4b54330c198af126116d2276e11715f693877fad7ef09cadb094ae91e1a15973fb32c9b73134d0b2e77506660edbd484ca7b18f21ef205407f4793a1a0ba12510dbc15077be463fff4fed4aac0bb555be3a6c1b0c6b47b1bc3773bf7e8c6f62901228f8c28cbb18a55ae31341000a650196f931c77a57f2ddf463e5e9ec144b777de62aaab8a8628ac376d282d6ed3864e67982428ebc831d14348f6f2f9193b5045af2767164e1dfc967c1fb3f2e55a4bd1bffe83b9c80d052b985d182ea0adb2a3b7313d3fe14c8484b1e052588b9b7d2bbd2df016199ecd06e1557cd0915b3353bbb64e0ec377fd028370df92b52c7891428cdc67eb6184b523d1db246c32f63078490f00ef8d647d148d47954515e2327cfef98c582664b4c0f6cc41659")

// DHParams returns the msKds-SecretAgreementParam blob new root keys carry.
func DHParams() []byte { return bytes.Clone(dhParams) }

// DefaultRootKeyDelay is Add-KdsRootKey's default: effective 10 days after now.
const DefaultRootKeyDelay = 10 * ntsec.TicksPerDay

// newRootKey builds a root key object effective at start.
func (d *Directory) newRootKey(start ntsec.FileTime) (*Object, error) {
	data := make([]byte, kds.RootKeyDataLen)
	if _, err := io.ReadFull(d.rand, data); err != nil {
		return nil, err
	}
	g := d.newGUID()
	return &Object{GUID: g, Class: ClassRootKey, Name: g.String(), DN: "CN=" + g.String() + "," + d.domain.RootKeysDN(),
		RootKey: &RootKeyRecord{Data: data, Version: 1, KDFAlgorithm: kds.KDFAlgorithm, KDFParam: kds.EncodeKDFParam(kds.SHA512),
			CreateTime: d.nowFT(), UseStartTime: start, DomainID: "CN=" + d.domain.DCName + "," + d.domain.DCsDN(),
			SecretAgreementAlgorithm: "DH", SecretAgreementParam: dhParams, PublicKeyLength: 2048, PrivateKeyLength: 512}}, nil
}

// RootKeyOptions mirror Add-KdsRootKey: an effective time, or immediately; by default
// 10 days from now.
type RootKeyOptions struct {
	EffectiveTime *ntsec.FileTime
	Immediately   bool
}

// AddRootKey creates a KDS root key. Several keys may exist; the warnings say what that
// means and when a new key becomes usable for new gMSAs.
func (d *Directory) AddRootKey(ctx context.Context, req *Requester, opt RootKeyOptions) (*Object, []string, error) {
	if err := d.authorizeAdmin(req, "add KDS root keys"); err != nil {
		return nil, nil, err
	}
	now := d.nowFT()
	start := now + DefaultRootKeyDelay
	switch {
	case opt.EffectiveTime != nil && opt.Immediately:
		return nil, nil, fmt.Errorf("directory: give an effective time or immediately, not both: %w", ErrInvalid)
	case opt.EffectiveTime != nil:
		start = *opt.EffectiveTime
	case opt.Immediately:
		start = now
	}
	if start == 0 {
		return nil, nil, fmt.Errorf("directory: an effective time of 0 makes the key unusable: %w", ErrInvalid)
	}
	o, err := d.newRootKey(start)
	if err != nil {
		return nil, nil, err
	}
	existing, err := d.List(ctx, ClassRootKey)
	if err != nil {
		return nil, nil, err
	}
	o.Created, o.Changed = now, now
	ops := append(createOps(o), store.Put(keyRootKeyVersion, []byte(o.GUID.String())))
	_, err = d.commit(ctx, ops...)
	d.dropKeys()
	if err != nil {
		return nil, nil, d.conflictError(ctx, err)
	}
	var warnings []string
	if len(existing) > 0 {
		warnings = append(warnings, fmt.Sprintf("%d other root key(s) exist: accounts keep the key their password id names; new password periods take the newest usable key", len(existing)))
	}
	if usable := start + kds.CreationLag; usable > now {
		warnings = append(warnings, fmt.Sprintf("new gMSAs can use this key from %s (effective time + 10 h, as domain controllers wait for replication)", fmtTime(usable)))
	}
	d.log.Info("KDS root key added", "id", o.GUID.String(), "use_start", fmtTime(start))
	d.changed(req, "add", o.DN)
	return o, warnings, nil
}

// ImportRootKey stores a root key made elsewhere (an LDAP add of msKds-ProvRootKey, a
// migration): it must be valid, and its GUID is its cn.
func (d *Directory) ImportRootKey(ctx context.Context, req *Requester, k kds.RootKey) (*Object, error) {
	ctx, done := d.created(ctx, req, "", d.domain.RootKeysDN(), ClassRootKey)
	return done(d.importRootKey(ctx, k))
}

func (d *Directory) importRootKey(ctx context.Context, k kds.RootKey) (*Object, error) {
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("directory: %v: %w", err, ErrInvalid)
	}
	now := d.nowFT()
	if k.CreateTime == 0 {
		k.CreateTime = now
	}
	if k.DomainID == "" {
		k.DomainID = "CN=" + d.domain.DCName + "," + d.domain.DCsDN()
	}
	if k.SecretAgreementAlgorithm == "" { // what a DC writes when the request leaves them out
		k.SecretAgreementAlgorithm, k.SecretAgreementParam, k.PublicKeyLength, k.PrivateKeyLength = "DH", DHParams(), 2048, 512
	}
	o := &Object{GUID: k.ID, Class: ClassRootKey, Name: k.ID.String(), DN: "CN=" + k.ID.String() + "," + d.domain.RootKeysDN(),
		RootKey: &RootKeyRecord{Data: k.Data, Version: k.Version, KDFAlgorithm: k.KDFAlgorithm, KDFParam: kds.EncodeKDFParam(k.Hash),
			CreateTime: k.CreateTime, UseStartTime: k.UseStartTime, DomainID: k.DomainID, SecretAgreementAlgorithm: k.SecretAgreementAlgorithm,
			SecretAgreementParam: k.SecretAgreementParam, PublicKeyLength: k.PublicKeyLength, PrivateKeyLength: k.PrivateKeyLength},
		Created: now, Changed: now}
	_, err := d.commit(ctx, append(createOps(o), store.Put(keyRootKeyVersion, []byte(o.GUID.String())))...)
	d.dropKeys()
	if err != nil {
		return nil, d.conflictError(ctx, err)
	}
	return o, nil
}

// RemoveRootKey deletes a root key. Passwords whose ids name it can no longer be derived.
func (d *Directory) RemoveRootKey(ctx context.Context, req *Requester, id string) error {
	if err := d.authorizeAdmin(req, "remove KDS root keys"); err != nil {
		return err
	}
	o, err := d.rootKeyObject(ctx, id)
	if err != nil {
		return err
	}
	ops := []store.Op{store.DeleteAt(objKey(o.GUID), o.USNChanged), store.Put(keyRootKeyVersion, []byte("-"+o.GUID.String()))}
	for k := range indexOps(o) {
		ops = append(ops, store.Delete(k))
	}
	_, err = d.commit(ctx, ops...)
	d.dropKeys()
	if err == nil {
		d.changed(req, "delete", o.DN)
	}
	return err
}

// RootKey returns a root key by GUID.
func (d *Directory) RootKey(ctx context.Context, id string) (*Object, error) {
	return d.rootKeyObject(ctx, id)
}

func (d *Directory) rootKeyObject(ctx context.Context, id string) (*Object, error) {
	g, err := ntsec.ParseGUID(id)
	if err != nil {
		return nil, fmt.Errorf("directory: root key %q: %w", id, ErrInvalid)
	}
	o, err := d.byGUID(ctx, g.String())
	if err != nil || o.Class != ClassRootKey {
		return nil, fmt.Errorf("directory: root key %s: %w", g, ErrNotFound)
	}
	return o, nil
}

// TestRootKey is Test-KdsRootKey: whether the key is valid for deriving passwords.
func (d *Directory) TestRootKey(ctx context.Context, id string) error {
	o, err := d.rootKeyObject(ctx, id)
	if err != nil {
		return err
	}
	k, err := o.KDSRootKey()
	if err != nil {
		return err
	}
	return k.Validate()
}

// keysRecheck is how long the cached root keys are used before the store is asked
// whether another process added or removed one; this process's own changes drop the
// cache at once.
const keysRecheck = time.Second

// rootKeys returns the forest's root keys, cached until a key is added or removed.
func (d *Directory) rootKeys(ctx context.Context) ([]kds.RootKey, error) {
	now := d.now()
	d.mu.Lock()
	if d.keysRev != 0 && now.Sub(d.keysChecked) < keysRecheck && !now.Before(d.keysChecked) {
		keys := d.cachedKeys
		d.mu.Unlock()
		return keys, nil
	}
	d.mu.Unlock()
	kv, err := d.st.Get(ctx, keyRootKeyVersion)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.keysRev == kv.Rev {
		keys := d.cachedKeys
		d.keysChecked = now
		d.mu.Unlock()
		return keys, nil
	}
	d.mu.Unlock()
	objs, err := d.List(ctx, ClassRootKey)
	if err != nil {
		return nil, err
	}
	keys := make([]kds.RootKey, 0, len(objs))
	for _, o := range objs {
		k, err := o.KDSRootKey()
		if err != nil {
			d.log.Warn("skipping damaged root key", "id", o.GUID.String(), "err", err)
			continue
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].CreateTime < keys[j].CreateTime })
	d.mu.Lock()
	d.keysRev, d.cachedKeys, d.keysChecked = kv.Rev, keys, now
	d.mu.Unlock()
	return keys, nil
}

// dropKeys forgets the cached root keys after this process changed them.
func (d *Directory) dropKeys() {
	d.mu.Lock()
	d.keysRev = 0
	d.mu.Unlock()
}

func fmtTime(t ntsec.FileTime) string { return t.Time().Format("2006-01-02T15:04:05Z") }

// Ready reports whether the directory can serve what a DC is for: its store answers
// (on etcd: with a quorum), and a root key is usable for new gMSAs.
func (d *Directory) Ready(ctx context.Context) error {
	if _, err := d.st.Get(ctx, keyDomain); err != nil {
		return fmt.Errorf("the store does not answer: %w", err)
	}
	keys, err := d.rootKeys(ctx)
	if err != nil {
		return fmt.Errorf("the root keys cannot be read: %w", err)
	}
	now := d.nowFT()
	if _, err := kds.SelectRootKeyForNewAccount(keys, now); err != nil {
		return d.noRootKeyError(keys, now)
	}
	return nil
}
