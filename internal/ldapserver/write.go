package ldapserver

import (
	"context"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/directory"
)

// parseAttributes reads an AddRequest's attribute list, by lower-case name.
func parseAttributes(p *ber.Packet) map[string][][]byte {
	a := map[string][][]byte{}
	for _, at := range p.Children {
		if len(at.Children) < 2 {
			continue
		}
		name := strings.ToLower(str(at.Children[0]))
		for _, v := range at.Children[1].Children {
			a[name] = append(a[name], raw(v))
		}
	}
	return a
}

// parseChanges reads a ModifyRequest's changes ([RFC 4511] 4.6: add 0, delete 1, replace 2).
func parseChanges(list []*ber.Packet) ([]directory.Change, *ldapError) {
	var out []directory.Change
	for _, ch := range list {
		if len(ch.Children) < 2 || len(ch.Children[1].Children) < 2 {
			return nil, lerr(resultProtocolError, "malformed change")
		}
		op, _ := intValue(ch.Children[0])
		if op < 0 || op > 2 {
			return nil, lerr(resultProtocolError, "unknown modify operation %d", op)
		}
		c := directory.Change{Op: directory.ChangeOp(op), Attr: str(ch.Children[1].Children[0])}
		for _, v := range ch.Children[1].Children[1].Children {
			c.Values = append(c.Values, raw(v))
		}
		out = append(out, c)
	}
	return out, nil
}

// write serves Add, Modify, Delete and ModifyDN: the directory authorizes, applies
// and audits each.
func (c *conn) write(ctx context.Context, id int64, op *ber.Packet, controls []*ber.Packet) {
	resp := map[ber.Tag]ber.Tag{appModifyRequest: appModifyResponse, appAddRequest: appAddResponse, appDelRequest: appDelResponse,
		appModDNRequest: appModDNResponse}[op.Tag]
	stats := func() []*ber.Packet { return nil }
	reply := func(e *ldapError) {
		if e == nil {
			c.send(message(id, result(resp, resultSuccess, "", ""), stats()...))
			return
		}
		c.send(message(id, result(resp, e.code, e.matched, e.diag), stats()...))
	}
	rc, le := parseControls(controls, op.Tag)
	if le != nil {
		reply(le)
		return
	}
	ctx, stats = c.recordUSNs(ctx, rc)
	dir := c.srv.cfg.Dir
	var err error
	switch op.Tag {
	case appAddRequest:
		if len(op.Children) < 2 {
			reply(lerr(resultProtocolError, "malformed AddRequest"))
			return
		}
		_, err = dir.Add(ctx, c.req, str(op.Children[0]), parseAttributes(op.Children[1]), directory.AddOptions{SDFlags: rc.sdFlags, Owner: rc.owner})
	case appModifyRequest:
		if len(op.Children) < 2 {
			reply(lerr(resultProtocolError, "malformed ModifyRequest"))
			return
		}
		changes, le := parseChanges(op.Children[1].Children)
		if le != nil {
			reply(le)
			return
		}
		for i := range changes {
			changes[i].Permissive, changes[i].SDFlags, changes[i].EnforceHistory = rc.permissive, rc.sdFlags, rc.fullPolicy
		}
		if newDN, ok := directory.ReanimationTarget(changes); ok && rc.showDeleted {
			_, err = dir.Reanimate(ctx, c.req, str(op.Children[0]), newDN) // [MS-ADTS] 3.1.1.5.3.7
			break
		}
		_, err = dir.Modify(ctx, c.req, str(op.Children[0]), changes)
	case appDelRequest:
		if rc.treeDelete {
			_, err = dir.DeleteTree(ctx, c.req, str(op), rc.treeLimit)
		} else {
			err = dir.Delete(ctx, c.req, str(op))
		}
	case appModDNRequest:
		err = c.modifyDN(ctx, op)
	}
	if err != nil {
		reply(fromDomain(err))
		return
	}
	reply(nil)
}

// modifyDN renames or moves an account or group ([RFC 4511] 4.9). The old RDN value
// is never kept: cn is single-valued in AD, so deleteoldrdn must be true.
func (c *conn) modifyDN(ctx context.Context, op *ber.Packet) error {
	if len(op.Children) < 3 {
		return lerr(resultProtocolError, "malformed ModifyDNRequest")
	}
	key, name, ok := strings.Cut(str(op.Children[1]), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(key), "CN") && !strings.EqualFold(strings.TrimSpace(key), "OU") {
		return lerr(resultNamingViolation, "00002099: the new RDN must be CN=name (OU=name for an organizational unit)")
	}
	if !boolValue(op.Children[2]) {
		return lerr(resultUnwillingToPerform, "0000209A: cn is single-valued: deleteoldrdn must be TRUE")
	}
	newParent := ""
	if len(op.Children) > 3 && op.Children[3].ClassType == ber.ClassContext && op.Children[3].Tag == 0 {
		newParent = str(op.Children[3])
	}
	_, err := c.srv.cfg.Dir.Rename(ctx, c.req, str(op.Children[0]), name, newParent)
	return err
}

// compare answers whether an entry holds an attribute value ([RFC 4511] 4.10); the
// directory refuses secret and constructed attributes.
func (c *conn) compare(ctx context.Context, id int64, op *ber.Packet, controls []*ber.Packet) {
	stats := func() []*ber.Packet { return nil }
	reply := func(code int, diag string) {
		c.send(message(id, result(appCompareResponse, code, "", diag), stats()...))
	}
	rc, le := parseControls(controls, appCompareRequest)
	if le != nil {
		reply(le.code, le.diag)
		return
	}
	ctx, stats = c.recordUSNs(ctx, rc)
	if len(op.Children) < 2 || len(op.Children[1].Children) < 2 {
		reply(resultProtocolError, "malformed CompareRequest")
		return
	}
	matched, err := c.srv.cfg.Dir.Compare(ctx, c.req, str(op.Children[0]), str(op.Children[1].Children[0]), raw(op.Children[1].Children[1]))
	switch {
	case err != nil:
		le := fromDomain(err)
		reply(le.code, le.diag)
	case matched:
		reply(resultCompareTrue, "")
	default:
		reply(resultCompareFalse, "")
	}
}
