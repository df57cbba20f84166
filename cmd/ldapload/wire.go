package main

// A lean LDAP client for the load runs: requests are encoded once per filter variant,
// responses are walked in place ([X.690] 8.1 definite lengths, [RFC 4511] 4.2, 4.5),
// and up to -depth requests are outstanding per connection ([RFC 4511] 4.1.1: message
// IDs let a client pipeline). The client's own cost per operation stays small, so on
// a shared machine the numbers say more about the server under test.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/tlv"
)

// message wraps an encoded protocol operation (and controls, [0] encoded, or nil) into
// an LDAPMessage with id.
func message(dst []byte, id int64, op []byte, controls ...byte) []byte {
	var tmp [12]byte
	idTLV := tlv.AppendInt(tmp[:0], 0x02, id)
	dst = tlv.AppendLength(append(dst, 0x30), len(idTLV)+len(op)+len(controls))
	return append(append(append(dst, idTLV...), op...), controls...)
}

const oidPaged = "1.2.840.113556.1.4.319"

// pagedControls encodes the [0] Controls of a paged search request ([RFC 2696]).
func pagedControls(size int, cookie []byte) []byte {
	val := tlv.Append(tlv.AppendInt(nil, 0x02, int64(size)), 0x04, cookie)
	ctl := tlv.Append(nil, 0x04, []byte(oidPaged))
	ctl = tlv.Append(ctl, 0x04, tlv.Append(nil, 0x30, val))
	return tlv.Append(nil, 0xa0, tlv.Append(nil, 0x30, ctl))
}

// pagedCookie finds the paged results control's cookie in a message's controls.
func pagedCookie(controls []byte) []byte {
	for len(controls) > 0 {
		_, ctl, rest, err := tlv.Split(controls)
		if err != nil {
			return nil
		}
		controls = rest
		_, oid, more, err := tlv.Split(ctl)
		if err != nil || string(oid) != oidPaged {
			continue
		}
		for len(more) > 0 {
			tag, v, next, err := tlv.Split(more)
			if err != nil {
				return nil
			}
			more = next
			if tag != 0x04 {
				continue // criticality
			}
			_, seq, _, err := tlv.Split(v)
			if err != nil {
				return nil
			}
			if _, _, after, err := tlv.Split(seq); err == nil {
				if _, cookie, _, err := tlv.Split(after); err == nil {
					return cookie
				}
			}
		}
	}
	return nil
}

func simpleBind(name, password string) []byte {
	body := tlv.AppendInt(nil, 0x02, 3)
	body = tlv.Append(body, 0x04, []byte(name))
	body = tlv.Append(body, 0x80, []byte(password)) // [0] simple
	return tlv.Append(nil, 0x60, body)              // [APPLICATION 0] BindRequest
}

// searchOp encodes a subtree SearchRequest ([RFC 4511] 4.5.1).
func searchOp(base, filter string, attrs []string) ([]byte, error) {
	f, err := ldap.CompileFilter(filter)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", filter, err)
	}
	body := tlv.Append(nil, 0x04, []byte(base))
	body = tlv.AppendInt(body, 0x0a, 2) // wholeSubtree
	body = tlv.AppendInt(body, 0x0a, 0) // neverDerefAliases
	body = tlv.AppendInt(body, 0x02, 0) // no size limit
	body = tlv.AppendInt(body, 0x02, 0) // no time limit
	body = append(body, 0x01, 0x01, 0x00)
	body = append(body, f.Bytes()...)
	var list []byte
	for _, a := range attrs {
		list = tlv.Append(list, 0x04, []byte(a))
	}
	body = tlv.Append(body, 0x30, list)
	return tlv.Append(nil, 0x63, body), nil // [APPLICATION 3] SearchRequest
}

// response is what the load loop needs of one LDAPMessage.
type response struct {
	op      byte   // protocol operation tag
	code    int    // LDAPResult resultCode, for results
	diag    string // diagnosticMessage, for results
	hasAttr bool   // a SearchResultEntry with a non-empty value of the watched attribute
	cookie  []byte // a SearchResultDone's paged results cookie (points into the message)
}

