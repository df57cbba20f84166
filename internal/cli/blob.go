package cli

import (
	"bytes"

	"github.com/spf13/cobra"

	"gmsa/internal/ldif"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
)

func blobCommand(e *env) *cobra.Command {
	return group("blob", "msDS-ManagedPassword blobs", blobDecodeCommand(e))
}

func blobDecodeCommand(e *env) *cobra.Command {
	var file string
	var acct accountFlags
	c := &cobra.Command{
		Use:   "decode [HEX|BASE64]",
		Short: "Decode an msDS-ManagedPassword blob: passwords, NT hashes, intervals, AES keys",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := acct.check(); err != nil {
				return err
			}
			inline := ""
			if len(args) == 1 {
				inline = args[0]
			}
			raw, err := blobInput(inline, file)
			if err != nil {
				return err
			}
			b, err := managedpw.Decode(raw)
			if err != nil {
				return asUsage(err)
			}
			return e.printBlob(b, &acct)
		},
	}
	c.Flags().StringVar(&file, "file", "", "read the blob from FILE: raw bytes, hex, base64, or ldapsearch's LDIF output (folded lines included)")
	acct.register(c)
	return c
}

func (e *env) printBlob(b *managedpw.Blob, acct *accountFlags) error {
	cur, err := acct.credentials(b.Current)
	if err != nil {
		return err
	}
	var prev *credentials
	if b.Previous != nil {
		p, err := acct.credentials(b.Previous)
		if err != nil {
			return err
		}
		prev = &p
	}
	if e.output == "json" {
		m := map[string]any{
			"current_password_hex":        cur.PasswordHex,
			"current_nt_hash":             cur.NTHash,
			"previous_password_hex":       nil,
			"previous_nt_hash":            nil,
			"query_password_interval":     b.QueryInterval,
			"unchanged_password_interval": b.UnchangedInterval,
		}
		if acct.account != "" {
			m["current_aes256_key"], m["current_aes128_key"] = *cur.AES256, *cur.AES128
			m["previous_aes256_key"], m["previous_aes128_key"] = nil, nil
		}
		if prev != nil {
			m["previous_password_hex"], m["previous_nt_hash"] = prev.PasswordHex, prev.NTHash
			if acct.account != "" {
				m["previous_aes256_key"], m["previous_aes128_key"] = *prev.AES256, *prev.AES128
			}
		}
		return e.writeJSON(m)
	}
	rows := cur.rows("current ")
	if prev != nil {
		rows = append(rows, prev.rows("previous ")...)
	} else {
		rows = append(rows, [2]string{"previous password", "none"})
	}
	rows = append(rows,
		[2]string{"query interval", ntsec.FormatTicks(b.QueryInterval) + " (" + u64(b.QueryInterval) + ")"},
		[2]string{"unchanged interval", ntsec.FormatTicks(b.UnchangedInterval) + " (" + u64(b.UnchangedInterval) + ")"})
	e.table(rows)
	return nil
}

func u64(v uint64) string { return itoa(v) }

// blobInput reads the blob inline or from a file; a file holding LDIF (ldapsearch's
// output of msDS-ManagedPassword) gives the one entry's value.
func blobInput(inline, file string) ([]byte, error) {
	if file != "" && inline == "" {
		b, err := readFile(file)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(bytes.ToLower(b), []byte("msds-managedpassword:")) {
			entries, err := ldif.Parse(b)
			if err != nil {
				return nil, usagef("%s: %v", file, err)
			}
			var blobs [][]byte
			for _, e := range entries {
				blobs = append(blobs, e.Get("msDS-ManagedPassword")...)
			}
			if len(blobs) != 1 {
				return nil, usagef("%s holds %d msDS-ManagedPassword values; search for one account (its sAMAccountName) and try again", file, len(blobs))
			}
			return blobs[0], nil
		}
	}
	return binaryInput("the blob", inline, file)
}
