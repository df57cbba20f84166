package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// The schema partition's classes ([MS-ADSC] dMD, attributeSchema, classSchema,
// subSchema).
const (
	ClassDMD             Class = "dMD"
	ClassAttributeSchema Class = "attributeSchema"
	ClassClassSchema     Class = "classSchema"
	ClassSubSchema       Class = "subSchema"
	ClassCrossRef        Class = "crossRef" // a naming context's entry in CN=Partitions
)

// SchemaDN is the schema naming context, CN=Schema,CN=Configuration,….
func (d Domain) SchemaDN() string { return "CN=Schema," + d.ConfigDN }

// ensureSchema publishes the schema the directory serves as AD does: CN=Schema with an
// attributeSchema entry per attribute, a classSchema entry per class, and the
// CN=Aggregate subschema subentry ([MS-ADTS] 3.1.1.2, 3.1.1.3.1.1.4). The entries hold
// only their name; their values come from the schema facts compiled in, so they never
// disagree with what the directory does. A store without them (provisioned before
// they existed) gets them once, on open.
func (d *Directory) ensureSchema(ctx context.Context) error {
	schemaDN := d.domain.SchemaDN()
	if _, err := d.st.Get(ctx, dnKey("CN="+d.domain.NetBIOS+",CN=Partitions,"+d.domain.ConfigDN)); err == nil { // the last one made
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := d.nowFT()
	partitions := "CN=Partitions," + d.domain.ConfigDN
	objs := []*Object{{Class: ClassDMD, Name: "Schema", DN: schemaDN}, {Class: ClassSubSchema, Name: "Aggregate", DN: "CN=Aggregate," + schemaDN},
		// The domain's crossRef ([MS-ADTS] 6.1.1.2.1.1.5): where clients (adcli) read its
		// NetBIOS name.
		{Class: ClassContainer, Name: "Partitions", DN: partitions},
		{Class: ClassCrossRef, Name: d.domain.NetBIOS, DN: "CN=" + d.domain.NetBIOS + "," + partitions}}
	for _, key := range slices.Sorted(mapsKeys(attributeFacts)) {
		f := attributeFacts[key]
		objs = append(objs, &Object{Class: ClassAttributeSchema, Name: f.CN, DN: "CN=" + f.CN + "," + schemaDN, SchemaName: f.Name})
	}
	for _, key := range slices.Sorted(mapsKeys(classFacts)) {
		f := classFacts[key]
		objs = append(objs, &Object{Class: ClassClassSchema, Name: f.CN, DN: "CN=" + f.CN + "," + schemaDN, SchemaName: f.Name})
	}
	var ops []store.Op
	for _, o := range objs {
		if _, err := d.st.Get(ctx, dnKey(o.DN)); err == nil {
			continue // the container, from an earlier run cut short
		}
		o.GUID, o.Created, o.Changed = d.newGUID(), now, now
		ops = append(ops, createOps(o)...)
	}
	if err := store.ApplyInBatches(ctx, d.st, ops); err != nil {
		return fmt.Errorf("directory: publishing the schema: %w", err)
	}
	return nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ldapSyntax is the LDAP syntax OID of an attributeSyntax and oMSyntax ([MS-ADTS]
// 3.1.1.2.2.2), as the subschema entry names it.
func ldapSyntax(syntax string, om int) string {
	switch syntax {
	case "2.5.5.1":
		return "1.3.6.1.4.1.1466.115.121.1.12"
	case "2.5.5.2":
		return "1.3.6.1.4.1.1466.115.121.1.38"
	case "2.5.5.7":
		return "1.2.840.113556.1.4.903"
	case "2.5.5.8":
		return "1.3.6.1.4.1.1466.115.121.1.7"
	case "2.5.5.9":
		return "1.3.6.1.4.1.1466.115.121.1.27"
	case "2.5.5.11":
		if om == 23 {
			return "1.3.6.1.4.1.1466.115.121.1.53"
		}
		return "1.3.6.1.4.1.1466.115.121.1.24"
	case "2.5.5.12":
		return "1.3.6.1.4.1.1466.115.121.1.15"
	case "2.5.5.15":
		return "1.2.840.113556.1.4.907"
	case "2.5.5.16":
		return "1.2.840.113556.1.4.906"
	}
	return "1.3.6.1.4.1.1466.115.121.1.40" // octet strings and SIDs
}

// attributeTypeDescription is an attributeTypes value ([RFC 4512] 4.1.2, as AD writes it).
func attributeTypeDescription(f attributeFact) string {
	s := fmt.Sprintf("( %s NAME '%s' SYNTAX '%s'", f.OID, f.Name, ldapSyntax(f.Syntax, f.OMSyntax))
	if f.SingleValued {
		s += " SINGLE-VALUE"
	}
	if f.SystemFlags&0x4 != 0 { // FLAG_ATTR_IS_CONSTRUCTED
		s += " NO-USER-MODIFICATION"
	}
	return s + " )"
}

// objectClassDescription is an objectClasses value ([RFC 4512] 4.1.1, as AD writes it).
func objectClassDescription(f classFact) string {
	s := fmt.Sprintf("( %s NAME '%s'", f.OID, f.Name)
	if f.SubClassOf != "" && f.SubClassOf != f.Name {
		s += " SUP " + f.SubClassOf
	}
	s += map[int]string{1: " STRUCTURAL", 2: " ABSTRACT", 3: " AUXILIARY"}[f.Category]
	if len(f.MustContain) > 0 {
		s += " MUST (" + strings.Join(f.MustContain, " $ ") + " )"
	}
	if may := append(append([]string(nil), f.MayContain...), f.MayContainToo...); len(may) > 0 {
		s += " MAY (" + strings.Join(may, " $ ") + " )"
	}
	return s + " )"
}

// schemaValue computes an attribute of a schema entry; ok false when it is not one
// of the schema entries' own attributes.
func (v *View) schemaValue(lower string) ([][]byte, bool) {
	o := v.o
	switch o.Class {
	case ClassAttributeSchema:
		f, found := attributeFacts[strings.ToLower(o.SchemaName)]
		if !found {
			return nil, false
		}
		switch lower {
		case "ldapdisplayname":
			return str(f.Name), true
		case "attributeid":
			return str(f.OID), true
		case "attributesyntax":
			return str(f.Syntax), true
		case "omsyntax":
			return num(int64(f.OMSyntax), true), true
		case "issinglevalued":
			return str(strings.ToUpper(strconv.FormatBool(f.SingleValued))), true
		case "searchflags":
			return num(int64(f.SearchFlags), true), true
		case "systemflags":
			return num(int64(f.SystemFlags), true), true
		case "schemaidguid":
			g := ntsec.MustParseGUID(f.GUID)
			return [][]byte{g[:]}, true
		case "attributesecurityguid":
			if f.PropertySet == "" {
				return nil, true
			}
			g := ntsec.MustParseGUID(f.PropertySet)
			return [][]byte{g[:]}, true
		}
	case ClassClassSchema:
		f, found := classFacts[strings.ToLower(o.SchemaName)]
		if !found {
			return nil, false
		}
		list := func(l []string) [][]byte {
			var out [][]byte
			for _, x := range l {
				out = append(out, []byte(x))
			}
			return out
		}
		switch lower {
		case "ldapdisplayname":
			return str(f.Name), true
		case "governsid":
			return str(f.OID), true
		case "subclassof":
			return str(f.SubClassOf), true
		case "objectclasscategory":
			return num(int64(f.Category), true), true
		case "systemposssuperiors":
			return list(f.PossSuperiors), true
		case "systemmustcontain":
			return list(f.MustContain), true
		case "systemmaycontain":
			return list(f.MayContain), true
		case "maycontain":
			return list(f.MayContainToo), true
		case "defaultsecuritydescriptor":
			return str(f.DefaultSD), true
		case "schemaidguid":
			g := ntsec.MustParseGUID(f.GUID)
			return [][]byte{g[:]}, true
		}
	case ClassCrossRef:
		switch lower {
		case "netbiosname":
			return str(v.d.domain.NetBIOS), true
		case "ncname":
			return str(v.d.domain.BaseDN), true
		case "dnsroot":
			return str(v.d.domain.DNSName), true
		case "systemflags":
			return str("3"), true // FLAG_CR_NTDS_NC | FLAG_CR_NTDS_DOMAIN
		}
	case ClassSubSchema:
		var out [][]byte
		switch lower {
		case "attributetypes":
			for _, k := range slices.Sorted(mapsKeys(attributeFacts)) {
				out = append(out, []byte(attributeTypeDescription(attributeFacts[k])))
			}
			return out, true
		case "objectclasses":
			for _, k := range slices.Sorted(mapsKeys(classFacts)) {
				out = append(out, []byte(objectClassDescription(classFacts[k])))
			}
			return out, true
		case "ditcontentrules":
			for _, k := range slices.Sorted(mapsKeys(classFacts)) {
				if f := classFacts[k]; f.Category == 1 {
					out = append(out, []byte(fmt.Sprintf("( %s NAME '%s' )", f.OID, f.Name)))
				}
			}
			return out, true
		}
	}
	return nil, false
}
