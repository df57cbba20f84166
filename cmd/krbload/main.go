// Command krbload is a bounded, loopback-only Kerberos load generator for the
// benchmarks: C clients, each sending AS-REQs with PA-ENC-TIMESTAMP (one round trip,
// as impacket sends them) or TGS-REQs for a service with a TGT it got once, over UDP,
// for a fixed time. Replies are checked by message type only. Requests are built with
// gokrb5 (140 µs of CPU per AS exchange, 300 µs per TGS exchange on the benchmark
// machine), which caps what two shared processors can show of a fast KDC.
//
//	krbload -kdc 127.0.0.1:88 -realm EXAMPLE.TEST -user alice -password PW -salt EXAMPLE.TESTalice \
//	  -mode tgs -service HTTP/svc.example.test -c 4 -d 5s
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
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
	if *salt == "" {
		*salt = *realm + *user
	}
	l := &load{kdc: *kdc, realm: *realm, user: *user, service: *service, tcp: *tcp}
	var err error
	if l.asCfg, err = config.NewFromString("[libdefaults]\n default_realm = " + l.realm + "\n default_tkt_enctypes = aes256-cts-hmac-sha1-96\n"); err == nil {
		l.tgsCfg, err = config.NewFromString("[libdefaults]\n default_realm = " + l.realm + "\n default_tgs_enctypes = aes256-cts-hmac-sha1-96\n")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "krbload:", err)
		os.Exit(1)
	}
	if l.key, err = aesKey(*password, *salt); err != nil {
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

type load struct {
	kdc, realm, user, service string
	tcp                       bool
	key                       types.EncryptionKey
	tgt                       messages.Ticket
	session                   types.EncryptionKey
	asCfg, tgsCfg             *config.Config // parsed once: gokrb5 reads enctypes from them
}

// login gets a TGT with gokrb5's client, for the TGS load.
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
	l.tgt, l.session = tgt, key
	return err
}

// asReq is an AS-REQ for krbtgt with PA-ENC-TIMESTAMP under the client's key.
func (l *load) asReq(now time.Time) ([]byte, error) {
	req, err := messages.NewASReqForTGT(l.realm, l.asCfg, types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{l.user}})
	if err != nil {
		return nil, err
	}
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now.UTC(), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return nil, err
	}
	ed, err := crypto.GetEncryptedData(ts, l.key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, 0)
	if err != nil {
		return nil, err
	}
	b, err := ed.Marshal()
	if err != nil {
		return nil, err
	}
	req.PAData = types.PADataSequence{{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: b}}
	return req.Marshal()
}

// tgsReq is a TGS-REQ for the service with the TGT.
func (l *load) tgsReq() ([]byte, error) {
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, l.service)
	req, err := messages.NewTGSReq(types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{l.user}}, l.realm, l.tgsCfg, l.tgt, l.session, sname, false)
	if err != nil {
		return nil, err
	}
	return req.Marshal()
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
					req, err = l.tgsReq()
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
