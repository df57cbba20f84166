package directory

import (
	"errors"
	"strings"
	"testing"

	"gmsa/internal/ntsec"
)

// Delegation as AD administrators do it: one ACE set on an OU lets a group create,
// manage and delete gMSAs in that OU only; a member of the group can, a user outside
// it cannot, and nowhere else can the operator create one. The object the operator
// creates is its own (owner), its security descriptor shows the ACEs it inherits, and
// a write of nTSecurityDescriptor with only the DACL part keeps the owner.
func TestDelegatedGMSAAdministration(t *testing.T) {
	d, _ := lab(t)
	ou := must(d.NewContainer(ctx, sys, ClassOU, "Services", "", ""))
	ops := must(d.NewGroup(ctx, sys, "gMSA Operators", ScopeGlobal, ""))
	must(d.NewUser(ctx, sys, UserOptions{Name: "operator", Password: "Op-Pass-123!"}))
	must(d.NewUser(ctx, sys, UserOptions{Name: "other", Password: "Other-Pass-123!"}))
	must(d.AddMember(ctx, sys, "gMSA Operators", "operator"))
	as := func(name string) *Requester {
		return &Requester{Token: must(d.TokenFor(ctx, name)), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	}
	operator, other := as("operator"), as("other")

	// Before the delegation the operator is an ordinary user.
	if _, err := d.NewGMSA(ctx, operator, GMSAOptions{Name: "early", DNSHostName: "early.example.test", Container: ou.DN}); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("before the delegation: %v", err)
	}
	// The administrator delegates: create and delete gMSAs in the OU, and every right
	// on the gMSAs below it.
	const gmsaClass = "7b8b558a-93a5-4af7-adca-c017e67f1057"
	sd := must(ntsec.ParseSDDL("D:(OA;CI;CCDC;"+gmsaClass+";;"+ops.SID+")(OA;CIIO;RPWPCRLCLORCSDDT;;"+gmsaClass+";"+ops.SID+")", d.sid))
	must(d.Modify(ctx, sys, ou.DN, []Change{{Op: ChangeReplace, Attr: "nTSecurityDescriptor", Values: [][]byte{sd.Bytes()}, SDFlags: sdDACL}}))

	g, err := d.NewGMSA(ctx, operator, GMSAOptions{Name: "websvc", DNSHostName: "websvc.example.test", Container: ou.DN})
	if err != nil {
		t.Fatalf("the delegated operator creating a gMSA in the OU: %v", err)
	}
	if _, err := d.SetGMSA(ctx, operator, "websvc", GMSAChanges{PrincipalsAllowed: &[]string{"gMSA Operators"}}); err != nil {
		t.Fatalf("the operator managing its gMSA: %v", err)
	}
	for who, req := range map[string]*Requester{"the operator outside the OU": operator, "a user outside the group": other} {
		container := ou.DN
		if req == operator {
			container = ""
		}
		if _, err := d.NewGMSA(ctx, req, GMSAOptions{Name: "nope", DNSHostName: "nope.example.test", Container: container}); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s created a gMSA: %v", who, err)
		}
	}
	if _, err := d.SetGMSA(ctx, other, "websvc", GMSAChanges{Description: ptr("mine")}); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a user outside the group changed the gMSA: %v", err)
	}
	if _, err := d.Modify(ctx, operator, "CN=Administrator,CN=Users,DC=example,DC=test", []Change{{Op: ChangeReplace, Attr: "description", Values: [][]byte{[]byte("x")}}}); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("the operator changed the Administrator: %v", err)
	}

	// The gMSA's security descriptor: the operator owns it; it inherits the OU's ACE.
	var raw []byte
	q := Query{Base: g.DN, Scope: ScopeBase, Select: Selection{Names: []string{"nTSecurityDescriptor"}, SDFlags: sdOwner | sdGroup | sdDACL}}
	must(0, d.Search(ctx, operator, q, func(m *Match) error {
		for _, a := range must(m.Attributes(nil)) {
			raw = a.Values[0]
		}
		return nil
	}))
	got := must(ntsec.ParseSecurityDescriptor(raw))
	if got.Owner == nil || got.Owner.String() != must(d.Resolve(ctx, "operator")).SID {
		t.Fatalf("owner %v, want the operator", got.Owner)
	}
	if !strings.Contains(got.SDDL(), "(OA;CIID;LCRPWPDTLOCRSDRC;;"+gmsaClass+";"+ops.SID+")") {
		t.Fatalf("the inherited ACE is missing: %s", got.SDDL())
	}
	if err := d.Remove(ctx, other, "websvc", ClassGMSA); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a user outside the group deleted the gMSA: %v", err)
	}
	if err := d.Remove(ctx, operator, "websvc", ClassGMSA); err != nil {
		t.Fatalf("the operator deleting its gMSA: %v", err)
	}
	// A DACL-only write left the OU's owner alone.
	ouSD := must(d.explicitSD(must(d.Resolve(ctx, ou.DN))))
	if ouSD.Owner == nil || !ouSD.Owner.Equal(d.sid.Child(ntsec.RIDDomainAdmins)) {
		t.Fatalf("the OU's owner after a DACL write: %v", ouSD.Owner)
	}
}

func ptr[T any](v T) *T { return &v }

