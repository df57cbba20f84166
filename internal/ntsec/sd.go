package ntsec

import (
	"encoding/binary"
	"fmt"
)

// Security descriptor control flags ([MS-DTYP] 2.4.6).
const (
	ControlOwnerDefaulted     = 0x0001
	ControlGroupDefaulted     = 0x0002
	ControlDACLPresent        = 0x0004
	ControlDACLDefaulted      = 0x0008
	ControlSACLPresent        = 0x0010
	ControlSACLDefaulted      = 0x0020
	ControlDACLAutoInheritReq = 0x0100
	ControlSACLAutoInheritReq = 0x0200
	ControlDACLAutoInherited  = 0x0400
	ControlSACLAutoInherited  = 0x0800
	ControlDACLProtected      = 0x1000
	ControlSACLProtected      = 0x2000
	ControlSelfRelative       = 0x8000
)

// ACE types ([MS-DTYP] 2.4.4.1).
const (
	ACETypeAccessAllowed       = 0x00
	ACETypeAccessDenied        = 0x01
	ACETypeSystemAudit         = 0x02
	ACETypeAccessAllowedObject = 0x05
	ACETypeAccessDeniedObject  = 0x06
	ACETypeSystemAuditObject   = 0x07
)

// ACE flags ([MS-DTYP] 2.4.4.1).
const (
	ACEFlagObjectInherit    = 0x01
	ACEFlagContainerInherit = 0x02
	ACEFlagNoPropagate      = 0x04
	ACEFlagInheritOnly      = 0x08
	ACEFlagInherited        = 0x10
	ACEFlagSuccessfulAccess = 0x40
	ACEFlagFailedAccess     = 0x80
)

// Object ACE flags ([MS-DTYP] 2.4.4.3).
const (
	objectTypePresent          = 0x1
	inheritedObjectTypePresent = 0x2
)

// SecurityDescriptor is a parsed self-relative security descriptor ([MS-DTYP] 2.4.6).
// Owner and Group are nil when absent; DACL is nil when the descriptor has none (which
// grants everything) and SACL likewise.
type SecurityDescriptor struct {
	Control uint16
	Owner   *SID
	Group   *SID
	SACL    *ACL
	DACL    *ACL
}

// ACL is an access control list ([MS-DTYP] 2.4.5).
type ACL struct {
	Revision byte // 2, or 4 when it holds object ACEs
	ACEs     []ACE
}

// ACE is one access control entry. For object ACEs, ObjectType and InheritedObjectType
// are set when present. ACE types this package does not interpret keep their body in Raw.
type ACE struct {
	Type                byte
	Flags               byte
	Mask                uint32
	ObjectType          *GUID
	InheritedObjectType *GUID
	SID                 SID
	Raw                 []byte
}

// IsObject reports whether the ACE carries the object-ACE fields.
func (a *ACE) IsObject() bool {
	return a.Type == ACETypeAccessAllowedObject || a.Type == ACETypeAccessDeniedObject || a.Type == ACETypeSystemAuditObject
}

func (a *ACE) known() bool {
	switch a.Type {
	case ACETypeAccessAllowed, ACETypeAccessDenied, ACETypeSystemAudit,
		ACETypeAccessAllowedObject, ACETypeAccessDeniedObject, ACETypeSystemAuditObject:
		return true
	}
	return false
}

const sdHeaderLen = 20

// ParseSecurityDescriptor reads a self-relative security descriptor. Every offset and
// length is bounds-checked; errors name the field and its offset.
func ParseSecurityDescriptor(b []byte) (*SecurityDescriptor, error) {
	if len(b) < sdHeaderLen {
		return nil, fmt.Errorf("ntsec: security descriptor: %d bytes, the header alone needs %d", len(b), sdHeaderLen)
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("ntsec: security descriptor: revision %d at offset 0, want 1", b[0])
	}
	sd := &SecurityDescriptor{Control: binary.LittleEndian.Uint16(b[2:])}
	if sd.Control&ControlSelfRelative == 0 {
		return nil, fmt.Errorf("ntsec: security descriptor: control 0x%04x at offset 2 lacks SE_SELF_RELATIVE", sd.Control)
	}
	offOwner := binary.LittleEndian.Uint32(b[4:])
	offGroup := binary.LittleEndian.Uint32(b[8:])
	offSACL := binary.LittleEndian.Uint32(b[12:])
	offDACL := binary.LittleEndian.Uint32(b[16:])
	var err error
	if sd.Owner, err = sidAt(b, offOwner, "owner", 4); err != nil {
		return nil, err
	}
	if sd.Group, err = sidAt(b, offGroup, "group", 8); err != nil {
		return nil, err
	}
	if sd.Control&ControlSACLPresent != 0 && offSACL != 0 {
		if sd.SACL, err = aclAt(b, offSACL, "SACL"); err != nil {
			return nil, err
		}
	}
	if sd.Control&ControlDACLPresent != 0 && offDACL != 0 {
		if sd.DACL, err = aclAt(b, offDACL, "DACL"); err != nil {
			return nil, err
		}
	}
	return sd, nil
}

func sidAt(b []byte, off uint32, what string, field int) (*SID, error) {
	if off == 0 {
		return nil, nil
	}
	if off < sdHeaderLen || uint64(off) >= uint64(len(b)) {
		return nil, fmt.Errorf("ntsec: security descriptor: %s offset %d (field at %d) is outside the %d-byte descriptor", what, off, field, len(b))
	}
	sid, _, err := readSID(b[off:])
	if err != nil {
		return nil, fmt.Errorf("ntsec: security descriptor: %s at offset %d: %w", what, off, err)
	}
	return &sid, nil
}

