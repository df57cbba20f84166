// Package kds is the Key Distribution Service engine: KDS root keys, the MS-GKDI
// group-key (seed key) derivation, msDS-ManagedPasswordId, the 256-byte gMSA password,
// its rotation schedule and root-key selection. It is bit-identical to a Windows domain
// controller; see gmsa-algorithm.md for the derivation byte by byte.
//
// The package is pure: no I/O and no clock. Every time is an argument.
package kds
