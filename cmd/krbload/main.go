// Command krbload is a bounded, loopback-only Kerberos load generator for the
// benchmarks: C clients, each sending AS-REQs with PA-ENC-TIMESTAMP (one round trip,
// as impacket sends them) or TGS-REQs for a service with a TGT it got once (with an
// authenticator checksum over the body, as MIT sends them), over UDP, for a fixed time.
// Replies are checked by message type only. Every request is built anew — fresh nonce,
// timestamp and confounder — directly in DER with the session's usage keys derived once,
// so that the tool costs little beside the KDC it measures on shared processors.
//
//	krbload -kdc 127.0.0.1:88 -realm EXAMPLE.TEST -user alice -password PW -salt EXAMPLE.TESTalice \
//	  -mode tgs -service HTTP/svc.example.test -c 4 -d 5s
package main

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
	"gmsa/internal/krbmsg"
)

func main() {
	kdc := flag.String("kdc", "127.0.0.1:88", "KDC address (loopback only)")
	realm := flag.String("realm", "EXAMPLE.TEST", "realm")
	user := flag.String("user", "", "client principal")
	password := flag.String("password", "", "client password")
	salt := flag.String("salt", "", "AES salt (default REALM+user, a user's salt)")
	mode := flag.String("mode", "as", "as or tgs")
	service := flag.String("service", "", "service principal for -mode tgs, e.g. HTTP/svc.example.test")
	conns := flag.Int("c", 1, "concurrent clients")
	tcp := flag.Bool("tcp", false, "every request over a new TCP connection (default UDP, TCP when the reply is too big)")
	dur := flag.Duration("d", 5*time.Second, "duration")
	flag.Parse()
	if *conns < 1 || *conns > 256 || *dur <= 0 || *dur > 10*time.Minute || *user == "" || (*mode == "tgs" && *service == "") {
		fmt.Fprintln(os.Stderr, "krbload: bounds: 1 ≤ -c ≤ 256, 0 < -d ≤ 10m; -user, and -service with -mode tgs, are required")
		os.Exit(2)
	}
	if err := loopbackOnly(*kdc); err != nil {
		fmt.Fprintln(os.Stderr, "krbload:", err)
		os.Exit(2)
	}
	l, err := newLoad(*kdc, *realm, *user, *password, *salt, *service, *tcp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "krbload:", err)
		os.Exit(1)
	}
	if *mode == "tgs" {
		if err := l.login(*password); err != nil {
			fmt.Fprintln(os.Stderr, "krbload: getting a TGT:", err)
			os.Exit(1)
		}
	}
	res := l.run(*mode, *conns, *dur)
	fmt.Printf("kdc=%s mode=%s tcp=%v c=%d ops=%d rate=%.0f/s errors=%d\n", *kdc, *mode, *tcp, *conns, res.ops, float64(res.ops)/dur.Seconds(), res.errors)
	if res.ops == 0 {
		os.Exit(1)
	}
}

// loopbackOnly refuses any target off this machine.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("target %q is not a loopback address; this tool only loads local test servers", host)
	}
	return nil
}

func aesKey(password, salt string) (types.EncryptionKey, error) {
	et, err := crypto.GetEtype(18)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	k, err := et.StringToKey(password, salt, "00001000") // 4096 iterations, RFC 3962
	return types.EncryptionKey{KeyType: 18, KeyValue: k}, err
}

// newLoad prepares the client's key and its PA-ENC-TIMESTAMP usage key; salt "" is a
// user's (REALM + user).
func newLoad(kdc, realm, user, password, salt, service string, tcp bool) (*load, error) {
	if salt == "" {
		salt = realm + user
	}
	l := &load{kdc: kdc, realm: realm, user: user, service: service, tcp: tcp,
		cname: types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{user}},
		sname: types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}}}
	if service != "" {
		l.tgs = types.NewPrincipalName(nametype.KRB_NT_SRV_INST, service)
	}
	var err error
	if l.key, err = aesKey(password, salt); err == nil {
		l.tsKey, err = krbkey.NewUsageKey(l.key.KeyValue, keyusage.AS_REQ_PA_ENC_TIMESTAMP)
	}
	return l, err
}

type load struct {
	kdc, realm, user, service string
	tcp                       bool
	key                       types.EncryptionKey
	tgt                       messages.Ticket
	session                   types.EncryptionKey

	tsKey             *krbkey.UsageKey // the client key for PA-ENC-TIMESTAMP
	bodySum, authKey  *krbkey.UsageKey // the TGT session key for the body checksum and the authenticator
	cname, sname, tgs types.PrincipalName
}

