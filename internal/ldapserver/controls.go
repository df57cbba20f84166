package ldapserver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/directory"
	"gmsa/internal/ntsec"
)

// The request controls honoured ([MS-ADTS] 3.1.1.3.4.1), advertised in the RootDSE's
// supportedControl.
const (
	oidSort             = "1.2.840.113556.1.4.473" // server-side sort request ([RFC 2891])
	oidSortResponse     = "1.2.840.113556.1.4.474"
	oidLazyCommit       = "1.2.840.113556.1.4.619"
	oidExtendedDN       = "1.2.840.113556.1.4.529"
	oidASQ              = "1.2.840.113556.1.4.1504" // attribute scoped query, request and response
	oidDomainScope      = "1.2.840.113556.1.4.1339"
	oidSearchOptions    = "1.2.840.113556.1.4.1340"
	oidPermissiveModify = "1.2.840.113556.1.4.1413"
	oidTreeDelete       = "1.2.840.113556.1.4.805"
	oidShowDeleted      = "1.2.840.113556.1.4.417"
	oidSDFlags          = "1.2.840.113556.1.4.801"
	oidVLV              = "2.16.840.1.113730.3.4.9"  // virtual list view request
	oidVLVResponse      = "2.16.840.1.113730.3.4.10" // and its response
	oidShowRecycled     = "1.2.840.113556.1.4.2064"
	oidDirSync          = "1.2.840.113556.1.4.841" // request and response
	oidDirSyncEx        = "1.2.840.113556.1.4.2090"
	oidTreeDeleteEx     = "1.2.840.113556.1.4.2204"
	oidSearchHints      = "1.2.840.113556.1.4.2206"
	oidRangeNoError     = "1.2.840.113556.1.4.1948"
	oidPolicyHints      = "1.2.840.113556.1.4.2239"
	oidPolicyHintsOld   = "1.2.840.113556.1.4.2066" // LDAP_SERVER_POLICY_HINTS_DEPRECATED_OID, the same control
	oidGetStats         = "1.2.840.113556.1.4.970"  // request and response
	oidExpectedCount    = "1.2.840.113556.1.4.2211"
	oidSetOwner         = "1.2.840.113556.1.4.2255"
	oidUpdateStats      = "1.2.840.113556.1.4.2205" // request and response
)

// The update stats control's statistics ([MS-ADTS] 3.1.1.3.4.1.30).
const (
	statHighestUSN   = "1.2.840.113556.1.4.2208" // Highest USN Allocated
	statInvocationID = "1.2.840.113556.1.4.2209" // Invocation ID Of Server
)

// The get stats control's options ([MS-ADTS] 3.1.1.3.4.1.6).
const (
	statsNormal       = 0 // SO_NORMAL: as if the control were absent
	statsStats        = 1 // SO_STATS: the results and the statistics
	statsOnlyOptimize = 2 // SO_ONLY_OPTIMIZE: the statistics of the plan, no results
	statsExtendedFmt  = 4 // SO_EXTENDED_FMT: a format not served here
)

// The search hints AD honours ([MS-ADTS] 3.1.1.3.4.1.32).
const (
	hintRequireSortIndex = "1.2.840.113556.1.4.2207"
	hintSoftSizeLimit    = "1.2.840.113556.1.4.2210"
)

// supportedControls are the controls in the RootDSE, in AD's order.
var supportedControls = []string{oidPagedResults, oidSort, oidTreeDelete, oidShowDeleted, oidSDFlags, oidGetStats, oidExtendedDN, oidLazyCommit, oidDomainScope,
	oidSearchOptions, oidPermissiveModify, oidASQ, oidRangeNoError, oidPolicyHintsOld, oidPolicyHints, oidShowRecycled, oidDirSyncEx, oidUpdateStats, oidTreeDeleteEx, oidSearchHints, oidExpectedCount, oidSetOwner,
	oidVLV, oidDirSync, oidNotification}

