package cli

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
)

func kdsCommand(e *env) *cobra.Command {
	return group("kds", "KDS root keys and gMSA password derivation",
		append([]*cobra.Command{kdsComputeCommand(e), kdsGenerateCommand(e)}, e.adminKDSCommands()...)...)
}

// accountFlags name an account for its Kerberos keys.
type accountFlags struct {
	account, domain, realm string
}

func (a *accountFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&a.account, "account", "", "sAMAccountName of the gMSA (name$), for Kerberos keys")
	c.Flags().StringVar(&a.domain, "domain", "", "DNS domain name, for Kerberos keys")
	c.Flags().StringVar(&a.realm, "realm", "", "Kerberos realm (default: the domain in upper case)")
}

func (a *accountFlags) check() error {
	if (a.account == "") != (a.domain == "") {
		return usagef("--account and --domain go together (both are needed for the AES salt)")
	}
	if a.account != "" && !strings.HasSuffix(a.account, "$") {
		return usagef("--account %q: a gMSA's sAMAccountName ends with $", a.account)
	}
	if a.realm == "" {
		a.realm = strings.ToUpper(a.domain)
	}
	return nil
}

func (a *accountFlags) salt() string { return krbkey.ComputerSalt(a.realm, a.account, a.domain) }

// credentials are the derived values of one password, as JSON fields.
type credentials struct {
	PasswordHex    string  `json:"password_hex"`
	PasswordBase64 string  `json:"password_base64"`
	NTHash         string  `json:"nt_hash"`
	AES256         *string `json:"aes256_key,omitempty"`
	AES128         *string `json:"aes128_key,omitempty"`
}

func (a *accountFlags) credentials(pw []byte) (credentials, error) {
	nt := krbkey.NTHash(pw)
	c := credentials{PasswordHex: hex.EncodeToString(pw), PasswordBase64: base64.StdEncoding.EncodeToString(pw), NTHash: hex.EncodeToString(nt[:])}
	if a.account == "" {
		return c, nil
	}
	keys, err := krbkey.AccountKeys(pw, a.salt(), []int32{krbkey.EtypeAES256CTSHMACSHA, krbkey.EtypeAES128CTSHMACSHA})
	if err != nil {
		return c, err
	}
	k256, k128 := hex.EncodeToString(keys[0].Value), hex.EncodeToString(keys[1].Value)
	c.AES256, c.AES128 = &k256, &k128
	return c, nil
}

func (c credentials) rows(prefix string) [][2]string {
	r := [][2]string{{prefix + "password", c.PasswordHex}, {prefix + "NT hash", c.NTHash}}
	if c.AES256 != nil {
		r = append(r, [2]string{prefix + "AES256 key", *c.AES256}, [2]string{prefix + "AES128 key", *c.AES128})
	}
	return r
}

type computeResult struct {
	RootKeyID   string  `json:"root_key_id"`
	KDFHash     string  `json:"kdf_hash"`
	SID         string  `json:"sid"`
	GKID        []int32 `json:"gkid"`
	PeriodStart string  `json:"period_start"`
	credentials
	// Schedule mode only.
	At                *string     `json:"at,omitempty"`
	Previous          *prevResult `json:"-"`
	QueryInterval     *uint64     `json:"query_password_interval,omitempty"`
	UnchangedInterval *uint64     `json:"unchanged_password_interval,omitempty"`
	Blob              *string     `json:"managed_password_blob,omitempty"`
	PasswordID        *string     `json:"password_id,omitempty"`
}

type prevResult struct {
	GKID []int32 `json:"previous_gkid"`
	credentials
}

