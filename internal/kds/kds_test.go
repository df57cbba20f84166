package kds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"gmsa/internal/ntsec"
	"gmsa/internal/vectors"
)

// rootKeyFromVector builds a root key from a vector's inputs.
func rootKeyFromVector(t *testing.T, in map[string]json.RawMessage) *RootKey {
	t.Helper()
	id, err := ntsec.ParseGUID(vectors.String(in, "root_key_id"))
	if err != nil {
		t.Fatal(err)
	}
	if want := vectors.Hex(in, "root_key_id_bytes"); !bytes.Equal(id[:], want) {
		t.Fatalf("GUID packet form %x, vector says %x", id[:], want)
	}
	h, err := ParseHash(vectors.String(in, "kdf_hash"))
	if err != nil {
		t.Fatal(err)
	}
	return &RootKey{ID: id, Data: vectors.Hex(in, "root_key_data"), Version: 1, KDFAlgorithm: KDFAlgorithm, Hash: h, UseStartTime: 1}
}

// Samba lib/crypto/test_gkdi_key_derivation.c: root key → L1 or L2 seed key with GmsaSD.
func TestSeedKeyVectors(t *testing.T) {
	vs := vectors.Public("gkdi_seed_key")
	if len(vs) != 12 {
		t.Fatalf("want 12 seed-key vectors, have %d", len(vs))
	}
	cache := NewCache(8)
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			rk := rootKeyFromVector(t, v.Inputs)
			var g struct{ L0, L1, L2 int32 }
			if err := vectors.Get(v.Inputs, "gkid", &g); err != nil {
				t.Fatal(err)
			}
			if sd := vectors.Hex(v.Inputs, "security_descriptor"); !bytes.Equal(sd, gmsaSD) {
				t.Fatalf("vector SD differs from GmsaSD")
			}
			gkid := GKID{g.L0, g.L1, g.L2}
			field := "l2_seed_key"
			if g.L2 == -1 {
				field = "l1_seed_key"
			}
			want := vectors.Hex(v.Expected, field)
			got, err := DeriveSeedKey(rk, gkid, gmsaSD)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:], want) {
				t.Fatalf("DeriveSeedKey %v = %x, want %x", gkid, got[:], want)
			}
			cached, err := cache.SeedKey(rk, gkid)
			if err != nil || !bytes.Equal(cached[:], want) {
				t.Fatalf("Cache.SeedKey %v = %x, %v; want %x", gkid, cached[:], err, want)
			}
		})
	}
}