func parseResponse(msg []byte, watch string) (response, error) {
	var r response
	_, body, _, err := tlv.Split(msg)
	if err != nil {
		return r, err
	}
	if _, _, body, err = tlv.Split(body); err != nil { // messageID
		return r, err
	}
	tag, op, controls, err := tlv.Split(body)
	if err != nil {
		return r, err
	}
	r.op = tag
	if tag == 0x65 && len(controls) > 0 {
		if _, list, _, err := tlv.Split(controls); err == nil {
			r.cookie = pagedCookie(list)
		}
	}
	if tag == 0x64 { // SearchResultEntry: objectName, then the attribute list
		_, _, rest, err := tlv.Split(op)
		if err != nil {
			return r, err
		}
		_, list, _, err := tlv.Split(rest)
		if err != nil {
			return r, err
		}
		for len(list) > 0 {
			var one []byte
			if _, one, list, err = tlv.Split(list); err != nil {
				return r, err
			}
			_, name, vals, err := tlv.Split(one)
			if err != nil {
				return r, err
			}
			if watch != "" && strings.EqualFold(string(name), watch) {
				_, set, _, err := tlv.Split(vals)
				if err != nil {
					return r, err
				}
				if _, v, _, err := tlv.Split(set); err == nil && len(v) > 0 {
					r.hasAttr = true
				}
			}
		}
		return r, nil
	}
	if tag == 0x73 { // SearchResultReference: URLs only
		return r, nil
	}
	// An LDAPResult: resultCode, matchedDN, diagnosticMessage.
	_, code, rest, err := tlv.Split(op)
	if err != nil {
		return r, err
	}
	for _, x := range code {
		r.code = r.code<<8 | int(x)
	}
	if _, _, rest, err = tlv.Split(rest); err != nil {
		return r, err
	}
	if _, diag, _, err := tlv.Split(rest); err == nil {
		r.diag = string(diag)
	}
	return r, nil
}

// wireConn is one bound connection.
type wireConn struct {
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	buf []byte
	id  int64
}

// saslBinder binds a fresh connection with Kerberos and returns it with its layer.
type saslBinder func(nc net.Conn, isTLS bool) (net.Conn, error)

func dialWire(rawURL, name, password string, sasl saslBinder) (*wireConn, error) {
	pu, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	var nc net.Conn
	d := net.Dialer{Timeout: 5 * time.Second}
	addr := pu.Host
	if pu.Port() == "" {
		addr = net.JoinHostPort(pu.Hostname(), map[string]string{"ldap": "389", "ldaps": "636"}[pu.Scheme])
	}
	switch pu.Scheme {
	case "ldap":
		nc, err = d.Dial("tcp", addr)
	case "ldaps":
		nc, err = tls.DialWithDialer(&d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // benchmark peers use self-signed certificates
	default:
		return nil, fmt.Errorf("scheme %q: want ldap or ldaps", pu.Scheme)
	}
	if err != nil {
		return nil, err
	}
	if sasl != nil {
		bound, err := sasl(nc, pu.Scheme == "ldaps")
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = bound
	}
	c := &wireConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 64<<10)}
	if name != "" && sasl == nil {
		c.send(simpleBind(name, password))
		if err := c.w.Flush(); err != nil {
			nc.Close()
			return nil, err
		}
		resp, err := c.next("")
		if err == nil && (resp.op != 0x61 || resp.code != 0) {
			err = fmt.Errorf("bind as %s: result %d %s", name, resp.code, resp.diag)
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// send queues a request with the next message ID.
func (c *wireConn) send(op []byte, controls ...byte) {
	c.id++
	c.buf = message(c.buf[:0], c.id, op, controls...)
	c.w.Write(c.buf)
}

// enumerate runs one paged search to its end, returning the entries it gave.
func (c *wireConn) enumerate(op []byte, pageSize int) (int, error) {
	entries := 0
	var cookie []byte
	for {
		c.send(op, pagedControls(pageSize, cookie)...)
		for {
			resp, err := c.next("")
			if err != nil {
				return entries, err
			}
			if resp.op == 0x64 {
				entries++
				continue
			}
			if resp.op != 0x65 {
				continue
			}
			if resp.code != 0 {
				return entries, fmt.Errorf("paged search: result %d %s", resp.code, resp.diag)
			}
			if len(resp.cookie) == 0 {
				return entries, nil
			}
			cookie = append(cookie[:0], resp.cookie...)
			break
		}
	}
}

func (c *wireConn) next(watch string) (response, error) {
	if c.r.Buffered() == 0 {
		if err := c.w.Flush(); err != nil {
			return response{}, err
		}
	}
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	msg, err := tlv.ReadMessage(c.r, c.buf, 1<<24, nil)
	if err != nil {
		return response{}, err
	}
	c.buf = msg
	return parseResponse(msg, watch)
}
