package directory

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gmsa/internal/audit"
	"gmsa/internal/store"
)

// secretLab is a domain with a plain user, a computer allowed to read a gMSA's
// password, and the gMSA; it returns the directory, the user's requester and the
// root key's object.
func secretLab(t *testing.T) (*Directory, *Requester, *Object) {
	t.Helper()
	d, _ := lab(t)
	must(d.NewUser(ctx, sys, UserOptions{Name: "mallory", Password: "Mallory-Pass-1!"}))
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "WEB01"}))
	must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"WEB01$"}}))
	req, err := d.Authenticate(ctx, Anonymous(ProtectionTLS, "192.0.2.7:4000"), "mallory", "Mallory-Pass-1!")
	if err != nil {
		t.Fatal(err)
	}
	keys := must(d.List(ctx, ClassRootKey))
	if len(keys) != 1 {
		t.Fatalf("%d root keys", len(keys))
	}
	return d, req, keys[0]
}

func guids(t *testing.T, d *Directory, req *Requester, f Filter) []string {
	t.Helper()
	var out []string
	err := d.Search(ctx, req, Query{Base: d.Domain().BaseDN, Scope: ScopeSub, Filter: f}, func(m *Match) error {
		out = append(out, m.GUID().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// The attack a review found: a plain user recovers the 64-byte root key byte by byte
// with ordering filters. Now every probe answers the same, whatever its value, so the
// search that a binary search would make learns nothing; and the filter never reads
// the secret at all.
func TestRootKeyCannotBeRecoveredWithFilters(t *testing.T) {
	d, mallory, rk := secretLab(t)
	secret := rk.RootKey.Data
	recovered := make([]byte, 0, len(secret))
	probes := 0
	for i := range 4 { // the first bytes are enough to show it: each probe is value-blind
		lo, hi := 0, 255
		for lo < hi {
			mid := (lo + hi + 1) / 2
			prefix := append(bytes.Clone(recovered), byte(mid))
			probes++
			if len(guids(t, d, mallory, Greater{"msKds-RootKeyData", prefix})) > 0 {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		recovered = append(recovered, byte(lo))
		_ = i
	}
	if bytes.Equal(recovered, secret[:len(recovered)]) {
		t.Fatalf("root key prefix recovered with %d ordering probes: %x", probes, recovered)
	}
	for _, f := range []Filter{
		Present{"msKds-RootKeyData"},
		Greater{"msKds-RootKeyData", nil},
		Less{"msKds-RootKeyData", bytes.Repeat([]byte{0xff}, 64)},
		Equal{"msKds-RootKeyData", secret},
		Substr{Attr: "msKds-RootKeyData", Initial: secret[:1]},
		Extensible{Attr: "msKds-RootKeyData", Value: secret},
		Present{"unicodePwd"}, Present{"msDS-ManagedPassword"}, Present{"supplementalCredentials"},
	} {
		if got := guids(t, d, mallory, f); len(got) != 0 {
			t.Errorf("%#v matches %d objects for a plain user", f, len(got))
		}
	}
	// NOT of an absent attribute is TRUE for every object, whatever the value.
	all := guids(t, d, mallory, Present{"objectClass"})
	if got := guids(t, d, mallory, Not{Greater{"msKds-RootKeyData", secret}}); !slices.Equal(got, all) {
		t.Errorf("NOT of a hidden attribute: %d objects, want all %d", len(got), len(all))
	}
	// An administrator sees the attribute, and a read of it is audited.
	admin, err := d.Authenticate(ctx, Anonymous(ProtectionTLS, "192.0.2.8:4000"), "Administrator", adminPassword(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if got := guids(t, d, admin, Equal{"msKds-RootKeyData", secret}); len(got) != 1 {
		t.Fatalf("administrator's equality on the root key: %d", len(got))
	}
	if _, err := d.Compare(ctx, mallory, rk.DN, "msKds-RootKeyData", secret); !errors.Is(err, ErrInvalid) {
		t.Fatalf("compare of the root key by a user: %v", err)
	}
	if _, err := d.Compare(ctx, admin, rk.DN, "msKds-RootKeyData", secret); !errors.Is(err, ErrInvalid) {
		t.Fatalf("compare of the root key by an administrator: %v", err)
	}
}

// adminPassword resets Administrator's password to a known one.
func adminPassword(t *testing.T, d *Directory) string {
	t.Helper()
	must(d.SetPassword(ctx, sys, "Administrator", "Admin-Pass-1!"))
	return "Admin-Pass-1!"
}

// The property behind the fix: for random filters and a non-admin requester, the
// entries that match are the same whether the secrets hold their real values or random
// bytes — no filter form, however nested, observes a secret.
func TestFiltersAreBlindToSecrets(t *testing.T) {
	d, mallory, rk := secretLab(t)
	r := rand.New(rand.NewPCG(7, 11))
	filters := make([]Filter, 400)
	for i := range filters {
		filters[i] = randomFilter(r, 4)
	}
	before := make([][]string, len(filters))
	for i, f := range filters {
		before[i] = guids(t, d, mallory, f)
	}
	// Replace every secret: the root key's data (and with it every gMSA password) and
	// every stored password hash and key.
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	if _, err := d.modify(ctx, rk.GUID, func(n *Object) ([]store.Op, error) { n.RootKey.Data = noise(64); return nil, nil }); err != nil {
		t.Fatal(err)
	}
	d.dropKeys()
	for _, c := range []Class{ClassUser, ClassComputer} {
		for _, o := range must(d.List(ctx, c)) {
			if _, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
				n.NTHash = noise(16)
				for i := range n.Keys {
					n.Keys[i].Value = noise(len(n.Keys[i].Value))
				}
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, f := range filters {
		if after := guids(t, d, mallory, f); !slices.Equal(before[i], after) {
			t.Fatalf("%#v: %d matches with the real secrets, %d with random ones", f, len(before[i]), len(after))
		}
	}
}

var secretAttrs = []string{"msKds-RootKeyData", "msDS-ManagedPassword", "unicodePwd", "supplementalCredentials", "dBCSPwd", "ntPwdHistory"}
var publicAttrs = []string{"objectClass", "sAMAccountName", "cn", "userAccountControl", "msDS-ManagedPasswordId", "msKds-Version", "description"}

// randomFilter draws a filter of every form, over secret and public attributes.
func randomFilter(r *rand.Rand, depth int) Filter {
	attr := func() string {
		if r.IntN(3) > 0 {
			return secretAttrs[r.IntN(len(secretAttrs))]
		}
		return publicAttrs[r.IntN(len(publicAttrs))]
	}
	val := func() []byte {
		b := make([]byte, r.IntN(4))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(4) == 0 {
			return []byte(fmt.Sprint(r.IntN(5000)))
		}
		return b
	}
	n := r.IntN(10)
	if depth == 0 {
		n = 4 + r.IntN(6)
	}
	switch n {
	case 0, 1:
		var fs And
		for range 1 + r.IntN(3) {
			fs = append(fs, randomFilter(r, depth-1))
		}
		return fs
	case 2, 3:
		var fs Or
		for range 1 + r.IntN(3) {
			fs = append(fs, randomFilter(r, depth-1))
		}
		return fs
	case 4:
		return Not{randomFilter(r, max(depth-1, 0))}
	case 5:
		return Equal{attr(), val()}
	case 6:
		if r.IntN(2) == 0 {
			return Greater{attr(), val()}
		}
		return Less{attr(), val()}
	case 7:
		return Present{attr()}
	case 8:
		return Substr{Attr: attr(), Initial: val(), Any: [][]byte{val()}, Final: val()}
	}
	rules := []string{"", RuleBitAnd, RuleBitOr}
	return Extensible{Rule: rules[r.IntN(len(rules))], Attr: attr(), Value: val()}
}

// A granted password read is audited with the principal; a denied one too, with the
// reason; neither record holds a secret.
func TestPasswordReadsAreAudited(t *testing.T) {
	buf := &bytes.Buffer{}
	d, _ := lab(t)
	d.audit = audit.New(buf, audit.Options{})
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "WEB01"}))
	must(d.NewUser(ctx, sys, UserOptions{Name: "mallory", Password: "Mallory-Pass-1!"}))
	must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"WEB01$"}}))
	web := &Requester{Token: must(d.TokenFor(ctx, "WEB01$")), Protection: ProtectionTLS, Remote: "192.0.2.1:1"}
	mallory := &Requester{Token: must(d.TokenFor(ctx, "mallory")), Protection: ProtectionTLS, Remote: "192.0.2.2:1"}
	blob, dec, err := d.ReadPassword(ctx, web, "svc")
	if err != nil || blob == nil || !dec.Granted {
		t.Fatalf("granted read: %v %v", dec, err)
	}
	if blob, _, _ := d.ReadPassword(ctx, mallory, "svc"); blob != nil {
		t.Fatal("mallory read the password")
	}
	if _, _, err := d.ReadPassword(ctx, &Requester{Token: web.Token, Protection: ProtectionNone}, "svc"); !errors.Is(err, ErrNeedEncryption) {
		t.Fatalf("read in the clear: %v", err)
	}
	// Asked for with an option (a range), over a search, in the clear: refused too.
	plain := &Requester{Token: web.Token, Protection: ProtectionNone, Remote: "192.0.2.1:1"}
	for _, name := range []string{"msDS-ManagedPassword;range=0-*", "MSDS-MANAGEDPASSWORD;Range=0-0"} {
		err := d.Search(ctx, plain, Query{Base: "DC=example,DC=test", Scope: ScopeSub, Filter: Equal{Attr: "sAMAccountName", Value: []byte("svc$")},
			Select: Selection{Names: []string{name}}}, func(m *Match) error { _, err := m.Attributes(nil); return err })
		if !errors.Is(err, ErrNeedEncryption) {
			t.Fatalf("%s in the clear: %v", name, err)
		}
	}
	if _, err := (&Match{d: d, ctx: ctx, req: plain, o: must(d.Resolve(ctx, "svc")), sel: Selection{Names: []string{"msDS-ManagedPassword"}}}).Attributes(nil); !errors.Is(err, ErrNeedEncryption) {
		t.Fatalf("a match's password in the clear: %v", err)
	}
	d.audit.Close()
	log := buf.String()
	if !strings.Contains(log, `"msg":"gMSA password read","principal":"WEB01$","remote":"192.0.2.1:1","account":"svc$"`) ||
		!strings.Contains(log, `"msg":"gMSA password read denied","principal":"mallory"`) {
		t.Fatalf("audit trail:\n%s", log)
	}
	for _, secret := range [][]byte{blob[16:32], []byte("Mallory-Pass-1!")} {
		if bytes.Contains([]byte(log), secret) {
			t.Fatal("a secret reached the audit trail")
		}
	}
}