// Samba lib/crypto/test_gkdi.c: root key + GKID + SID → the 256-byte password; the
// intermediate keys and NT hash were derived by the vector file's script.
func TestPasswordEndToEndVector(t *testing.T) {
	vs := vectors.Public("gmsa_password_end_to_end")
	if len(vs) != 1 {
		t.Fatalf("want 1 end-to-end vector, have %d", len(vs))
	}
	v := vs[0]
	rk := rootKeyFromVector(t, v.Inputs)
	sid, err := ntsec.ParseSID(vectors.String(v.Inputs, "account_sid"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sid.Bytes(), vectors.Hex(v.Inputs, "account_sid_bytes")) {
		t.Fatalf("SID bytes %x", sid.Bytes())
	}
	g := GKID{362, 0, 23}
	want := vectors.Hex(v.Expected, "password_256_bytes_utf16le_after_postprocess")

	l0, err := DeriveL0Key(rk, 362)
	if err != nil || !bytes.Equal(l0[:], vectors.Hex(v.Derived, "l0_seed_key")) {
		t.Fatalf("L0 key %x, %v", l0[:], err)
	}
	l1, _ := DeriveSeedKey(rk, GKID{362, 0, -1}, gmsaSD)
	if !bytes.Equal(l1[:], vectors.Hex(v.Derived, "l1_seed_key_362_0")) {
		t.Fatalf("L1 key %x", l1[:])
	}
	l2, _ := DeriveSeedKey(rk, g, gmsaSD)
	if !bytes.Equal(l2[:], vectors.Hex(v.Derived, "l2_seed_key_362_0_23")) {
		t.Fatalf("L2 key %x", l2[:])
	}
	pw, err := DerivePassword(rk, g, sid.Bytes())
	if err != nil || !bytes.Equal(pw[:], want) {
		t.Fatalf("DerivePassword = %x, %v; want %x", pw[:], err, want)
	}
	cache := NewCache(4)
	for i := range 3 { // cold, then warm
		pw, err := cache.Password(rk, g, sid.Bytes())
		if err != nil || !bytes.Equal(pw[:], want) {
			t.Fatalf("Cache.Password round %d = %x, %v", i, pw[:], err)
		}
	}
	// The "future" check: the vector's time lies in (362,6,21); the next period is refused.
	var now uint64
	if err := vectors.Get(v.Inputs, "current_nt_time_used_for_future_check", &now); err != nil {
		t.Fatal(err)
	}
	if err := CheckNotFuture(g, ntsec.FileTime(now)); err != nil {
		t.Fatal(err)
	}
	if err := CheckNotFuture(GKID{362, 6, 22}, ntsec.FileTime(now)); !errors.Is(err, ErrFutureKey) {
		t.Fatalf("a later GKID passed the future check: %v", err)
	}
}

// dpapi-ng tests/test_gkdi.py: Group Key Envelope semantics and the downward chains.
func TestEnvelopeChainVectors(t *testing.T) {
	vs := vectors.Public("gkdi_l1_to_l2_chain")
	if len(vs) != 4 {
		t.Fatalf("want 4 chain vectors, have %d", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			in := v.Inputs
			id, _ := ntsec.ParseGUID(vectors.String(in, "root_key_id"))
			var l0, l1, l2 int32
			var target []int32
			for k, dst := range map[string]any{"l0": &l0, "envelope_l1_index": &l1, "envelope_l2_index": &l2, "target_gkid": &target} {
				if err := vectors.Get(in, k, dst); err != nil {
					t.Fatal(err)
				}
			}
			env := &Envelope{RootKeyID: id, Hash: SHA512, L0: l0, L1: l1, L2: l2,
				L1Key: vectors.Hex(in, "envelope_l1_key"), L2Key: vectors.Hex(in, "envelope_l2_key")}
			got, err := L2KeyFrom(env, GKID{target[0], target[1], target[2]})
			if err != nil {
				t.Fatal(err)
			}
			if want := vectors.Hex(v.Expected, "l2_seed_key_361_0_0"); !bytes.Equal(got[:], want) {
				t.Fatalf("L2KeyFrom = %x, want %x", got[:], want)
			}
		})
	}
}

// Samba python/samba/tests/ndr/gkdi.py: the msDS-ManagedPasswordId (KeyEnvelope) sample.
func TestPasswordIDVector(t *testing.T) {
	v := vectors.Public("managedpasswordid_blob")[0]
	want := vectors.Hex(v.Expected, "blob")
	id, err := ParsePasswordID(want)
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := ntsec.ParseGUID(vectors.String(v.Inputs, "root_key_id"))
	exp := PasswordID{Version: 1, Flags: 2, GKID: GKID{362, 1, 14}, RootKeyID: rk, DomainName: "example.com", ForestName: "example.com"}
	if fmt.Sprint(*id) != fmt.Sprint(exp) {
		t.Fatalf("parsed %+v, want %+v", *id, exp)
	}
	if got := exp.Bytes(); !bytes.Equal(got, want) || len(got) != 100 {
		t.Fatalf("Bytes = %x (%d bytes), want %x", got, len(got), want)
	}
}

