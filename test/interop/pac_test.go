//go:build interop

package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

// The PAC of a service ticket from our KDC, read by two decoders that are not ours:
// impacket's PAC structures and Samba's ndrdump (krb5pac.idl).
func TestPACWithImpacketAndNdrdump(t *testing.T) {
	data, ep := ourServer(t)
	dir := filepath.Dir(data)
	keytab := filepath.Join(dir, "pac01.keytab")
	if out, errOut, code := run(nil, "", gmsaBin, "computer", "new", "PAC01", "--write-keytab", keytab, "--server", ep["ldaps"], "--ca-file", ep["ca"],
		"--user", "Administrator@example.test", "--password-file", filepath.Join(data, "admin-password")); code != 0 {
		t.Fatalf("computer new: %s %s", out, errOut)
	}
	b, err := os.ReadFile(keytab)
	if err != nil {
		t.Fatal(err)
	}
	kt, err := krbkey.ParseKeytab(b)
	if err != nil {
		t.Fatal(err)
	}
	var key types.EncryptionKey
	for _, e := range kt.Entries {
		if e.Key.Etype == krbkey.EtypeAES256CTSHMACSHA && e.Principal.String() == "HOST/pac01.example.test@EXAMPLE.TEST" {
			key = types.EncryptionKey{KeyType: e.Key.Etype, KeyValue: e.Key.Value}
		}
	}
	cfg, err := config.NewFromString(fmt.Sprintf("[libdefaults]\n default_realm = EXAMPLE.TEST\n dns_lookup_kdc = false\n"+
		"[realms]\n EXAMPLE.TEST = {\n  kdc = %s\n }\n", ep["kdc"]))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewWithPassword("websvc", "EXAMPLE.TEST", "Web-Pass-123!", cfg, client.DisablePAFXFAST(true))
	if err := c.Login(); err != nil {
		t.Fatal(err)
	}
	tkt, _, err := c.GetServiceTicket("HOST/pac01.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := tkt.Decrypt(key); err != nil {
		t.Fatalf("the service ticket does not decrypt with the computer's keytab key: %v", err)
	}
	var raw []byte
	for _, ad := range tkt.DecryptedEncPart.AuthorizationData {
		var inner types.AuthorizationData
		if ad.ADType == 1 && func() error { _, err := asn1.Unmarshal(ad.ADData, &inner); return err }() == nil {
			for _, e := range inner {
				if e.ADType == 128 {
					raw = e.ADData
				}
			}
		}
	}
	if raw == nil {
		t.Fatal("no PAC in the service ticket")
	}
	pacFile := filepath.Join(dir, "pac.bin")
	os.WriteFile(pacFile, raw, 0o644)

	// impacket: every buffer of the PACTYPE, with the validation info's names and RIDs.
	script := filepath.Join(dir, "impacket_pac.py")
	os.WriteFile(script, []byte(impacketPAC), 0o644)
	out, errOut, code := run(nil, "", "/usr/bin/python3", script, pacFile)
	if code != 0 || !strings.Contains(out, "EffectiveName websvc") || !strings.Contains(out, "LogonDomainName EXAMPLE") ||
		!strings.Contains(out, "ClientName websvc") || !strings.Contains(out, "Upn websvc@example.test") || !strings.Contains(out, "types 1,10,12,6,7,16,19") {
		t.Fatalf("impacket: exit %d\n%s%s", code, out, errOut)
	}

	// Samba's ndrdump, from the peers' chroot.
	inside, err := os.MkdirTemp(filepath.Join(peerRoot(t), "tmp"), "gmsa-pac-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(inside)
	os.WriteFile(filepath.Join(inside, "pac.bin"), raw, 0o644)
	out, errOut, code = run(nil, "", "bash", "peers.sh", "chroot", "ndrdump", "krb5pac", "PAC_DATA", "struct", "/tmp/"+filepath.Base(inside)+"/pac.bin")
	if code != 0 || !strings.Contains(out, "dump OK") || !strings.Contains(out, "websvc") || !strings.Contains(out, "EXAMPLE") {
		t.Fatalf("ndrdump: exit %d\n%s%s", code, out, errOut)
	}
}

// impacketPAC prints what impacket reads of a PAC.
const impacketPAC = `import sys
from impacket.krb5.pac import PACTYPE, PAC_INFO_BUFFER, VALIDATION_INFO, PAC_CLIENT_INFO, UPN_DNS_INFO
data = open(sys.argv[1], "rb").read()
pac = PACTYPE(data)
types = []
buf = pac["Buffers"]
for i in range(pac["cBuffers"]):
    info = PAC_INFO_BUFFER(buf)
    buf = buf[len(info):]
    types.append(str(info["ulType"]))
    body = data[info["Offset"]:info["Offset"] + info["cbBufferSize"]]
    if info["ulType"] == 1:
        vi = VALIDATION_INFO()
        vi.fromString(body)
        n = len(vi.getData())
        vi.fromStringReferents(body, n)
        v = vi["Data"]
        print("EffectiveName", v["EffectiveName"])
        print("LogonDomainName", v["LogonDomainName"])
        print("UserId", v["UserId"], "PrimaryGroupId", v["PrimaryGroupId"], "GroupCount", v["GroupCount"])
    elif info["ulType"] == 10:
        ci = PAC_CLIENT_INFO(body)
        print("ClientName", ci["Name"].decode("utf-16-le"))
    elif info["ulType"] == 12:
        u = UPN_DNS_INFO(body)
        print("Upn", body[u["UpnOffset"]:u["UpnOffset"] + u["UpnLength"]].decode("utf-16-le"))
print("types", ",".join(types))
`
