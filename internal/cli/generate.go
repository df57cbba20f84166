package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"gmsa/internal/atomicfile"
	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
)

// kdsGenerateCommand makes a root key file offline, with Add-KdsRootKey's defaults.
func kdsGenerateCommand(e *env) *cobra.Command {
	var out, effective, hash string
	var immediately bool
	c := &cobra.Command{
		Use:   "generate --out FILE",
		Short: "Generate a KDS root key file offline (for labs, tests and kds compute)",
		Long: `Generate a KDS root key as Add-KdsRootKey would, into a JSON file (mode 0600) that
--root-key-file reads. Like Add-KdsRootKey, the key becomes usable 10 hours after now
unless --effective-time or --effective-immediately says otherwise. The file holds
the secret root key data: anyone who reads it can compute every gMSA password.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out FILE is required")
			}
			h, err := kds.ParseHash(hash)
			if err != nil {
				return asUsage(err)
			}
			now := ntsec.FileTimeFromTime(e.now())
			start := now + kds.KeyCycle // Add-KdsRootKey: usable 10 h from now
			switch {
			case effective != "" && immediately:
				return usagef("give --effective-time or --effective-immediately, not both")
			case effective != "":
				if start, err = ntsec.ParseFileTime(effective); err != nil {
					return asUsage(err)
				}
			case immediately:
				start = now
			}
			var id ntsec.GUID
			data := make([]byte, kds.RootKeyDataLen)
			rand.Read(id[:])
			rand.Read(data)
			id[7] = id[7]&0x0f | 0x40 // RFC 4122 version 4 (Data3's high nibble, little-endian)
			id[8] = id[8]&0x3f | 0x80
			doc := map[string]any{
				"cn":                   id.String(),
				"msKds-RootKeyData":    hex.EncodeToString(data),
				"msKds-KDFParam":       hex.EncodeToString(kds.EncodeKDFParam(h)),
				"msKds-KDFAlgorithmID": kds.KDFAlgorithm,
				"msKds-Version":        1,
				"msKds-CreateTime":     uint64(now),
				"msKds-UseStartTime":   uint64(start),
			}
			b, err := jsonIndent(doc)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, b, 0o600); err != nil {
				return err
			}
			if e.output == "json" {
				return e.writeJSON(map[string]any{"path": out, "root_key_id": id.String(), "use_start_time": fmtTime(start)})
			}
			fmt.Fprintf(e.stdout, "wrote root key %s to %s (mode 0600); usable from %s\n", id, out, start.Time().Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write")
	c.Flags().StringVar(&effective, "effective-time", "", "when the key becomes usable (RFC 3339 or FILETIME); a past time back-dates it for a lab")
	c.Flags().BoolVar(&immediately, "effective-immediately", false, "usable from now (Windows still waits 10 h before new gMSAs use it)")
	c.Flags().StringVar(&hash, "kdf-hash", "SHA512", "KDF hash: SHA1, SHA256, SHA384 or SHA512")
	return c
}