// Owners as AD assigns them: a requester may take ownership, not give it — an owner
// written in a security descriptor is the requester or one of its groups, unless an
// administrator writes it —, and the set owner control ([MS-ADTS] 3.1.1.3.4.1.37)
// names any owner for a new object, for those holding DS-Set-Owner on the domain. A
// descriptor given with an add takes the place of the default's parts.
func TestOwnerRules(t *testing.T) {
	d, _ := lab(t)
	ou := must(d.NewContainer(ctx, sys, ClassOU, "People", "", ""))
	ops := must(d.NewGroup(ctx, sys, "User Operators", ScopeGlobal, ""))
	must(d.NewUser(ctx, sys, UserOptions{Name: "operator", Password: "Op-Pass-123!"}))
	other := must(d.NewUser(ctx, sys, UserOptions{Name: "other", Password: "Other-Pass-123!"}))
	must(d.AddMember(ctx, sys, "User Operators", "operator"))
	operator := &Requester{Token: must(d.TokenFor(ctx, "operator")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	const userClass = "bf967aba-0de6-11d0-a285-00aa003049e2"
	sd := must(ntsec.ParseSDDL("D:(OA;CI;CCDC;"+userClass+";;"+ops.SID+")(OA;CIIO;RPWPCRLCLORCSDDTWO;;"+userClass+";"+ops.SID+")", d.sid))
	must(d.Modify(ctx, sys, ou.DN, []Change{{Op: ChangeReplace, Attr: "nTSecurityDescriptor", Values: [][]byte{sd.Bytes()}, SDFlags: sdDACL}}))

	add := func(req *Requester, cn string, opt AddOptions, sd []byte) (*Object, error) {
		attrs := map[string][][]byte{"objectclass": {[]byte("user")}, "samaccountname": {[]byte(cn)}}
		if sd != nil {
			attrs["ntsecuritydescriptor"] = [][]byte{sd}
		}
		return d.Add(ctx, req, "CN="+cn+","+ou.DN, attrs, opt)
	}
	ownerOf := func(o *Object) string {
		sd := must(d.explicitSD(must(d.Resolve(ctx, o.DN))))
		return sd.Owner.String()
	}
	// Without DS-Set-Owner the control is refused; with it, the named owner owns.
	if _, err := add(operator, "u1", AddOptions{Owner: other.SID}, nil); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("the set owner control without DS-Set-Owner: %v", err)
	}
	if _, err := add(operator, "u1", AddOptions{Owner: "not-a-sid"}, nil); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("a set owner control that names no SID: %v", err)
	}
	dom := must(d.Resolve(ctx, "DC=example,DC=test"))
	domSD := must(d.explicitSD(dom))
	grant := must(ntsec.ParseSDDL("D:(OA;;CR;4125c71f-7fac-4ff0-bcb7-f09a41325286;;"+ops.SID+")", d.sid))
	domSD.DACL.ACEs = append(domSD.DACL.ACEs, grant.DACL.ACEs...)
	must(d.Modify(ctx, sys, dom.DN, []Change{{Op: ChangeReplace, Attr: "nTSecurityDescriptor", Values: [][]byte{domSD.Bytes()}, SDFlags: sdDACL}}))
	u1, err := add(operator, "u1", AddOptions{Owner: other.SID}, nil)
	if err != nil {
		t.Fatalf("the set owner control with DS-Set-Owner: %v", err)
	}
	if got := ownerOf(u1); got != other.SID {
		t.Fatalf("owner %s, want %s", got, other.SID)
	}

	// Giving ownership in a descriptor: refused to the operator, on an add and on a
	// modify; taking it, or keeping the owner as it is, is not.
	give := must(ntsec.ParseSDDL("O:"+other.SID+"D:(A;;RP;;;WD)", d.sid)).Bytes()
	if _, err := add(operator, "u2", AddOptions{}, give); !errors.Is(err, ErrConstraint) || !strings.Contains(err.Error(), "0000051B") {
		t.Fatalf("an add that gives ownership: %v", err)
	}
	u2, err := add(operator, "u2", AddOptions{SDFlags: sdDACL}, give)
	if err != nil {
		t.Fatalf("an add with a DACL: %v", err)
	}
	got := must(d.explicitSD(must(d.Resolve(ctx, u2.DN))))
	if got.Owner.String() != operator.Token.User.String() || !strings.Contains(got.SDDL(), "(A;;RP;;;WD)") {
		t.Fatalf("the descriptor of an add with a DACL: %s", got.SDDL())
	}
	setOwner := func(req *Requester, o *Object, owner string) error {
		v := must(ntsec.ParseSDDL("O:"+owner, d.sid)).Bytes()
		_, err := d.Modify(ctx, req, o.DN, []Change{{Op: ChangeReplace, Attr: "nTSecurityDescriptor", Values: [][]byte{v}, SDFlags: sdOwner}})
		return err
	}
	if err := setOwner(operator, u2, other.SID); !errors.Is(err, ErrConstraint) {
		t.Fatalf("the operator giving its object away: %v", err)
	}
	if err := setOwner(operator, u1, operator.Token.User.String()); err != nil {
		t.Fatalf("the operator taking ownership: %v", err)
	}
	if err := setOwner(operator, u1, operator.Token.User.String()); err != nil {
		t.Fatalf("the operator keeping its ownership: %v", err)
	}
	if err := setOwner(sys, u2, other.SID); err != nil || ownerOf(u2) != other.SID {
		t.Fatalf("the system giving ownership: %v", err)
	}
}