// controlsFor says which operations each control applies to; elsewhere it is unknown.
var controlsFor = map[string][]ber.Tag{
	oidPagedResults:     {appSearchRequest},
	oidSort:             {appSearchRequest},
	oidExtendedDN:       {appSearchRequest},
	oidASQ:              {appSearchRequest},
	oidDomainScope:      {appSearchRequest},                                                // no referrals: this server never sends any
	oidSearchOptions:    {appSearchRequest},                                                // domain scope and phantom root: one domain here
	oidLazyCommit:       {appAddRequest, appModifyRequest, appDelRequest, appModDNRequest}, // every commit is durable anyway
	oidPermissiveModify: {appModifyRequest},
	oidTreeDelete:       {appDelRequest},
	// Tombstones show in searches, and are found by DN, GUID or SID (extended DN).
	// Without a recycle bin there are no recycled-but-not-tombstoned objects, so both
	// show the same ([MS-ADTS] 3.1.1.3.4.1.14, 3.1.1.3.4.1.29).
	oidShowDeleted:    {appSearchRequest, appModifyRequest}, // a modify: a reanimation
	oidSDFlags:        {appSearchRequest, appModifyRequest, appAddRequest},
	oidVLV:            {appSearchRequest},
	oidShowRecycled:   {appSearchRequest},
	oidDirSync:        {appSearchRequest},
	oidDirSyncEx:      {appSearchRequest},
	oidNotification:   {appSearchRequest},
	oidTreeDeleteEx:   {appDelRequest},
	oidSearchHints:    {appSearchRequest},
	oidRangeNoError:   {appSearchRequest},
	oidGetStats:       {appSearchRequest},
	oidPolicyHints:    {appModifyRequest},
	oidPolicyHintsOld: {appModifyRequest},
	oidExpectedCount:  {appSearchRequest},
	oidSetOwner:       {appAddRequest},
	oidUpdateStats:    {appSearchRequest, appAddRequest, appModifyRequest, appDelRequest, appModDNRequest, appCompareRequest},
}

// requestControls are what one request's controls ask of the server.
type requestControls struct {
	paged       *ber.Packet // read before the search runs, then dropped with the request
	sort        *sortKey
	permissive  bool
	treeDelete  bool
	treeLimit   int // the tree delete EX control's countOfObjectsToDelete
	showDeleted bool
	sdFlags     uint32
	vlv         *vlvRequest
	extendedDN  directory.ExtendedDNForm
	asq         string // the attribute scoped query's source attribute
	dirSync     *dirSyncRequest
	notify      bool
	rangeNoErr  bool
	fullPolicy  bool // the policy hints control's LDAP_POLICYHINT_APPLY_FULLPWDPOLICY
	stats       *statsRequest
	hints       searchHints
	expected    *entryCountRange // the expected entry count control's bounds
	owner       string           // the set owner control's SID, as a string
	updateStats bool
}

// entryCountRange is ExpectedEntryCountRequestValue ::= SEQUENCE { searchEntriesMin
// INTEGER, searchEntriesMax INTEGER } ([MS-ADTS] 3.1.1.3.4.1.33): a search that would
// succeed with fewer or more entries fails with constraintViolation instead.
type entryCountRange struct{ min, max int64 }

func (r *entryCountRange) holds(n int64) bool { return r == nil || n >= r.min && n <= r.max }

// sequenceOfInteger reads a control value that is SEQUENCE { INTEGER }, as the SD
// flags, tree delete EX and policy hints controls' are.
func sequenceOfInteger(value []byte, control string) (int64, *ldapError) {
	p, err := ber.DecodePacketErr(value)
	if err != nil || len(p.Children) != 1 {
		return 0, lerr(resultProtocolError, "malformed %s control: want SEQUENCE { INTEGER }", control)
	}
	n, err := intValue(p.Children[0])
	if err != nil {
		return 0, lerr(resultProtocolError, "malformed %s control: want SEQUENCE { INTEGER }", control)
	}
	return n, nil
}

// statsRequest is the get stats control: its options and criticality.
type statsRequest struct {
	flags    uint32
	critical bool
}

// searchHints are the search hints control's hints ([MS-ADTS] 3.1.1.3.4.1.32), each
// with the criticality of the control that carried it: a later hint overrides an
// earlier one.
type searchHints struct {
	requireSortIndex bool // order by an index or, with a critical sort control, fail
	softSizeLimit    int  // with a sort: past this many, only ties of the last one
}

// dirSyncRequest is DirSyncRequestValue ::= SEQUENCE { Flags INTEGER, MaxBytes INTEGER,
// Cookie OCTET STRING } ([MS-ADTS] 3.1.1.3.4.1.3).
type dirSyncRequest struct {
	flags  int64
	cookie []byte
	oid    string // the control asked with (DirSync or DirSync EX), which the response names
}

// sortKey is the first key of a sort request (AD sorts by one attribute).
type sortKey struct {
	attr     string
	reverse  bool
	critical bool
}

