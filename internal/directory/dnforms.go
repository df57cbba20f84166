package directory

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// wellKnownObjects are the domain NC's well-known containers by their GUID
// ([MS-ADTS] 6.1.1.4, the wellKnownObjects attribute of the domain object, and
// otherWellKnownObjects for Managed Service Accounts, which came later), as
// <WKGUID=…,DN> names them.
var wellKnownObjects = map[string]func(Domain) string{
	"a9d1ca15768811d1aded00c04fd8d5cd": Domain.UsersDN,     // GUID_USERS_CONTAINER_W
	"aa312825768811d1aded00c04fd8d5cd": Domain.ComputersDN, // GUID_COMPUTERS_CONTAINER_W
	"a361b2ffffd211d1aa4b00c04fd7d83a": Domain.DCsDN,       // GUID_DOMAIN_CONTROLLERS_CONTAINER_W
	"1eb93889e40c45df9f0c64d23bbb6237": Domain.MSADN,       // GUID_MANAGED_SERVICE_ACCOUNTS_CONTAINER_W
}

// otherWellKnown are the GUIDs listed in otherWellKnownObjects rather than
// wellKnownObjects.
var otherWellKnown = map[string]bool{"1eb93889e40c45df9f0c64d23bbb6237": true}

// wellKnownValues are the domain object's wellKnownObjects (or otherWellKnownObjects)
// values: DN-Binary B:32:GUID:DN, the GUID in upper-case hex as AD writes it.
func wellKnownValues(dom Domain, other bool) [][]byte {
	var out [][]byte
	for _, g := range slices.Sorted(maps.Keys(wellKnownObjects)) {
		if otherWellKnown[g] == other {
			out = append(out, []byte("B:32:"+strings.ToUpper(g)+":"+wellKnownObjects[g](dom)))
		}
	}
	return out
}

// ResolveDN turns AD's alternative DN forms into the object's DN ([MS-ADTS]
// 3.1.1.3.1.2.4): <SID=S-1-…> or the SID's bytes in hex, <GUID=…> as text or the
// GUID's bytes in hex, and <WKGUID=guid,NC> for the domain's well-known containers.
// Any other DN is returned as it is. A form that names nothing is ErrNoSuchBase.
func (d *Directory) ResolveDN(ctx context.Context, dn string) (string, error) {
	t := strings.TrimSpace(dn)
	if !strings.HasPrefix(t, "<") {
		return dn, nil
	}
	kind, val, ok := strings.Cut(strings.TrimSuffix(t[1:], ">"), "=")
	if !ok || !strings.HasSuffix(t, ">") {
		return "", fmt.Errorf("directory: %q: want <SID=…>, <GUID=…> or <WKGUID=…,DN>: %w", dn, ErrInvalidDN)
	}
	var o *Object
	var err error
	switch strings.ToUpper(kind) {
	case "SID":
		var sid ntsec.SID
		if strings.HasPrefix(strings.ToUpper(val), "S-") {
			sid, err = ntsec.ParseSID(val)
		} else if raw, herr := hex.DecodeString(val); herr == nil {
			sid, err = ntsec.SIDFromBytes(raw)
		} else {
			err = herr
		}
		if err != nil {
			return "", fmt.Errorf("directory: %q: %v: %w", dn, err, ErrInvalidDN)
		}
		o, err = d.byIndex(ctx, sidKey(sid.String()))
	case "GUID":
		var g ntsec.GUID
		if strings.Contains(val, "-") {
			g, err = ntsec.ParseGUID(val)
		} else if raw, herr := hex.DecodeString(val); herr == nil {
			g, err = ntsec.GUIDFromBytes(raw)
		} else {
			err = herr
		}
		if err != nil {
			return "", fmt.Errorf("directory: %q: %v: %w", dn, err, ErrInvalidDN)
		}
		o, err = d.byGUID(ctx, g.String())
	case "WKGUID":
		guid, nc, ok := strings.Cut(val, ",")
		wk := wellKnownObjects[strings.ToLower(guid)]
		switch {
		case !ok:
			return "", fmt.Errorf("directory: %q: want <WKGUID=guid,DN>: %w", dn, ErrInvalidDN)
		case normDN(nc) != normDN(d.domain.BaseDN) || wk == nil:
			return "", fmt.Errorf("directory: %q: no such well-known object: %w", dn, ErrNoSuchBase)
		}
		return wk(d.domain), nil
	default:
		return "", fmt.Errorf("directory: %q: want <SID=…>, <GUID=…> or <WKGUID=…,DN>: %w", dn, ErrInvalidDN)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("directory: %q: %w", dn, ErrNoSuchBase)
	}
	if err != nil {
		return "", err
	}
	return o.DN, nil
}
