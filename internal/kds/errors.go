package kds

import "errors"

// Sentinel errors, checked with errors.Is.
var (
	ErrBadKey         = errors.New("unusable root key")                // NTE_BAD_KEY in Windows
	ErrNoRootKey      = errors.New("no usable KDS root key")           // selection found nothing
	ErrFutureKey      = errors.New("key from the future")              // GKID after now + skew
	ErrBadInterval    = errors.New("bad password interval")            // msDS-ManagedPasswordInterval
	ErrBadPasswordID  = errors.New("malformed msDS-ManagedPasswordId") // blob decode
	ErrRootKeyMissing = errors.New("root key named by the password id is gone")
)
