package ntsec

import (
	"fmt"
	"slices"
)

// Token is the security context of a requester: its own SID and every group SID it
// holds (transitive groups, Everyone, Authenticated Users … as the caller computed).
type Token struct {
	User   SID
	Groups []SID
}

// Has reports whether the token holds sid as its user or one of its groups.
func (t *Token) Has(sid SID) bool {
	if t.User.Equal(sid) {
		return true
	}
	for i := range t.Groups {
		if t.Groups[i].Equal(sid) {
			return true
		}
	}
	return false
}

// Decision explains the outcome of an access check: which ACE granted or denied the
// request and through which of the token's SIDs.
type Decision struct {
	Granted bool
	ACE     int    // index in the DACL of the deciding ACE; -1 when none decided
	SID     SID    // the token SID the deciding ACE matched
	Mask    uint32 // rights the deciding ACE denied or allowed; those still missing when none decided
	by      decidedBy
}

type decidedBy uint8

const (
	byACE decidedBy = iota
	byNoDACL
	byOwner
)

// Reason says in words what decided; it is built only when asked for, so the hot
// path of an access check allocates nothing.
func (d Decision) Reason() string {
	switch {
	case d.by == byNoDACL:
		return "the security descriptor has no DACL, which grants every right"
	case d.by == byOwner:
		return "the requester owns the security descriptor"
	case d.ACE < 0:
		return fmt.Sprintf("no ACE grants 0x%x to the requester or any of its groups", d.Mask)
	case d.Granted:
		return fmt.Sprintf("ACE %d allows 0x%x to %s", d.ACE, d.Mask, d.SID)
	}
	return fmt.Sprintf("ACE %d denies 0x%x to %s", d.ACE, d.Mask, d.SID)
}

// dsGenericMapping maps generic rights onto directory-service rights ([MS-ADTS] 5.1.3.3).
func dsGenericMapping(mask uint32) uint32 {
	m := mask &^ (RightGenericRead | RightGenericWrite | RightGenericExecute | RightGenericAll)
	if mask&RightGenericRead != 0 {
		m |= RightReadControl | RightDSListChildren | RightDSReadProperty | RightDSListObject
	}
	if mask&RightGenericWrite != 0 {
		m |= RightReadControl | RightDSSelf | RightDSWriteProperty
	}
	if mask&RightGenericExecute != 0 {
		m |= RightReadControl | RightDSListChildren
	}
	if mask&RightGenericAll != 0 {
		m |= 0x000f01ff
	}
	return m
}

// AccessCheck evaluates sd's DACL for tok and the desired rights, following
// [MS-DTYP] 2.5.3.2: ACEs are taken in order, an inherit-only ACE is skipped, a deny ACE
// that names any still-wanted right ends the check, allow ACEs accumulate rights. The
// PRINCIPAL_SELF SID (S-1-5-10) in an ACE stands for self. Object ACEs that name an
// object type do not apply to a check without one. An absent DACL grants everything; the
// owner implicitly holds READ_CONTROL and WRITE_DAC unless an OWNER RIGHTS ACE exists.
func AccessCheck(sd *SecurityDescriptor, tok *Token, desired uint32, self SID) Decision {
	return AccessCheckObject(sd, tok, desired, self, nil)
}

// AccessCheckObject is AccessCheck for a right on something of the object ([MS-ADTS]
// 5.1.3.3.3): an object ACE applies when its object type is one of types — the class
// of a child to create, an attribute and its property set, a control access right or a
// validated write.
func AccessCheckObject(sd *SecurityDescriptor, tok *Token, desired uint32, self SID, types []GUID) Decision {
	if sd.DACL == nil {
		return Decision{Granted: true, ACE: -1, by: byNoDACL}
	}
	remaining := dsGenericMapping(desired)
	if sd.Owner != nil && tok.Has(*sd.Owner) && !hasOwnerRightsACE(sd.DACL) {
		remaining &^= RightReadControl | RightWriteDAC
		if remaining == 0 {
			return Decision{Granted: true, ACE: -1, SID: *sd.Owner, by: byOwner}
		}
	}
	for i, ace := range sd.DACL.ACEs {
		if ace.Flags&ACEFlagInheritOnly != 0 {
			continue
		}
		if ace.IsObject() && ace.ObjectType != nil && !slices.Contains(types, *ace.ObjectType) {
			continue
		}
		sid := ace.SID
		if sid.Equal(SIDPrincipalSelf) && !self.IsZero() {
			sid = self
		}
		if !tok.Has(sid) {
			continue
		}
		mask := dsGenericMapping(ace.Mask)
		switch ace.Type {
		case ACETypeAccessDenied, ACETypeAccessDeniedObject:
			if mask&remaining != 0 {
				return Decision{ACE: i, SID: sid, Mask: mask & remaining}
			}
		case ACETypeAccessAllowed, ACETypeAccessAllowedObject:
			if mask&remaining != 0 {
				remaining &^= mask
				if remaining == 0 {
					return Decision{Granted: true, ACE: i, SID: sid, Mask: ace.Mask}
				}
			}
		}
	}
	return Decision{ACE: -1, Mask: remaining}
}

func hasOwnerRightsACE(acl *ACL) bool {
	for _, a := range acl.ACEs {
		if a.SID.Equal(SIDOwnerRights) {
			return true
		}
	}
	return false
}
