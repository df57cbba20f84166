package directory

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gmsa/internal/ntsec"
)

// An object's record in the store. Records are written in a binary form read without
// reflection: the format byte recordBinary, then fields, each a tag, the length of its
// payload (uvarint) and the payload; a field with its zero value is left out, and a
// reader skips tags it does not know. Records written before it are JSON (they begin
// with '{') and are still read; a record is rewritten in the binary form when the
// object next changes.
//
// Payloads: strings and byte strings as they are; numbers as uvarints (usnCreated
// and the password interval as zigzag varints); lists as their items, each preceded by
// its length; a key as its etype (varint) and value; the domain policy and a root key
// as JSON (two objects in a domain).
const recordBinary = 0x01

// Field tags: never reused, never renumbered.
const (
	tagGUID = iota + 1
	tagClass
	tagDN
	tagName
	tagSID
	tagSAM
	tagUPN
	tagUAC
	tagDescription
	tagCreated
	tagChanged
	tagUSNCreated
	tagPrimaryGroupRID
	tagNTHash
	tagNTHistory
	tagKeys
	tagPreviousKeys
	tagKVNO
	tagPwdLastSet
	tagBadPwdCount
	tagBadPasswordTime
	tagLockoutTime
	tagPolicy
	tagDNSHostName
	tagSPNs
	tagSupportedEnctypes
	tagAllowedToDelegateTo
	tagGroupType
	tagMembers
	tagPasswordInterval
	tagPasswordID
	tagPreviousPasswordID
	tagGroupMSAMembership
	tagRootKey
	tagSchemaName
	tagSD
	tagDeleted
	tagLastKnownParent
)

// recordTags are the string fields a raw filter test reads (rawfilter.go), by the
// record's JSON names and binary tags.
var recordTags = map[string]byte{"class": tagClass, "sam": tagSAM, "upn": tagUPN, "name": tagName, "description": tagDescription,
	"dns_host_name": tagDNSHostName, "spns": tagSPNs, "allowed_to_delegate_to": tagAllowedToDelegateTo}

