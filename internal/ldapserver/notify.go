package ldapserver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/directory"
)

// Change notifications ([MS-ADTS] 3.1.1.3.4.1.9, LDAP_SERVER_NOTIFICATION_OID): a search
// with the notification control sends nothing at first and then, until the client
// abandons it or closes the connection, an entry each time an object in its scope is
// written through this server, as the requester may read it. As in AD: the filter is
// (objectClass=*), the scope base or one level, or the subtree of a naming context's
// head; at most MaxNotificationPerConn (5) per connection; deleted objects only with
// the show deleted control; at most 1 000 on the server (busy past them). A
// notification search that falls more than its buffer behind ends with
// adminLimitExceeded. Binding again or starting TLS ends a connection's notifications
// first.

const (
	oidNotification         = "1.2.840.113556.1.4.528"
	maxNotificationsPerConn = 5
	maxNotifications        = 1000 // on the whole server: each one costs a read per change
	notificationBuffer      = 4096
)

// notifications are a connection's running notification searches.
type notifications struct {
	mu     sync.Mutex
	active map[int64]context.CancelFunc
	wg     sync.WaitGroup
}

// notify starts the notification search id for q.
func (c *conn) notify(id int64, q directory.Query, typesOnly bool, done func(int, string, ...*ber.Packet)) {
	dom := c.srv.cfg.Dir.Domain()
	objectClass, _ := q.Filter.(directory.Present)
	switch {
	case !strings.EqualFold(objectClass.Attr, "objectClass"):
		done(resultUnwillingToPerform, "00002024: a notification search's filter must be (objectClass=*)")
		return
	case q.Scope == directory.ScopeSub && !slices.ContainsFunc([]string{dom.BaseDN, dom.ConfigDN, dom.SchemaDN()}, func(nc string) bool { return strings.EqualFold(nc, q.Base) }):
		done(resultUnwillingToPerform, "00002024: a notification search of a subtree must start at a naming context's head; use one level or base")
		return
	}
	n := &c.notes
	n.mu.Lock()
	if len(n.active) >= maxNotificationsPerConn {
		n.mu.Unlock()
		done(resultAdminLimitExceeded, "00002024: at most 5 notification searches per connection (MaxNotificationPerConn)")
		return
	}
	if c.srv.notifying.Add(1) > maxNotifications {
		c.srv.notifying.Add(-1)
		n.mu.Unlock()
		done(resultBusy, "00002024: this server runs as many notification searches as it takes; try again later")
		return
	}
	if n.active == nil {
		n.active = map[int64]context.CancelFunc{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.active[id] = cancel
	n.wg.Add(1)
	n.mu.Unlock()
	dir, req := c.srv.cfg.Dir, c.req        // the requester stays: a bind ends the notifications first
	base, err := dir.ResolveDN(ctx, q.Base) // once, for every change's scope test
	if err != nil {
		n.mu.Lock()
		delete(n.active, id)
		n.mu.Unlock()
		n.wg.Done()
		c.srv.notifying.Add(-1)
		cancel()
		le := fromDomain(err)
		done(le.code, le.diag)
		return
	}
	changes, unsubscribe := dir.Subscribe(notificationBuffer)
	go func() {
		defer n.wg.Done()
		defer c.srv.notifying.Add(-1)
		defer unsubscribe()
		var attrs []directory.Attr
		var scratch []byte
		finish := func(code int, diag string) {
			n.mu.Lock()
			delete(n.active, id)
			last := len(n.active) == 0
			n.mu.Unlock()
			if last { // the connection idles again: its idle timeout runs from now
				c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
			}
			c.sendRaw(encodeResult(id, appSearchDone, code, "", diag))
			c.flush()
		}
		for {
			select {
			case <-ctx.Done():
				return // abandoned, or the connection is going: nothing more is sent
			case g, ok := <-changes:
				if !ok {
					finish(resultAdminLimitExceeded, "00002024: the notification search fell behind the changes; search again")
					return
				}
				one := directory.Query{Base: "<GUID=" + g.String() + ">", Scope: directory.ScopeBase, Filter: q.Filter, Select: q.Select, ShowDeleted: q.ShowDeleted}
				err := dir.Search(ctx, req, one, func(m *directory.Match) error {
					if !m.InScope(base, q.Scope) {
						return nil
					}
					var err error
					if attrs, err = m.Attributes(attrs[:0]); err != nil {
						return err
					}
					scratch = encodeEntry(scratch[:0], id, m.DN(), attrs, typesOnly)
					clear(attrs)
					if err := c.sendRaw(scratch); err != nil {
						return err
					}
					return c.flush()
				})
				switch {
				case err == nil, errors.Is(err, directory.ErrNoSuchBase), errors.Is(err, directory.ErrNotFound):
				case ctx.Err() != nil:
					return
				default:
					le := fromDomain(err)
					finish(le.code, le.diag)
					return
				}
			}
		}
	}()
}

// running reports whether the connection has a notification search in progress.
func (n *notifications) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.active) > 0
}

// abandon ends the notification search an AbandonRequest names ([RFC 4511] 4.11:
// nothing is sent for it); other requests are served in order, so have finished.
func (c *conn) abandon(op *ber.Packet) {
	id, err := intValue(op)
	if err != nil {
		return
	}
	c.notes.mu.Lock()
	cancel, ok := c.notes.active[id]
	delete(c.notes.active, id)
	c.notes.mu.Unlock()
	if ok {
		cancel()
	}
}

// stopNotifications ends every notification search of the connection and waits until
// none writes any more.
func (c *conn) stopNotifications() {
	c.notes.mu.Lock()
	for id, cancel := range c.notes.active {
		cancel()
		delete(c.notes.active, id)
	}
	c.notes.mu.Unlock()
	c.notes.wg.Wait()
}
