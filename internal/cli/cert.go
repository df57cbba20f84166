package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"gmsa/internal/admin"
	"gmsa/internal/atomicfile"
	"gmsa/internal/directory"
	"gmsa/internal/pki"
)

func certCommand(e *env) *cobra.Command {
	var certOut, keyOut string
	var days int
	issue := e.adminCmd("issue ACCOUNT --cert-out FILE --key-out FILE", "Issue a TLS client certificate for an account, signed by the server's CA, for SASL EXTERNAL binds", cobra.ExactArgs(1),
		func(ctx context.Context, a admin.Admin, args []string) error {
			if certOut == "" || keyOut == "" {
				return usagef("--cert-out and --key-out are required")
			}
			if days < 1 || days > 825 {
				return usagef("--days %d: want 1 to 825", days)
			}
			en, err := a.Get(ctx, args[0], "")
			if err != nil {
				return err
			}
			if en.SID == "" || en.Class == string(directory.ClassGroup) {
				return usagef("%s is not an account: a certificate maps to a user, computer or gMSA", args[0])
			}
			certPEM, keyPEM, err := pki.IssueClient(filepath.Join(e.data, "tls"), en.SAMAccountName, en.SID, time.Duration(days)*24*time.Hour, e.now(), e.rand)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(keyOut, keyPEM, 0o600); err != nil {
				return err
			}
			if err := atomicfile.Write(certOut, certPEM, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "certificate for %s (%s) in %s, its key in %s (mode 0600)\n", en.SAMAccountName, en.SID, certOut, keyOut)
			return nil
		})
	issue.Long = `Issue a TLS client certificate for ACCOUNT signed by the CA of the server's data
directory (--data), carrying the account's SID as AD's strong certificate mapping does
(KB5014754). The server maps it to the account for a SASL EXTERNAL bind over LDAPS or
StartTLS, e.g. LDAPTLS_CERT=FILE LDAPTLS_KEY=FILE ldapsearch -Y EXTERNAL -H ldaps://…
The account's SID is read from --data, or from the DC named by --server.`
	issue.Flags().StringVar(&certOut, "cert-out", "", "write the certificate (PEM) to FILE")
	issue.Flags().StringVar(&keyOut, "key-out", "", "write its private key (PEM, mode 0600) to FILE")
	issue.Flags().IntVar(&days, "days", 365, "validity in days")
	return group("cert", "TLS client certificates for SASL EXTERNAL binds", issue)
}