// parseControls reads a request's controls: an unknown critical control (or one that
// does not apply to the operation) is unavailableCriticalExtension; an unknown
// non-critical one is ignored ([RFC 4511] 4.1.11).
func parseControls(controls []*ber.Packet, op ber.Tag) (*requestControls, *ldapError) {
	rc := &requestControls{}
	for _, ctl := range controls {
		if len(ctl.Children) == 0 {
			continue
		}
		oid := str(ctl.Children[0])
		critical := len(ctl.Children) > 1 && ctl.Children[1].Tag == ber.TagBoolean && boolValue(ctl.Children[1])
		if !slices.Contains(controlsFor[oid], op) {
			if critical {
				return nil, lerr(resultUnavailableCritical, "00002081: unsupported critical control %s", oid)
			}
			continue
		}
		var value []byte
		if n := len(ctl.Children); n > 1 && ctl.Children[n-1].Tag == ber.TagOctetString {
			value = raw(ctl.Children[n-1])
		}
		switch oid {
		case oidPagedResults:
			rc.paged = ctl
		case oidSort:
			k, err := parseSortKeys(value)
			if err != nil {
				return nil, lerr(resultProtocolError, "malformed server-side sort control: %v", err)
			}
			k.critical = critical
			rc.sort = k
		case oidPermissiveModify:
			rc.permissive = true
		case oidTreeDelete:
			rc.treeDelete = true
		case oidTreeDeleteEx:
			// TreeDeleteExRequestValue ::= SEQUENCE { countOfObjectsToDelete INTEGER }
			// ([MS-ADTS] 3.1.1.3.4.1.31)
			n, le := sequenceOfInteger(value, "tree delete EX")
			if le != nil {
				return nil, le
			}
			rc.treeDelete, rc.treeLimit = true, int(min(max(n, 1), 1<<20)) // the directory takes it to 2–16 384
		case oidRangeNoError:
			rc.rangeNoErr = true
		case oidGetStats:
			// No value is SO_STATS; otherwise a 32-bit unsigned integer, not BER-encoded
			// ([MS-ADTS] 3.1.1.3.4.1.6): four bytes, little-endian as Windows sends
			// them; a BER INTEGER is taken too.
			st := &statsRequest{flags: statsStats, critical: critical}
			switch {
			case len(value) == 0:
			case len(value) == 4:
				st.flags = binary.LittleEndian.Uint32(value)
			default:
				p, err := ber.DecodePacketErr(value)
				n, ierr := int64(0), err
				if err == nil {
					n, ierr = intValue(p)
				}
				if ierr != nil || n < 0 || n > 1<<32-1 {
					return nil, lerr(resultProtocolError, "malformed get stats control")
				}
				st.flags = uint32(n)
			}
			rc.stats = st
		case oidPolicyHints, oidPolicyHintsOld:
			// PolicyHintsRequestValue ::= SEQUENCE { Flags INTEGER }: 1 applies the whole
			// password policy, history included, to a reset ([MS-ADTS] 3.1.1.3.4.1.35).
			flags, le := sequenceOfInteger(value, "policy hints")
			if le != nil {
				return nil, le
			}
			rc.fullPolicy = flags&1 != 0
		case oidExpectedCount:
			p, err := ber.DecodePacketErr(value)
			if err != nil || len(p.Children) != 2 {
				return nil, lerr(resultProtocolError, "malformed expected entry count control: want SEQUENCE { searchEntriesMin INTEGER, searchEntriesMax INTEGER }")
			}
			lo, err1 := intValue(p.Children[0])
			hi, err2 := intValue(p.Children[1])
			if err1 != nil || err2 != nil || lo < 0 || hi < 0 {
				return nil, lerr(resultProtocolError, "malformed expected entry count control: want two counts of at least 0")
			}
			rc.expected = &entryCountRange{lo, hi}
		case oidSetOwner:
			// The value is the new object's owner as a string SID ("S-1-5-21-…"), not
			// BER-encoded, as Windows clients send it ([MS-ADTS] 3.1.1.3.4.1.37).
			if len(value) == 0 || len(value) > 256 {
				return nil, lerr(resultProtocolError, "malformed set owner control: want the owner's SID as a string")
			}
			rc.owner = string(value)
		case oidUpdateStats:
			rc.updateStats = true
		case oidSearchHints:
			if le := rc.hints.parse(value, critical); le != nil {
				return nil, le
			}
		case oidShowDeleted, oidShowRecycled:
			rc.showDeleted = true
		case oidVLV:
			v, err := parseVLV(value)
			if err != nil {
				return nil, lerr(resultProtocolError, "malformed virtual list view control: %v", err)
			}
			rc.vlv = v
		case oidNotification:
			rc.notify = true
		case oidDirSync, oidDirSyncEx: // EX: the same, and ";dirSyncAlwaysReturn" names ([MS-ADTS] 3.1.1.3.4.1.23)
			p, err := ber.DecodePacketErr(value)
			if err != nil || len(p.Children) != 3 {
				return nil, lerr(resultProtocolError, "malformed DirSync control")
			}
			flags, _ := intValue(p.Children[0])
			rc.dirSync = &dirSyncRequest{flags: flags, cookie: raw(p.Children[2]), oid: oid}
		case oidSDFlags:
			// SDFlagsRequestValue ::= SEQUENCE { Flags INTEGER } ([MS-ADTS] 3.1.1.3.4.1.11)
			flags, le := sequenceOfInteger(value, "SD flags")
			if le != nil {
				return nil, le
			}
			rc.sdFlags = uint32(flags) & 0xf
		case oidASQ:
			// ASQRequestValue ::= SEQUENCE { sourceAttribute OCTET STRING } ([MS-ADTS]
			// 3.1.1.3.4.1.13)
			p, err := ber.DecodePacketErr(value)
			if err != nil || len(p.Children) != 1 || str(p.Children[0]) == "" {
				return nil, lerr(resultProtocolError, "malformed attribute scoped query control")
			}
			rc.asq = str(p.Children[0])
		case oidExtendedDN:
			// ExtendedDNRequestValue ::= SEQUENCE { Flag INTEGER }: 0 hex, 1 string; no
			// value is hex ([MS-ADTS] 3.1.1.3.4.1.5).
			rc.extendedDN = directory.ExtendedDNHex
			if len(value) > 0 {
				p, err := ber.DecodePacketErr(value)
				if err != nil || len(p.Children) != 1 {
					return nil, lerr(resultProtocolError, "malformed extended DN control")
				}
				if flag, _ := intValue(p.Children[0]); flag == 1 {
					rc.extendedDN = directory.ExtendedDNString
				}
			}
		}
	}
	return rc, nil
}