// encodeRecord writes o in the binary form.
func encodeRecord(o *Object) []byte {
	b := make([]byte, 0, 256+len(o.SD)+len(o.GroupMSAMembership))
	b = append(b, recordBinary)
	field := func(tag byte, payload []byte) {
		b = append(b, tag)
		b = binary.AppendUvarint(b, uint64(len(payload)))
		b = append(b, payload...)
	}
	str := func(tag byte, s string) {
		if s != "" {
			b = append(b, tag)
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	bin := func(tag byte, v []byte) {
		if len(v) > 0 {
			field(tag, v)
		}
	}
	var scratch []byte
	num := func(tag byte, v uint64) {
		if v != 0 {
			scratch = binary.AppendUvarint(scratch[:0], v)
			field(tag, scratch)
		}
	}
	signed := func(tag byte, v int64) {
		if v != 0 {
			scratch = binary.AppendVarint(scratch[:0], v)
			field(tag, scratch)
		}
	}
	list := func(tag byte, items [][]byte) {
		if len(items) > 0 {
			field(tag, appendItems(nil, items))
		}
	}
	strs := func(tag byte, items []string) {
		if len(items) > 0 {
			field(tag, appendItems(nil, items))
		}
	}
	keys := func(tag byte, ks []StoredKey) {
		if len(ks) == 0 {
			return
		}
		var p []byte
		for _, k := range ks {
			item := binary.AppendVarint(nil, int64(k.Etype))
			item = append(item, k.Value...)
			p = binary.AppendUvarint(p, uint64(len(item)))
			p = append(p, item...)
		}
		field(tag, p)
	}
	asJSON := func(tag byte, v any) {
		j, err := json.Marshal(v)
		if err != nil {
			panic(err) // a policy and a root key always encode
		}
		field(tag, j)
	}
	field(tagGUID, o.GUID[:])
	str(tagClass, string(o.Class))
	str(tagDN, o.DN)
	str(tagName, o.Name)
	str(tagSID, o.SID)
	str(tagSAM, o.SAM)
	str(tagUPN, o.UPN)
	num(tagUAC, uint64(o.UAC))
	str(tagDescription, o.Description)
	num(tagCreated, uint64(o.Created))
	num(tagChanged, uint64(o.Changed))
	signed(tagUSNCreated, o.USNCreated)
	num(tagPrimaryGroupRID, uint64(o.PrimaryGroupRID))
	bin(tagNTHash, o.NTHash)
	list(tagNTHistory, o.NTHistory)
	keys(tagKeys, o.Keys)
	keys(tagPreviousKeys, o.PreviousKeys)
	num(tagKVNO, uint64(o.KVNO))
	num(tagPwdLastSet, uint64(o.PwdLastSet))
	num(tagBadPwdCount, uint64(o.BadPwdCount))
	num(tagBadPasswordTime, uint64(o.BadPasswordTime))
	num(tagLockoutTime, uint64(o.LockoutTime))
	if o.Policy != nil {
		asJSON(tagPolicy, o.Policy)
	}
	str(tagDNSHostName, o.DNSHostName)
	strs(tagSPNs, o.SPNs)
	num(tagSupportedEnctypes, uint64(o.SupportedEnctypes))
	strs(tagAllowedToDelegateTo, o.AllowedToDelegateTo)
	num(tagGroupType, uint64(o.GroupType))
	strs(tagMembers, o.Members)
	signed(tagPasswordInterval, o.PasswordInterval)
	bin(tagPasswordID, o.PasswordID)
	bin(tagPreviousPasswordID, o.PreviousPasswordID)
	bin(tagGroupMSAMembership, o.GroupMSAMembership)
	if o.RootKey != nil {
		asJSON(tagRootKey, o.RootKey)
	}
	str(tagSchemaName, o.SchemaName)
	bin(tagSD, o.SD)
	if o.Deleted {
		field(tagDeleted, nil)
	}
	str(tagLastKnownParent, o.LastKnownParent)
	return b
}

// appendItems appends a list payload: each item preceded by its length.
func appendItems[T string | []byte](p []byte, items []T) []byte {
	for _, it := range items {
		p = binary.AppendUvarint(p, uint64(len(it)))
		p = append(p, it...)
	}
	return p
}

var errRecord = errors.New("damaged record")

// span is a part of a record: rec[start:end].
type span struct{ start, end int }

// nextField reads the field at rec[at:]: its tag, its payload's span and where the
// next field starts.
func nextField(rec []byte, at int) (tag byte, p span, next int, err error) {
	if len(rec)-at < 2 {
		return 0, span{}, 0, errRecord
	}
	p, err = lengthPrefixed(rec, at+1, len(rec))
	return rec[at], p, p.end, err
}

// lengthPrefixed reads a uvarint length at rec[at:] and the span of that many bytes
// after it, which must end by limit.
func lengthPrefixed(rec []byte, at, limit int) (span, error) {
	n, w := binary.Uvarint(rec[at:limit])
	if w <= 0 || n > uint64(limit-at-w) {
		return span{}, errRecord
	}
	return span{at + w, at + w + int(n)}, nil
}

// decodeRecord reads a binary record into o. Its strings share one copy of the record
// and its byte strings another, so that a decode allocates little; neither aliases rec.
func decodeRecord(rec []byte, o *Object) error {
	if len(rec) == 0 || rec[0] != recordBinary {
		return errRecord
	}
	textLen, binLen, err := recordSizes(rec)
	if err != nil {
		return err
	}
	// The strings share one buffer, the byte strings another: each only its own kind of
	// values (a string never holds a secret's bytes).
	var text strings.Builder
	text.Grow(textLen)
	copied := make([]byte, 0, binLen)
	str := func(p span) string {
		at := text.Len()
		text.Write(rec[p.start:p.end])
		return text.String()[at:]
	}
	bin := func(p span) []byte {
		if p.end == p.start {
			return nil
		}
		at := len(copied)
		copied = append(copied, rec[p.start:p.end]...)
		return copied[at:len(copied):len(copied)]
	}
	num := func(p span) (uint64, error) {
		v, w := binary.Uvarint(rec[p.start:p.end])
		if w != p.end-p.start {
			return 0, errRecord
		}
		return v, nil
	}
	signed := func(p span) (int64, error) {
		v, w := binary.Varint(rec[p.start:p.end])
		if w != p.end-p.start {
			return 0, errRecord
		}
		return v, nil
	}
	num32 := func(p span, dst *uint32) error {
		v, err := num(p)
		if err != nil || v > 1<<32-1 {
			return errRecord
		}
		*dst = uint32(v)
		return nil
	}
	ft := func(p span, dst *ntsec.FileTime) error {
		v, err := num(p)
		*dst = ntsec.FileTime(v)
		return err
	}
	items := func(p span, each func(span) error) error {
		for at := p.start; at < p.end; {
			it, err := lengthPrefixed(rec, at, p.end)
			if err != nil {
				return err
			}
			if err := each(it); err != nil {
				return err
			}
			at = it.end
		}
		return nil
	}
	strList := func(p span) ([]string, error) {
		var out []string
		err := items(p, func(it span) error { out = append(out, str(it)); return nil })
		return out, err
	}
	keyList := func(p span) ([]StoredKey, error) {
		var out []StoredKey
		err := items(p, func(it span) error {
			e, w := binary.Varint(rec[it.start:it.end])
			if w <= 0 || e < -1<<31 || e > 1<<31-1 {
				return errRecord
			}
			out = append(out, StoredKey{Etype: int32(e), Value: bin(span{it.start + w, it.end})})
			return nil
		})
		return out, err
	}
	for at := 1; at < len(rec); {
		tag, p, next, err := nextField(rec, at)
		if err != nil {
			return err
		}
		at = next
		switch tag {
		case tagGUID:
			if p.end-p.start != len(o.GUID) {
				return errRecord
			}
			copy(o.GUID[:], rec[p.start:p.end])
		case tagClass:
			o.Class = Class(str(p))
		case tagDN:
			o.DN = str(p)
		case tagName:
			o.Name = str(p)
		case tagSID:
			o.SID = str(p)
		case tagSAM:
			o.SAM = str(p)
		case tagUPN:
			o.UPN = str(p)
		case tagUAC:
			err = num32(p, &o.UAC)
		case tagDescription:
			o.Description = str(p)
		case tagCreated:
			err = ft(p, &o.Created)
		case tagChanged:
			err = ft(p, &o.Changed)
		case tagUSNCreated:
			o.USNCreated, err = signed(p)
		case tagPrimaryGroupRID:
			err = num32(p, &o.PrimaryGroupRID)
		case tagNTHash:
			o.NTHash = bin(p)
		case tagNTHistory:
			err = items(p, func(it span) error { o.NTHistory = append(o.NTHistory, bin(it)); return nil })
		case tagKeys:
			o.Keys, err = keyList(p)
		case tagPreviousKeys:
			o.PreviousKeys, err = keyList(p)
		case tagKVNO:
			err = num32(p, &o.KVNO)
		case tagPwdLastSet:
			err = ft(p, &o.PwdLastSet)
		case tagBadPwdCount:
			err = num32(p, &o.BadPwdCount)
		case tagBadPasswordTime:
			err = ft(p, &o.BadPasswordTime)
		case tagLockoutTime:
			err = ft(p, &o.LockoutTime)
		case tagPolicy:
			o.Policy = &DomainPolicy{}
			err = json.Unmarshal(rec[p.start:p.end], o.Policy)
		case tagDNSHostName:
			o.DNSHostName = str(p)
		case tagSPNs:
			o.SPNs, err = strList(p)
		case tagSupportedEnctypes:
			err = num32(p, &o.SupportedEnctypes)
		case tagAllowedToDelegateTo:
			o.AllowedToDelegateTo, err = strList(p)
		case tagGroupType:
			err = num32(p, &o.GroupType)
		case tagMembers:
			o.Members, err = strList(p)
		case tagPasswordInterval:
			o.PasswordInterval, err = signed(p)
		case tagPasswordID:
			o.PasswordID = bin(p)
		case tagPreviousPasswordID:
			o.PreviousPasswordID = bin(p)
		case tagGroupMSAMembership:
			o.GroupMSAMembership = bin(p)
		case tagRootKey:
			o.RootKey = &RootKeyRecord{}
			err = json.Unmarshal(rec[p.start:p.end], o.RootKey)
		case tagSchemaName:
			o.SchemaName = str(p)
		case tagSD:
			o.SD = bin(p)
		case tagDeleted:
			o.Deleted = true
		case tagLastKnownParent:
			o.LastKnownParent = str(p)
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", tag, errRecord)
		}
	}
	return nil
}

// textTags are the fields whose payloads are strings or lists of strings.
var textTags = [...]bool{tagClass: true, tagDN: true, tagName: true, tagSID: true, tagSAM: true, tagUPN: true, tagDescription: true,
	tagDNSHostName: true, tagSPNs: true, tagAllowedToDelegateTo: true, tagMembers: true, tagSchemaName: true, tagLastKnownParent: true}

// recordSizes bounds the bytes of a binary record's strings and of its byte strings.
func recordSizes(rec []byte) (text, bin int, err error) {
	for at := 1; at < len(rec); {
		tag, p, next, err := nextField(rec, at)
		if err != nil {
			return 0, 0, err
		}
		if int(tag) < len(textTags) && textTags[tag] {
			text += p.end - p.start
		} else {
			bin += p.end - p.start
		}
		at = next
	}
	return text, bin, nil
}
