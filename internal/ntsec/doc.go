// Package ntsec holds the Windows data types ([MS-DTYP]) that the gMSA system exchanges
// in binary form: GUIDs, SIDs, FILETIMEs, self-relative security descriptors, the SDDL
// subset Active Directory uses, and the access check that decides who may read a gMSA
// password ([MS-DTYP] 2.5.3.2).
//
// The package is pure: it takes bytes and strings and returns bytes and strings.
package ntsec