// parse reads SearchHintsRequestValue ::= SEQUENCE OF SEQUENCE { hintId LDAPOID,
// hintValue OCTET STRING }: Require Sort Index's value is SEQUENCE { IndexOnly BOOLEAN },
// Soft Size Limit's SEQUENCE { limitValue INTEGER }. An unknown hint is refused when the
// control is critical and ignored otherwise.
func (h *searchHints) parse(value []byte, critical bool) *ldapError {
	p, err := ber.DecodePacketErr(value)
	if err != nil {
		return lerr(resultProtocolError, "malformed search hints control")
	}
	for _, hint := range p.Children {
		if len(hint.Children) != 2 {
			return lerr(resultProtocolError, "malformed search hint")
		}
		v, err := ber.DecodePacketErr(raw(hint.Children[1]))
		if err != nil || len(v.Children) != 1 {
			return lerr(resultProtocolError, "malformed value of search hint %s", str(hint.Children[0]))
		}
		switch id := str(hint.Children[0]); id {
		case hintRequireSortIndex:
			h.requireSortIndex = boolValue(v.Children[0])
		case hintSoftSizeLimit:
			n, err := intValue(v.Children[0])
			if err != nil || n < 0 {
				return lerr(resultProtocolError, "malformed soft size limit hint")
			}
			h.softSizeLimit = int(min(n, 1<<31-1))
		default:
			if critical {
				return lerr(resultUnwillingToPerform, "0000209A: unknown search hint %s", id)
			}
		}
	}
	return nil
}

// parseSortKeys reads SortKeyList ::= SEQUENCE OF SEQUENCE { attributeType,
// orderingRule [0] OPTIONAL, reverseOrder [1] BOOLEAN DEFAULT FALSE } ([RFC 2891] 1.1).
func parseSortKeys(value []byte) (*sortKey, error) {
	p, err := ber.DecodePacketErr(value)
	if err != nil {
		return nil, err
	}
	if len(p.Children) == 0 || len(p.Children[0].Children) == 0 {
		return nil, errNoSortKey
	}
	first := p.Children[0]
	k := &sortKey{attr: str(first.Children[0])}
	for _, c := range first.Children[1:] {
		if c.ClassType == ber.ClassContext && c.Tag == 1 {
			k.reverse = len(raw(c)) > 0 && raw(c)[0] != 0
		}
	}
	if k.attr == "" {
		return nil, errNoSortKey
	}
	return k, nil
}