// msKds-KDFParam for SHA512 (gmsa-algorithm.md §2), and the round trip for every hash.
func TestKDFParamVector(t *testing.T) {
	v := vectors.Public("kdf_parameters_blob")[0]
	want := vectors.Hex(v.Expected, "blob")
	if got := EncodeKDFParam(SHA512); !bytes.Equal(got, want) {
		t.Fatalf("EncodeKDFParam(SHA512) = %x, want %x", got, want)
	}
	for _, h := range []Hash{SHA1, SHA256, SHA384, SHA512} {
		got, err := DecodeKDFParam(EncodeKDFParam(h))
		if err != nil || got != h {
			t.Fatalf("round trip %v: %v, %v", h, got, err)
		}
	}
	if h, err := DecodeKDFParam(nil); err != nil || h != SHA256 {
		t.Fatalf("absent msKds-KDFParam: %v, %v; want SHA256", h, err)
	}
	bad := bytes.Clone(want)
	bad[16] = 'X'
	if _, err := DecodeKDFParam(bad); err == nil {
		t.Fatal("unknown hash name accepted")
	}
}

// Samba lib/crypto/test_gkdi.c: rollover intervals and GKID ↔ time.
func TestTimeMathVector(t *testing.T) {
	v := vectors.Public("time_math")[0]
	var roll map[string]uint64
	var fromTime map[string][3]int32
	var starts map[string]uint64
	for k, dst := range map[string]any{"rollover_interval_by_days": &roll, "gkid_from_nttime": &fromTime, "gkid_start_time": &starts} {
		if err := vectors.Get(v.Expected, k, dst); err != nil {
			t.Fatal(err)
		}
	}
	for d, want := range roll {
		days, _ := strconv.ParseInt(d, 10, 64)
		got, err := RolloverInterval(days)
		if days == 0 {
			if !errors.Is(err, ErrBadInterval) {
				t.Errorf("RolloverInterval(0) = %d, %v; the gMSA code treats 0 as an error", got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("RolloverInterval(%d) = %d, %v; want %d", days, got, err, want)
		}
	}
	if _, err := RolloverInterval(21350398); !errors.Is(err, ErrBadInterval) {
		t.Errorf("21350398 days accepted; Samba rejects it")
	}
	if _, err := RolloverInterval(21350397); err != nil {
		t.Errorf("21350397 days refused: %v", err)
	}
	for ts, want := range fromTime {
		n, _ := strconv.ParseUint(ts, 10, 64)
		if got := GKIDAt(ntsec.FileTime(n)); got != (GKID{want[0], want[1], want[2]}) {
			t.Errorf("GKIDAt(%d) = %v, want %v", n, got, want)
		}
	}
	for g, want := range starts {
		var l0, l1, l2 int32
		fmt.Sscanf(g, "%d,%d,%d", &l0, &l1, &l2)
		if got := (GKID{l0, l1, l2}).Start(); uint64(got) != want {
			t.Errorf("Start(%s) = %d, want %d", g, got, want)
		}
	}
	// gmsa-algorithm.md §4 example.
	if got := GKIDAt(133387453261266352); got != (GKID{361, 26, 24}) {
		t.Errorf("GKIDAt(133387453261266352) = %v", got)
	}
}

// The KDF matches an independent HMAC construction, for every hash and output length.
func TestKDFAgainstDefinition(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 200) // longer than any block: hashed first
	for _, h := range []Hash{SHA1, SHA256, SHA384, SHA512} {
		for _, k := range [][]byte{key[:64], key} {
			for _, n := range []int{1, 20, 64, 65, 256} {
				got := KDF(h, k, labelKDSService, []byte("ctx"), n)
				want := referenceKDF(h, k, labelKDSService, []byte("ctx"), n)
				if !bytes.Equal(got, want) {
					t.Fatalf("%v key %d len %d: %x != %x", h, len(k), n, got, want)
				}
			}
		}
	}
}

func TestGKIDValidate(t *testing.T) {
	for _, g := range []GKID{{-1, -1, -1}, {0, 32, 0}, {0, 0, 32}, {0, -1, 3}, {0, -2, -1}} {
		if g.Validate() == nil {
			t.Errorf("%v accepted", g)
		}
	}
	for _, g := range []GKID{{0, -1, -1}, {5, 3, -1}, {361, 31, 31}} {
		if err := g.Validate(); err != nil {
			t.Errorf("%v: %v", g, err)
		}
	}
	if (GKID{1, 2, 3}).Compare(GKID{1, 2, 4}) != -1 || (GKID{2, 0, 0}).Compare(GKID{1, 31, 31}) != 1 {
		t.Error("Compare is not lexicographic")
	}
}

func TestRootKeyValidation(t *testing.T) {
	good := RootKey{Version: 1, Data: make([]byte, 64), KDFAlgorithm: KDFAlgorithm, Hash: SHA512, UseStartTime: 5}
	mutate := map[string]func(*RootKey){
		"version":   func(k *RootKey) { k.Version = 2 },
		"data":      func(k *RootKey) { k.Data = make([]byte, 32) },
		"algorithm": func(k *RootKey) { k.KDFAlgorithm = "sp800_108_ctr_hmac" },
		"hash":      func(k *RootKey) { k.Hash = 0 },
		"start":     func(k *RootKey) { k.UseStartTime = 0 },
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, m := range mutate {
		k := good
		m(&k)
		if err := k.Validate(); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := DerivePassword(&k, GKID{1, 1, 1}, ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()); err == nil {
			t.Errorf("%s: derived a password from a bad key", name)
		}
	}
}

func TestSelectRootKey(t *testing.T) {
	mk := func(b byte, create, start ntsec.FileTime) RootKey {
		return RootKey{ID: ntsec.GUID{b}, Version: 1, Data: make([]byte, 64), KDFAlgorithm: KDFAlgorithm, Hash: SHA512, CreateTime: create, UseStartTime: start}
	}
	keys := []RootKey{mk(1, 100, 100), mk(2, 300, 1000), mk(3, 200, 150)}
	for _, c := range []struct {
		at   ntsec.FileTime
		want byte
	}{{100, 1}, {160, 3}, {999, 3}, {1000, 2}} {
		k, err := SelectRootKey(keys, c.at)
		if err != nil || k.ID[0] != c.want {
			t.Errorf("at %d: %v, %v; want key %d", c.at, k, err, c.want)
		}
	}
	if _, err := SelectRootKey(keys, 99); !errors.Is(err, ErrNoRootKey) {
		t.Errorf("before every key: %v", err)
	}
	if _, err := SelectRootKeyForNewAccount(keys, 1000+CreationLag-1); err != nil {
		t.Error(err)
	} else if k, _ := SelectRootKeyForNewAccount(keys, 1000+CreationLag-1); k.ID[0] != 3 {
		t.Errorf("new account took key %d before its 10 h lag", k.ID[0])
	}
}

func TestPostProcess(t *testing.T) {
	var pw Password
	for i := range pw {
		pw[i] = byte(i)
	}
	pw[10], pw[11] = 0, 0 // an aligned NUL unit
	pw[21], pw[22] = 0, 0 // straddles two units: not a NUL unit
	pw[0], pw[1] = 0, 0
	postProcess(&pw)
	if pw[0] != 1 || pw[1] != 0 || pw[10] != 1 || pw[11] != 0 {
		t.Fatalf("aligned NUL units not replaced: %x", pw[:12])
	}
	if pw[21] != 0 || pw[22] != 0 {
		t.Fatal("unaligned zero bytes changed")
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	var k SeedKey
	var p Password
	k[0], p[0] = 0x42, 0x42
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%x", k), fmt.Sprintf("%v", p), fmt.Sprintf("%#v", p), fmt.Sprintf("%s", p)} {
		if s != redacted {
			t.Errorf("secret printed as %q", s)
		}
	}
}