func aclAt(b []byte, off uint32, what string) (*ACL, error) {
	if off < sdHeaderLen || uint64(off)+8 > uint64(len(b)) {
		return nil, fmt.Errorf("ntsec: security descriptor: %s offset %d is outside the %d-byte descriptor", what, off, len(b))
	}
	acl, err := parseACL(b[off:])
	if err != nil {
		return nil, fmt.Errorf("ntsec: security descriptor: %s at offset %d: %w", what, off, err)
	}
	return acl, nil
}

func parseACL(b []byte) (*ACL, error) {
	rev := b[0]
	if rev != 2 && rev != 4 {
		return nil, fmt.Errorf("ACL revision %d, want 2 or 4", rev)
	}
	size := int(binary.LittleEndian.Uint16(b[2:]))
	count := int(binary.LittleEndian.Uint16(b[4:]))
	if size < 8 || size > len(b) {
		return nil, fmt.Errorf("ACL size %d does not fit the %d bytes left", size, len(b))
	}
	acl := &ACL{Revision: rev, ACEs: make([]ACE, 0, min(count, size/8))}
	pos := 8
	for i := range count {
		if pos+4 > size {
			return nil, fmt.Errorf("ACE %d at ACL offset %d: header runs past the ACL size %d", i, pos, size)
		}
		aceSize := int(binary.LittleEndian.Uint16(b[pos+2:]))
		if aceSize < 4 || pos+aceSize > size {
			return nil, fmt.Errorf("ACE %d at ACL offset %d: size %d does not fit the ACL size %d", i, pos, aceSize, size)
		}
		ace, err := parseACE(b[pos : pos+aceSize])
		if err != nil {
			return nil, fmt.Errorf("ACE %d at ACL offset %d: %w", i, pos, err)
		}
		acl.ACEs = append(acl.ACEs, ace)
		pos += aceSize
	}
	return acl, nil
}

func parseACE(b []byte) (ACE, error) {
	ace := ACE{Type: b[0], Flags: b[1]}
	body := b[4:]
	if !ace.known() {
		ace.Raw = append([]byte(nil), body...)
		return ace, nil
	}
	if len(body) < 4 {
		return ace, fmt.Errorf("type 0x%02x: no room for the access mask", ace.Type)
	}
	ace.Mask = binary.LittleEndian.Uint32(body)
	body = body[4:]
	if ace.IsObject() {
		if len(body) < 4 {
			return ace, fmt.Errorf("object ACE: no room for its flags")
		}
		flags := binary.LittleEndian.Uint32(body)
		body = body[4:]
		for _, f := range []struct {
			bit uint32
			dst **GUID
		}{{objectTypePresent, &ace.ObjectType}, {inheritedObjectTypePresent, &ace.InheritedObjectType}} {
			if flags&f.bit == 0 {
				continue
			}
			if len(body) < 16 {
				return ace, fmt.Errorf("object ACE: no room for an object type GUID")
			}
			g := GUID(body[:16])
			*f.dst = &g
			body = body[16:]
		}
	}
	sid, _, err := readSID(body)
	if err != nil {
		return ace, err
	}
	ace.SID = sid
	return ace, nil
}

// Bytes encodes sd in self-relative form, laid out as Windows does: header, SACL, DACL,
// owner, group.
func (sd *SecurityDescriptor) Bytes() []byte {
	b := make([]byte, sdHeaderLen, 128)
	b[0] = 1
	control := sd.Control | ControlSelfRelative
	if sd.DACL != nil {
		control |= ControlDACLPresent
	}
	if sd.SACL != nil {
		control |= ControlSACLPresent
	}
	binary.LittleEndian.PutUint16(b[2:], control)
	put := func(field int) { binary.LittleEndian.PutUint32(b[field:], uint32(len(b))) }
	if sd.SACL != nil {
		put(12)
		b = sd.SACL.appendBinary(b)
	}
	if sd.DACL != nil {
		put(16)
		b = sd.DACL.appendBinary(b)
	}
	if sd.Owner != nil {
		put(4)
		b = sd.Owner.AppendBinary(b)
	}
	if sd.Group != nil {
		put(8)
		b = sd.Group.AppendBinary(b)
	}
	return b
}

func (acl *ACL) appendBinary(b []byte) []byte {
	start := len(b)
	rev := acl.Revision
	if rev == 0 {
		rev = 2
	}
	for i := range acl.ACEs {
		if acl.ACEs[i].IsObject() {
			rev = 4
		}
	}
	b = append(b, rev, 0, 0, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(acl.ACEs)))
	b = append(b, 0, 0)
	for i := range acl.ACEs {
		b = acl.ACEs[i].appendBinary(b)
	}
	binary.LittleEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

func (a *ACE) appendBinary(b []byte) []byte {
	start := len(b)
	b = append(b, a.Type, a.Flags, 0, 0)
	if !a.known() {
		b = append(b, a.Raw...)
	} else {
		b = binary.LittleEndian.AppendUint32(b, a.Mask)
		if a.IsObject() {
			var flags uint32
			if a.ObjectType != nil {
				flags |= objectTypePresent
			}
			if a.InheritedObjectType != nil {
				flags |= inheritedObjectTypePresent
			}
			b = binary.LittleEndian.AppendUint32(b, flags)
			if a.ObjectType != nil {
				b = append(b, a.ObjectType[:]...)
			}
			if a.InheritedObjectType != nil {
				b = append(b, a.InheritedObjectType[:]...)
			}
		}
		b = a.SID.AppendBinary(b)
	}
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	binary.LittleEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}