type sortError string

func (e sortError) Error() string { return string(e) }

const errNoSortKey = sortError("no sort key")

// sortResponse is SortResult ::= SEQUENCE { sortResult ENUMERATED } ([RFC 2891] 1.2).
func sortResponse(code int) *ber.Packet { return resultControl(oidSortResponse, code) }

// resultControl is a response control whose value is SEQUENCE { result ENUMERATED }, as
// the sort response and the attribute scoped query's response are.
func resultControl(oid string, code int) *ber.Packet {
	val := ber.NewSequence("value")
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "result"))
	ctl := ber.NewSequence("Control")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oid, "controlType"))
	ctl.AppendChild(octets(val.Bytes()))
	return ctl
}

// compareSortValues orders two entries' first values of the sort attribute: integers
// as numbers, anything else case-insensitively; an entry without the attribute comes
// after every entry with it, in either direction ([RFC 2891] 2).
func compareSortValues(a, b []byte, reverse bool) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	var c int
	x, errX := strconv.ParseInt(string(a), 10, 64)
	y, errY := strconv.ParseInt(string(b), 10, 64)
	if errX == nil && errY == nil {
		c = cmp.Compare(x, y)
	} else if c = strings.Compare(strings.ToLower(string(a)), strings.ToLower(string(b))); c == 0 {
		c = bytes.Compare(a, b)
	}
	if reverse {
		c = -c
	}
	return c
}

// asqResponse is ASQResponseValue ::= SEQUENCE { searchResult ENUMERATED }.
func asqResponse(code int) *ber.Packet { return resultControl(oidASQ, code) }

// vlvRequest is a virtual list view request (draft-ietf-ldapext-ldapv3-vlv-09 6.1,
// [MS-ADTS] 3.1.1.3.4.1.17): a window of the sorted results, around an offset in it
// or the first entry not below an assertion value.
type vlvRequest struct {
	before, after        int
	offset, contentCount int    // byOffset, offset from 1
	assertion            []byte // greaterThanOrEqual, when not nil
}

// parseVLV reads VirtualListViewRequest ::= SEQUENCE { beforeCount INTEGER, afterCount
// INTEGER, target CHOICE { byOffset [0] SEQUENCE { offset, contentCount },
// greaterThanOrEqual [1] AssertionValue }, contextID OCTET STRING OPTIONAL }.
func parseVLV(value []byte) (*vlvRequest, error) {
	p, err := ber.DecodePacketErr(value)
	if err != nil || len(p.Children) < 3 {
		return nil, errors.New("want beforeCount, afterCount and a target")
	}
	before, _ := intValue(p.Children[0])
	after, _ := intValue(p.Children[1])
	if before < 0 || after < 0 || before > 1<<20 || after > 1<<20 {
		return nil, errors.New("counts out of range")
	}
	v := &vlvRequest{before: int(before), after: int(after)}
	t := p.Children[2]
	switch {
	case t.ClassType == ber.ClassContext && t.Tag == 0:
		if len(t.Children) != 2 {
			return nil, errors.New("byOffset needs an offset and a content count")
		}
		off, _ := intValue(t.Children[0])
		cnt, _ := intValue(t.Children[1])
		if off < 0 || cnt < 0 || off > 1<<31 || cnt > 1<<31 {
			return nil, errors.New("offset out of range")
		}
		v.offset, v.contentCount = int(off), int(cnt)
	case t.ClassType == ber.ClassContext && t.Tag == 1:
		v.assertion = raw(t)
	default:
		return nil, errors.New("the target is neither byOffset nor greaterThanOrEqual")
	}
	return v, nil
}

// vlvResponse is VirtualListViewResponse ::= SEQUENCE { targetPosition INTEGER,
// contentCount INTEGER, virtualListViewResult ENUMERATED }.
func vlvResponse(position, count, code int) *ber.Packet {
	val := ber.NewSequence("value")
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(position), "targetPosition"))
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(count), "contentCount"))
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "result"))
	ctl := ber.NewSequence("Control")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidVLVResponse, "controlType"))
	ctl.AppendChild(octets(val.Bytes()))
	return ctl
}

