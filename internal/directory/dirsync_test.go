package directory

import (
	"errors"
	"slices"
	"testing"
)

// DirSync: a first read hands out every object of the domain, a batch at a time, and
// then nothing until something changes; a change and a deletion come next, in the order
// they were made, the deleted object as its tombstone. Only a requester with
// DS-Replication-Get-Changes reads without the object-security flag; a cookie this
// directory did not issue and a base below the domain are refused.
func TestDirSync(t *testing.T) {
	d, _ := lab(t)
	for _, n := range []string{"ann", "ben", "cat", "gone"} {
		must(d.NewUser(ctx, sys, UserOptions{Name: n, Password: "Sync-Pass-123!"}))
	}
	must(0, d.Remove(ctx, sys, "gone", "")) // CN=Deleted Objects is there before the first read
	admin := &Requester{Token: must(d.TokenFor(ctx, "Administrator")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	ann := &Requester{Token: must(d.TokenFor(ctx, "ann")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	q := Query{Base: "DC=example,DC=test", Scope: ScopeSub, Select: Selection{Names: []string{"sAMAccountName", "isDeleted"}}}
	read := func(req *Requester, flags int64, cookie []byte, limit int) ([]string, []byte, bool, error) {
		var got []string
		next, more, err := d.DirSync(ctx, req, q, flags, cookie, limit, func(m *Match) error {
			got = append(got, m.o.GUID.String())
			return nil
		})
		return got, next, more, err
	}
	var all []string
	must(0, d.Search(ctx, sys, Query{Base: "DC=example,DC=test", Scope: ScopeSub, ShowDeleted: true}, func(m *Match) error {
		all = append(all, m.o.GUID.String())
		return nil
	}))
	var cookie []byte
	var first []string
	for i := 0; ; i++ {
		got, next, more, err := read(admin, 0, cookie, 7)
		if err != nil || len(got) > 7 || i > 100 {
			t.Fatalf("first read, batch %d: %v %d", i, err, len(got))
		}
		first, cookie = append(first, got...), next
		if !more {
			break
		}
	}
	if !slices.Equal(first, all) {
		t.Fatalf("the first read: %d objects, the domain holds %d", len(first), len(all))
	}
	if got, next, more, err := read(admin, 0, cookie, 7); err != nil || len(got) != 0 || more {
		t.Fatalf("nothing changed: %v %v %v", got, more, err)
	} else {
		cookie = next
	}
	ben, cat := must(d.Resolve(ctx, "ben")), must(d.Resolve(ctx, "cat"))
	must(d.Modify(ctx, sys, cat.DN, []Change{{Op: ChangeReplace, Attr: "description", Values: [][]byte{[]byte("moved desks")}}}))
	must(0, d.Remove(ctx, sys, ben.DN, ""))
	got, cookie2, more, err := read(admin, 0, cookie, 7)
	if err != nil || more || !slices.Equal(got, []string{cat.GUID.String(), ben.GUID.String()}) {
		t.Fatalf("after a change and a deletion: %v %v %v", got, more, err)
	}
	if got, _, _, _ := read(admin, 0, cookie2, 7); len(got) != 0 {
		t.Fatalf("the same changes twice: %v", got)
	}
	// One change at a time: the cookie moves by one each time.
	got, next, more, _ := read(admin, 0, cookie, 1)
	if !slices.Equal(got, []string{cat.GUID.String()}) || !more {
		t.Fatalf("the first change alone: %v %v", got, more)
	}
	if got, _, more, _ := read(admin, 0, next, 1); !slices.Equal(got, []string{ben.GUID.String()}) || more {
		t.Fatalf("the second change alone: %v %v", got, more)
	}

	if _, _, _, err := read(ann, 0, nil, 7); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a user without DS-Replication-Get-Changes: %v", err)
	}
	if got, _, _, err := read(ann, DirSyncObjectSecurity, nil, 1000); err != nil || len(got) == 0 || len(got) >= len(all) {
		t.Fatalf("a user with object security reads what it may list: %d of %d, %v", len(got), len(all), err)
	}
	for _, bad := range []string{"x", "gmsa-dirsync/1/5/changes/4:", "gmsa-dirsync/1/5/all/not-a-guid", "gmsa-dirsync/2/5/all/"} {
		if _, _, _, err := read(admin, 0, []byte(bad), 7); !errors.Is(err, ErrBadCookie) {
			t.Errorf("cookie %q: %v", bad, err)
		}
	}
	q.Base = "CN=Users,DC=example,DC=test"
	if _, _, _, err := read(admin, 0, nil, 7); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a base below the domain: %v", err)
	}
}