func kdsComputeCommand(e *env) *cobra.Command {
	var keys rootKeyFlags
	var acct accountFlags
	var sidFlag, gkidFlag, idFlag, atFlag, createdFlag string
	var interval int64
	c := &cobra.Command{
		Use:   "compute",
		Short: "Compute a gMSA password offline from a KDS root key, like a DC does",
		Long: `Compute a gMSA password from a KDS root key and the account's SID, exactly as a
domain controller derives it. Choose the key period with exactly one of:
  --gkid L0,L1,L2                         a key period
  --password-id HEX|BASE64                the period msDS-ManagedPasswordId names
  --at TIME                               the key period containing TIME
  --created TIME --interval-days N [--at TIME]
                                          the password in force at TIME (default now) by
                                          the DC's rotation schedule, with the previous one
TIME is RFC 3339 (2024-01-02T15:04:05Z) or a FILETIME integer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := acct.check(); err != nil {
				return err
			}
			rks, err := keys.load()
			if err != nil {
				return err
			}
			if sidFlag == "" {
				return usagef("--sid is required: the gMSA's objectSid")
			}
			sid, err := parseSID(sidFlag)
			if err != nil {
				return err
			}
			modes := 0
			for _, set := range []bool{gkidFlag != "", idFlag != "", createdFlag != "", atFlag != "" && createdFlag == ""} {
				if set {
					modes++
				}
			}
			if modes != 1 {
				return usagef("choose the period with exactly one of --gkid, --password-id, --at, or --created with --interval-days")
			}
			if createdFlag != "" {
				return computeSchedule(e, rks, sid, &acct, createdFlag, atFlag, interval)
			}
			if cmd.Flags().Changed("interval-days") {
				return usagef("--interval-days goes with --created")
			}
			var g kds.GKID
			var named *ntsec.GUID
			switch {
			case gkidFlag != "":
				if g, err = parseGKID(gkidFlag); err != nil {
					return err
				}
			case idFlag != "":
				raw, err := decodeBinary("--password-id", idFlag)
				if err != nil {
					return err
				}
				id, err := kds.ParsePasswordID(raw)
				if err != nil {
					return asUsage(err)
				}
				g, named = id.GKID, &id.RootKeyID
			default:
				at, err := ntsec.ParseFileTime(atFlag)
				if err != nil {
					return asUsage(err)
				}
				g = kds.GKIDAt(at)
			}
			rk, err := pickRootKey(rks, g, named)
			if err != nil {
				return err
			}
			pw, err := kds.DerivePassword(rk, g, sid.Bytes())
			if err != nil {
				return err
			}
			res := computeResult{RootKeyID: rk.ID.String(), KDFHash: rk.Hash.String(), SID: sid.String(),
				GKID: []int32{g.L0, g.L1, g.L2}, PeriodStart: fmtTime(g.Start())}
			if res.credentials, err = acct.credentials(pw[:]); err != nil {
				return err
			}
			return e.printCompute(&res)
		},
	}
	f := c.Flags()
	f.StringVar(&keys.id, "root-key-id", "", "root key GUID (its cn)")
	f.StringVar(&keys.data, "root-key-data", "", "msKds-RootKeyData, 64 bytes as hex or base64")
	f.StringVar(&keys.hash, "kdf-hash", "SHA512", "the root key's KDF hash: SHA1, SHA256, SHA384 or SHA512")
	f.StringVar(&keys.file, "root-key-file", "", "LDIF or JSON with msKds-ProvRootKey attributes (one or several keys)")
	f.StringVar(&sidFlag, "sid", "", "the gMSA's objectSid (S-1-5-21-…, or hex/base64 binary)")
	f.StringVar(&gkidFlag, "gkid", "", "key period L0,L1,L2")
	f.StringVar(&idFlag, "password-id", "", "msDS-ManagedPasswordId as hex or base64")
	f.StringVar(&atFlag, "at", "", "a time: the key period containing it, or with --created the instant of the schedule")
	f.StringVar(&createdFlag, "created", "", "the gMSA's whenCreated, to apply the rotation schedule")
	f.Int64Var(&interval, "interval-days", 30, "msDS-ManagedPasswordInterval in days, with --created")
	acct.register(c)
	return c
}

// pickRootKey chooses the root key for period g: the one a password id names, the only
// one given, or the newest usable at the period's start.
func pickRootKey(keys []kds.RootKey, g kds.GKID, named *ntsec.GUID) (*kds.RootKey, error) {
	var rk *kds.RootKey
	var err error
	switch {
	case named != nil:
		if rk, err = kds.FindRootKey(keys, *named); err != nil {
			return nil, usagef("the password id names root key %s, which was not given", named)
		}
	case len(keys) == 1:
		rk = &keys[0]
	default:
		if rk, err = kds.SelectRootKey(keys, g.Start()); err != nil {
			return nil, asUsage(err)
		}
	}
	if err := rk.ValidFor(g.Start()); err != nil {
		return nil, asUsage(err)
	}
	return rk, nil
}

func computeSchedule(e *env, rks []kds.RootKey, sid ntsec.SID, acct *accountFlags, createdFlag, atFlag string, days int64) error {
	created, err := ntsec.ParseFileTime(createdFlag)
	if err != nil {
		return asUsage(err)
	}
	at := ntsec.FileTimeFromTime(e.now())
	if atFlag != "" {
		if at, err = ntsec.ParseFileTime(atFlag); err != nil {
			return asUsage(err)
		}
	}
	plan, err := kds.PlanPasswords(kds.Account{Created: created, IntervalDays: days}, rks, at)
	if err != nil {
		if errors.Is(err, kds.ErrBadInterval) || errors.Is(err, kds.ErrNoRootKey) || at < created {
			return asUsage(err)
		}
		return err
	}
	derive := func(ref kds.KeyRef) (kds.Password, error) {
		return kds.DerivePassword(ref.RootKey, ref.GKID, sid.Bytes())
	}
	pw, err := derive(plan.Current)
	if err != nil {
		return err
	}
	g := plan.Current.GKID
	atStr := fmtTime(at)
	res := computeResult{RootKeyID: plan.Current.RootKey.ID.String(), KDFHash: plan.Current.RootKey.Hash.String(), SID: sid.String(),
		GKID: []int32{g.L0, g.L1, g.L2}, PeriodStart: fmtTime(g.Start()), At: &atStr,
		QueryInterval: &plan.Query, UnchangedInterval: &plan.Unchanged}
	if res.credentials, err = acct.credentials(pw[:]); err != nil {
		return err
	}
	blob := managedpw.Blob{Current: pw[:], QueryInterval: plan.Query, UnchangedInterval: plan.Unchanged}
	if plan.Previous != nil {
		prev, err := derive(*plan.Previous)
		if err != nil {
			return err
		}
		pg := plan.Previous.GKID
		res.Previous = &prevResult{GKID: []int32{pg.L0, pg.L1, pg.L2}}
		if res.Previous.credentials, err = acct.credentials(prev[:]); err != nil {
			return err
		}
		blob.Previous = prev[:]
	}
	b64 := base64.StdEncoding.EncodeToString(blob.Encode())
	res.Blob = &b64
	if acct.domain != "" {
		id := hex.EncodeToString(kds.NewPasswordID(plan.Current.RootKey, plan.Current.GKID, strings.ToLower(acct.domain), strings.ToLower(acct.domain)).Bytes())
		res.PasswordID = &id
	}
	return e.printCompute(&res)
}

func (e *env) printCompute(r *computeResult) error {
	if e.output == "json" {
		m := map[string]any{}
		if err := remarshal(r, &m); err != nil {
			return err
		}
		if r.At != nil { // schedules always carry the previous_* fields, null when absent
			for _, k := range []string{"previous_gkid", "previous_password_hex", "previous_password_base64", "previous_nt_hash"} {
				m[k] = nil
			}
			if r.AES256 != nil {
				m["previous_aes256_key"], m["previous_aes128_key"] = nil, nil
			}
			if r.Previous != nil {
				p := map[string]any{}
				if err := remarshal(r.Previous, &p); err != nil {
					return err
				}
				for k, v := range p {
					if !strings.HasPrefix(k, "previous_") {
						k = "previous_" + k
					}
					m[k] = v
				}
			}
		}
		return e.writeJSON(m)
	}
	rows := [][2]string{
		{"root key", r.RootKeyID + " (" + r.KDFHash + ")"},
		{"account SID", r.SID},
		{"key period", fmt.Sprintf("(%d,%d,%d) from %s", r.GKID[0], r.GKID[1], r.GKID[2], r.PeriodStart)},
	}
	if r.At != nil {
		rows = append(rows, [2]string{"at", *r.At})
	}
	rows = append(rows, r.credentials.rows("")...)
	if r.At != nil {
		if r.Previous != nil {
			rows = append(rows, [2]string{"previous period", fmt.Sprintf("(%d,%d,%d)", r.Previous.GKID[0], r.Previous.GKID[1], r.Previous.GKID[2])})
			rows = append(rows, r.Previous.credentials.rows("previous ")...)
		} else {
			rows = append(rows, [2]string{"previous", "none (the account is younger than one interval)"})
		}
		rows = append(rows, [2]string{"query interval", ntsec.FormatTicks(*r.QueryInterval)},
			[2]string{"unchanged interval", ntsec.FormatTicks(*r.UnchangedInterval)})
	}
	e.table(rows)
	return nil
}

func fmtTime(t ntsec.FileTime) string { return t.Time().Format("2006-01-02T15:04:05Z") }