// statsResponse is the get stats control's response in the format of Windows Server
// 2008 and later without SO_EXTENDED_FMT: pairs of a statistic's tag and its value —
// threadCount 1, callTime 3 (ms), entriesReturned 5, entriesVisited 6, filter 7, index
// 8 (the plan), and the page and log counts 9–15 of a database this server does not
// have (0); the strings end in NUL, as AD's do.
func statsResponse(callTime time.Duration, returned int, st *directory.SearchStats, filter string) *ber.Packet {
	val := ber.NewSequence("StatsResponseValue")
	num := func(tag, v int64) {
		val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, tag, "tag"))
		val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, v, "value"))
	}
	text := func(tag int64, v string) {
		val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, tag, "tag"))
		val.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v+"\x00", "value"))
	}
	num(1, 1)
	num(3, callTime.Milliseconds())
	num(5, int64(returned))
	num(6, int64(st.Visited))
	text(7, filter)
	text(8, st.Plan)
	for tag := int64(9); tag <= 15; tag++ {
		num(tag, 0)
	}
	ctl := ber.NewSequence("Control")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidGetStats, "controlType"))
	ctl.AppendChild(octets(val.Bytes()))
	return ctl
}

// updateStatsResponse is UpdateStatsResponseValue ::= SEQUENCE OF SEQUENCE { statID
// LDAPOID, statValue OCTET STRING } ([MS-ADTS] 3.1.1.3.4.1.30): the invocation ID of the
// directory's database (the GUID in its little-endian form) and the highest USN the
// operation allocated (64 bits, little-endian; 0 when it wrote nothing).
func updateStatsResponse(invocation ntsec.GUID, highestUSN int64) *ber.Packet {
	val := ber.NewSequence("UpdateStatsResponseValue")
	stat := func(id string, v []byte) {
		s := ber.NewSequence("stat")
		s.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, id, "statID"))
		s.AppendChild(octets(v))
		val.AppendChild(s)
	}
	stat(statInvocationID, invocation[:])
	stat(statHighestUSN, binary.LittleEndian.AppendUint64(nil, uint64(highestUSN)))
	ctl := ber.NewSequence("Control")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidUpdateStats, "controlType"))
	ctl.AppendChild(octets(val.Bytes()))
	return ctl
}

// recordUSNs starts recording the USNs an operation allocates when its controls ask for
// update statistics; the returned function gives the response control (nil otherwise).
func (c *conn) recordUSNs(ctx context.Context, rc *requestControls) (context.Context, func() []*ber.Packet) {
	if rc == nil || !rc.updateStats {
		return ctx, func() []*ber.Packet { return nil }
	}
	ctx, rec := directory.RecordUSNs(ctx)
	return ctx, func() []*ber.Packet {
		return []*ber.Packet{updateStatsResponse(c.srv.cfg.Dir.InvocationID(), rec.Highest())}
	}
}

// filterText writes a search's filter in the string form of [RFC 4515], for the get
// stats response; values are escaped, and a filter nested past maxFilterDepth (which
// the search refuses anyway) is cut short.
func filterText(p *ber.Packet, depth int) string {
	if depth > maxFilterDepth || p.ClassType != ber.ClassContext {
		return "(?)"
	}
	ava := func(op string) string {
		if len(p.Children) != 2 {
			return "(?)"
		}
		return "(" + str(p.Children[0]) + op + ldap.EscapeFilter(string(raw(p.Children[1]))) + ")"
	}
	var b strings.Builder
	switch p.Tag {
	case 0, 1, 2:
		b.WriteString("(" + string("&|!"[p.Tag]))
		for _, c := range p.Children {
			b.WriteString(filterText(c, depth+1))
		}
		b.WriteString(")")
	case 3:
		return ava("=")
	case 5:
		return ava(">=")
	case 6:
		return ava("<=")
	case 8:
		return ava("~=")
	case 7:
		return "(" + str(p) + "=*)"
	case 4:
		if len(p.Children) != 2 {
			return "(?)"
		}
		b.WriteString("(" + str(p.Children[0]) + "=")
		var initial, final string
		var any []string
		for _, s := range p.Children[1].Children {
			v := ldap.EscapeFilter(string(raw(s)))
			switch s.Tag {
			case 0:
				initial = v
			case 1:
				any = append(any, v)
			case 2:
				final = v
			}
		}
		b.WriteString(initial + "*")
		for _, a := range any {
			b.WriteString(a + "*")
		}
		b.WriteString(final + ")")
	case 9:
		var attr, rule, value string
		for _, c := range p.Children {
			switch c.Tag {
			case 1:
				rule = ":" + str(c)
			case 2:
				attr = str(c)
			case 3:
				value = ldap.EscapeFilter(string(raw(c)))
			}
		}
		return "(" + attr + rule + ":=" + value + ")"
	default:
		return "(?)"
	}
	return b.String()
}
