package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"gmsa/internal/atomicfile"
	"gmsa/internal/krbkey"
	"gmsa/internal/managedpw"
)

func keytabCommand(e *env) *cobra.Command {
	return group("keytab", "Kerberos keytabs for gMSAs", keytabCreateCommand(e))
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func keytabCreateCommand(e *env) *cobra.Command {
	var blobFlag, blobFile, out, etypesFlag string
	var spns []string
	var kvno uint32
	var acct accountFlags
	c := &cobra.Command{
		Use:   "create",
		Short: "Write a keytab from an msDS-ManagedPassword blob (current keys at --kvno, previous at --kvno - 1)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := acct.check(); err != nil {
				return err
			}
			if acct.account == "" {
				return usagef("--account NAME$ and --domain DNS are required: they name the principal and the AES salt")
			}
			if out == "" {
				return usagef("--out FILE is required")
			}
			if !cmd.Flags().Changed("kvno") {
				return usagef("--kvno is required: the account's msDS-KeyVersionNumber")
			}
			if kvno == 0 {
				return usagef("--kvno must be 1 or more")
			}
			var etypes []int32
			for _, s := range strings.Split(etypesFlag, ",") {
				et, err := krbkey.ParseEtype(s)
				if err != nil {
					return asUsage(err)
				}
				etypes = append(etypes, et)
			}
			raw, err := blobInput(blobFlag, blobFile)
			if err != nil {
				return err
			}
			b, err := managedpw.Decode(raw)
			if err != nil {
				return asUsage(err)
			}
			principals := []krbkey.Principal{{Realm: acct.realm, Components: []string{acct.account}, NameType: krbkey.NameTypePrincipal}}
			for _, s := range spns {
				p, err := krbkey.ParsePrincipal(s, acct.realm)
				if err != nil {
					return asUsage(err)
				}
				principals = append(principals, p)
			}
			kt := &krbkey.Keytab{}
			ts := uint32(e.now().Unix())
			add := func(pw []byte, v uint32) error {
				keys, err := krbkey.AccountKeys(pw, acct.salt(), etypes)
				if err != nil {
					return err
				}
				for _, p := range principals {
					for _, k := range keys {
						kt.Entries = append(kt.Entries, krbkey.KeytabEntry{Principal: p, Timestamp: ts, KVNO: v, Key: k})
					}
				}
				return nil
			}
			if err := add(b.Current, kvno); err != nil {
				return err
			}
			if b.Previous != nil && kvno > 1 {
				if err := add(b.Previous, kvno-1); err != nil {
					return err
				}
			}
			data, err := kt.Marshal()
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, data, 0o600); err != nil {
				return err
			}
			if e.output == "json" {
				return e.writeJSON(map[string]any{"path": out, "entries": len(kt.Entries), "kvno": kvno, "previous": b.Previous != nil && kvno > 1})
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d keys for %d principals at kvno %d", out, len(kt.Entries), len(principals), kvno)
			if b.Previous != nil && kvno > 1 {
				fmt.Fprintf(e.stdout, " and the previous password at kvno %d", kvno-1)
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&blobFlag, "blob", "", "msDS-ManagedPassword as hex or base64")
	f.StringVar(&blobFile, "blob-file", "", "read the blob from FILE: raw bytes, hex, base64 or ldapsearch LDIF")
	f.StringVar(&out, "out", "", "keytab file to write (mode 0600, replaced atomically)")
	f.Uint32Var(&kvno, "kvno", 0, "key version number of the current password (msDS-KeyVersionNumber)")
	f.StringArrayVar(&spns, "spn", nil, "service principal name to add (repeatable), e.g. http/web.example.test")
	f.StringVar(&etypesFlag, "enctypes", "aes256,aes128", "encryption types: aes256, aes128, rc4")
	acct.register(c)
	return c
}
