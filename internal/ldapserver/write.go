package ldapserver

import (
	"context"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// write answers the update operations. Until they land they are refused plainly.
func (c *conn) write(ctx context.Context, id int64, op *ber.Packet) {
	resp := map[ber.Tag]ber.Tag{appModifyRequest: appModifyResponse, appAddRequest: appAddResponse, appDelRequest: appDelResponse,
		appModDNRequest: appModDNResponse, appCompareRequest: appCompareResponse}[op.Tag]
	if c.tok == nil {
		c.send(message(id, result(resp, resultOperationsError, "", diagNeedBind)))
		return
	}
	c.send(message(id, result(resp, resultUnwillingToPerform, "", "0000209A: SvcErr: DSID-031A1248, problem 5003 (WILL_NOT_PERFORM), data 0: updates over LDAP are not implemented yet; use the gmsa admin commands")))
}
