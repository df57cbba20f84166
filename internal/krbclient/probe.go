package krbclient

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Probe is what an AS-REQ without pre-authentication tells about the DC and the
// account: the KDC's time, its answer for the account, and the account's enctypes and
// salts (ETYPE-INFO2, RFC 4120 §5.2.7.5).
type Probe struct {
	Transport string // udp or tcp
	STime     time.Time
	RTT       time.Duration
	Code      int32 // the KRB-ERROR code, 0 for an AS-REP
	Text      string
	Etypes    []types.ETypeInfo2Entry
}

// ProbeKDC sends an AS-REQ for the account's TGT without pre-authentication over
// UDP, or TCP when asked.
func ProbeKDC(kdc, realm, principal string, proto string, timeout time.Duration, now func() time.Time) (*Probe, error) {
	cfg := config.New()
	cfg.LibDefaults.DefaultTktEnctypeIDs = []int32{18, 17, 23}
	cfg.LibDefaults.DefaultTGSEnctypeIDs = cfg.LibDefaults.DefaultTktEnctypeIDs
	cfg.LibDefaults.PermittedEnctypeIDs = cfg.LibDefaults.DefaultTktEnctypeIDs
	req, err := messages.NewASReqForTGT(realm, cfg, types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, principal))
	if err != nil {
		return nil, err
	}
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	start := now()
	c, err := net.DialTimeout(proto, kdc, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	var reply []byte
	if proto == "udp" {
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		reply = buf[:n]
	} else {
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
			return nil, err
		}
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 1<<20 {
			return nil, fmt.Errorf("krbclient: a KDC reply of %d bytes", n)
		}
		reply = make([]byte, n)
		if _, err := io.ReadFull(c, reply); err != nil {
			return nil, err
		}
	}
	p, err := ParseProbeReply(reply, now)
	if err != nil {
		return nil, err
	}
	p.Transport, p.RTT = proto, now().Sub(start)
	return p, nil
}

// ParseProbeReply reads the KDC's answer to the probe: a KRB-ERROR with its time, code
// and, for PREAUTH_REQUIRED, the account's ETYPE-INFO2; anything else is taken as an
// AS-REP (an account without pre-authentication).
func ParseProbeReply(reply []byte, now func() time.Time) (p *Probe, err error) {
	defer func() { // gokrb5's decoders panic on some malformed input
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("krbclient: the KDC's reply broke the Kerberos decoder (%v)", r)
		}
	}()
	p = &Probe{}
	if len(reply) == 0 || reply[0] != 0x7e {
		p.STime = now()
		return p, nil
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(reply); err != nil {
		return nil, fmt.Errorf("krbclient: the KDC's reply does not decode: %w", err)
	}
	p.Code, p.Text = ke.ErrorCode, ke.EText
	p.STime = ke.STime.Add(time.Duration(ke.Susec) * time.Microsecond)
	if ke.ErrorCode == errorcode.KDC_ERR_PREAUTH_REQUIRED && len(ke.EData) > 0 {
		var pas types.PADataSequence
		if pas.Unmarshal(ke.EData) == nil {
			for _, pa := range pas {
				if pa.PADataType == patype.PA_ETYPE_INFO2 {
					var info types.ETypeInfo2
					if info.Unmarshal(pa.PADataValue) == nil {
						p.Etypes = info
					}
				}
			}
		}
	}
	return p, nil
}

// ErrorName is a KRB-ERROR code's name.
func ErrorName(code int32) string {
	s := errorcode.Lookup(code)
	if i := strings.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	return s
}