// login gets a TGT with gokrb5's client, for the TGS load, and prepares the session
// key's usage keys: a client reuses them for every request of its session.
func (l *load) login(password string) error {
	cfg, err := config.NewFromString(fmt.Sprintf("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n"+
		" default_tkt_enctypes = aes256-cts-hmac-sha1-96\n default_tgs_enctypes = aes256-cts-hmac-sha1-96\n"+
		"[realms]\n %s = {\n  kdc = %s\n }\n", l.realm, l.realm, l.kdc))
	if err != nil {
		return err
	}
	c := client.NewWithPassword(l.user, l.realm, password, cfg, client.DisablePAFXFAST(true))
	if err := c.Login(); err != nil {
		return err
	}
	tgt, key, err := c.GetServiceTicket("krbtgt/" + l.realm)
	if err != nil {
		return err
	}
	l.tgt, l.session = tgt, key
	if l.bodySum, err = krbkey.NewUsageKey(key.KeyValue, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM); err != nil {
		return err
	}
	l.authKey, err = krbkey.NewUsageKey(key.KeyValue, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	return err
}

// body is a KDC-REQ-BODY for sname: AES-256 only, a fresh nonce; an AS-REQ (cname)
// asks for a forwardable and renewable TGT as kinit -f -r does, a TGS-REQ for no
// option (the TGT from gokrb5 is neither, and a KDC may refuse options its TGT lacks).
func (l *load) body(sname types.PrincipalName, now time.Time, cname bool) []byte {
	opts := types.NewKrbFlags()
	b := messages.KDCReqBody{KDCOptions: opts, Realm: l.realm, SName: sname, Till: now.Add(10 * time.Hour),
		Nonce: int(rand.Uint32() >> 1), EType: []int32{krbkey.EtypeAES256CTSHMACSHA}}
	if cname {
		types.SetFlag(&b.KDCOptions, flags.Forwardable)
		types.SetFlag(&b.KDCOptions, flags.Renewable)
		b.CName, b.RTime = l.cname, now.Add(7*24*time.Hour)
	}
	return krbmsg.KDCReqBody(&b)
}

func confounder() []byte {
	var c [krbkey.ConfounderSize]byte
	crand.Read(c[:])
	return c[:]
}

// asReq is an AS-REQ for krbtgt with PA-ENC-TIMESTAMP under the client's key.
func (l *load) asReq(now time.Time) ([]byte, error) {
	ts := l.tsKey.Encrypt(nil, confounder(), krbmsg.PAEncTSEnc(now, now.Nanosecond()/1000))
	pa := krbmsg.EncryptedData(types.EncryptedData{EType: krbkey.EtypeAES256CTSHMACSHA, Cipher: ts})
	return krbmsg.KDCReq(krbmsg.AppASReq, []types.PAData{{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: pa}}, l.body(l.sname, now, true)), nil
}

// tgsReq is a TGS-REQ for the service with the TGT, its authenticator's checksum over
// the body ([RFC 4120] 7.2.2 key usage 6).
func (l *load) tgsReq(now time.Time) ([]byte, error) {
	body := l.body(l.tgs, now, false)
	auth := types.Authenticator{AVNO: 5, CRealm: l.realm, CName: l.cname, CTime: now.Truncate(time.Second), Cusec: now.Nanosecond() / 1000,
		Cksum: types.Checksum{CksumType: 16, Checksum: l.bodySum.Checksum(body)}}
	enc := types.EncryptedData{EType: l.session.KeyType, Cipher: l.authKey.Encrypt(nil, confounder(), krbmsg.Authenticator(&auth))}
	ap := krbmsg.APReq(types.NewKrbFlags(), &l.tgt, enc)
	return krbmsg.KDCReq(krbmsg.AppTGSReq, []types.PAData{{PADataType: patype.PA_TGS_REQ, PADataValue: ap}}, body), nil
}

type result struct{ ops, errors int64 }

// run keeps c clients busy for d, each with one request in flight over UDP.
func (l *load) run(mode string, c int, d time.Duration) result {
	var ops, errs atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	want := byte(0x6b) // AS-REP
	if mode == "tgs" {
		want = 0x6d // TGS-REP
	}
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", l.kdc)
			if err != nil {
				errs.Add(1)
				return
			}
			defer conn.Close()
			buf := make([]byte, 65536)
			for time.Now().Before(deadline) {
				var req []byte
				if mode == "tgs" {
					req, err = l.tgsReq(time.Now())
				} else {
					req, err = l.asReq(time.Now())
				}
				if err == nil && l.tcp {
					var n int
					if n, err = l.overTCP(req, buf); err == nil && (n == 0 || buf[0] != want) {
						err = errors.New("unexpected reply")
					}
				} else if err == nil {
					conn.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err = conn.Write(req); err == nil {
						var n int
						n, err = conn.Read(buf)
						if err == nil && n > 0 && buf[0] == 0x7e && tooBig(buf[:n]) { // as clients do: again over TCP
							n, err = l.overTCP(req, buf)
						}
						if err == nil && (n == 0 || buf[0] != want) {
							err = errors.New("unexpected reply")
							var ke messages.KRBError
							if n > 0 && ke.Unmarshal(buf[:n]) == nil {
								err = ke
							}
						}
					}
				}
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					continue
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(string); ok {
		fmt.Fprintln(os.Stderr, "krbload: first error:", e)
	}
	return result{ops.Load(), errs.Load()}
}

// tooBig reports KRB_ERR_RESPONSE_TOO_BIG.
func tooBig(b []byte) bool {
	var ke messages.KRBError
	return ke.Unmarshal(b) == nil && ke.ErrorCode == 52
}

// overTCP sends one request over a new TCP connection ([RFC 4120] 7.2.2).
func (l *load) overTCP(req, buf []byte) (int, error) {
	c, err := net.DialTimeout("tcp", l.kdc, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(req))), req...)); err != nil { // one segment
		return 0, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > len(buf) {
		return 0, fmt.Errorf("a %d-byte reply", n)
	}
	return io.ReadFull(c, buf[:n])
}
