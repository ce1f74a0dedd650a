package dnsvip

// The DNS wire format this backend needs, and no more: UPDATE messages
// (RFC 2136) signed with TSIG (RFC 8945), a question, and the parts of a
// reply it reads. Written here rather than taken from a DNS library so that
// pghook's start-up stays as it was: every pghook command (each callback is
// a process start) pays for the package initialisation of what is linked,
// and a full DNS library costs ~0.3 ms there. The tests check this codec
// against github.com/miekg/dns (unit tests) and BIND 9 (integration).

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"time"
)

// Types, classes, opcodes and rcodes used here (RFC 1035, 2136, 8945).
const (
	typeA    uint16 = 1
	typeSOA  uint16 = 6
	typeAAAA uint16 = 28
	typeTSIG uint16 = 250
	typeANY  uint16 = 255

	classINET uint16 = 1
	classNONE uint16 = 254
	classANY  uint16 = 255

	opcodeQuery  = 0
	opcodeUpdate = 5

	RcodeSuccess  = 0
	RcodeFormErr  = 1
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeNotImp   = 4
	RcodeRefused  = 5
	RcodeYXDomain = 6
	RcodeYXRRSet  = 7
	RcodeNXRRSet  = 8
	RcodeNotAuth  = 9
	RcodeNotZone  = 10
	RcodeBadSig   = 16
	RcodeBadKey   = 17
	RcodeBadTime  = 18

	algSHA256 = "hmac-sha256."
	algSHA512 = "hmac-sha512."
)

// rcodeNames is indexed by rcode; an array, so it costs nothing at start-up.
var rcodeNames = [...]string{
	RcodeSuccess: "NOERROR", RcodeFormErr: "FORMERR", RcodeServFail: "SERVFAIL", RcodeNXDomain: "NXDOMAIN",
	RcodeNotImp: "NOTIMP", RcodeRefused: "REFUSED", RcodeYXDomain: "YXDOMAIN", RcodeYXRRSet: "YXRRSET",
	RcodeNXRRSet: "NXRRSET", RcodeNotAuth: "NOTAUTH", RcodeNotZone: "NOTZONE",
	RcodeBadSig: "BADSIG", RcodeBadKey: "BADKEY", RcodeBadTime: "BADTIME",
}

func rcodeName(rc int) string {
	if rc >= 0 && rc < len(rcodeNames) && rcodeNames[rc] != "" {
		return rcodeNames[rc]
	}
	return fmt.Sprintf("RCODE%d", rc)
}

func typeName(t uint16) string {
	if t == typeAAAA {
		return "AAAA"
	}
	return "A"
}

// rr is one resource record as the update needs it.
type rr struct {
	name       string // canonical, with the final dot
	typ, class uint16
	ttl        uint32
	rdata      []byte
}

// addrRR is name's A or AAAA record for a.
func addrRR(name string, a netip.Addr, class uint16, ttl uint32) rr {
	return rr{name: name, typ: rrtype(a), class: class, ttl: ttl, rdata: a.AsSlice()}
}

func rrtype(a netip.Addr) uint16 {
	if a.Is4() {
		return typeA
	}
	return typeAAAA
}

// canonicalName is s lower-cased with a final dot.
func canonicalName(s string) string {
	s = strings.ToLower(s)
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// validName accepts a canonical host name: labels of 1 to 63 bytes of
// letters, digits, '-' and '_', at most 255 bytes on the wire.
func validName(s string) bool {
	if s == "." || len(s) > 254 || !strings.HasSuffix(s, ".") {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// appendName writes a canonical name uncompressed.
func appendName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l != "" {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	return append(b, 0)
}

func appendRR(b []byte, r rr) []byte {
	b = appendName(b, r.name)
	b = binary.BigEndian.AppendUint16(b, r.typ)
	b = binary.BigEndian.AppendUint16(b, r.class)
	b = binary.BigEndian.AppendUint32(b, r.ttl)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.rdata)))
	return append(b, r.rdata...)
}

// updateMsg is an UPDATE for zone with prerequisites and updates, unsigned.
func updateMsg(id uint16, zone string, prereq, updates []rr) []byte {
	b := make([]byte, 12, 256)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], opcodeUpdate<<11)
	binary.BigEndian.PutUint16(b[4:], 1) // ZOCOUNT
	binary.BigEndian.PutUint16(b[6:], uint16(len(prereq)))
	binary.BigEndian.PutUint16(b[8:], uint16(len(updates)))
	b = appendName(b, zone)
	b = binary.BigEndian.AppendUint16(b, typeSOA)
	b = binary.BigEndian.AppendUint16(b, classINET)
	for _, r := range prereq {
		b = appendRR(b, r)
	}
	for _, r := range updates {
		b = appendRR(b, r)
	}
	return b
}

// queryMsg asks for name's RRset of type t, without recursion.
func queryMsg(id uint16, name string, t uint16) []byte {
	b := make([]byte, 12, 64)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[4:], 1)
	b = appendName(b, name)
	b = binary.BigEndian.AppendUint16(b, t)
	return binary.BigEndian.AppendUint16(b, classINET)
}

func (k Key) newHash() (hash.Hash, error) {
	secret, err := base64.StdEncoding.DecodeString(k.secret)
	if err != nil {
		return nil, errors.New("TSIG secret is not base64")
	}
	switch k.Algorithm {
	case algSHA256:
		return hmac.New(sha256.New, secret), nil
	case algSHA512:
		return hmac.New(sha512.New, secret), nil
	}
	return nil, fmt.Errorf("TSIG algorithm %s not supported", k.Algorithm)
}

// tsigVariables are the TSIG fields that the MAC covers (RFC 8945 4.3.3).
func (k Key) tsigVariables(signed uint64, fudge uint16, tsigErr uint16, other []byte) []byte {
	b := appendName(nil, k.Name)
	b = binary.BigEndian.AppendUint16(b, classANY)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = appendName(b, k.Algorithm)
	b = append(b, byte(signed>>40), byte(signed>>32), byte(signed>>24), byte(signed>>16), byte(signed>>8), byte(signed))
	b = binary.BigEndian.AppendUint16(b, fudge)
	b = binary.BigEndian.AppendUint16(b, tsigErr)
	b = binary.BigEndian.AppendUint16(b, uint16(len(other)))
	return append(b, other...)
}

// sign appends a TSIG record to msg and returns the signed message and
// its MAC (needed to check the reply).
func (k Key) sign(msg []byte, now time.Time) ([]byte, []byte, error) {
	h, err := k.newHash()
	if err != nil {
		return nil, nil, err
	}
	signed := uint64(now.Unix())
	h.Write(msg)
	h.Write(k.tsigVariables(signed, fudge, 0, nil))
	mac := h.Sum(nil)
	rd := appendName(nil, k.Algorithm)
	rd = append(rd, byte(signed>>40), byte(signed>>32), byte(signed>>24), byte(signed>>16), byte(signed>>8), byte(signed))
	rd = binary.BigEndian.AppendUint16(rd, fudge)
	rd = binary.BigEndian.AppendUint16(rd, uint16(len(mac)))
	rd = append(rd, mac...)
	rd = append(rd, msg[0], msg[1]) // original ID
	rd = binary.BigEndian.AppendUint16(rd, 0)
	rd = binary.BigEndian.AppendUint16(rd, 0)
	out := appendRR(append([]byte(nil), msg...), rr{name: k.Name, typ: typeTSIG, class: classANY, rdata: rd})
	binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	return out, mac, nil
}

// reply is what the backend reads of an answer.
type reply struct {
	id      uint16
	rcode   int
	answers []answer
	tsig    *tsigRR // nil: unsigned
}

type answer struct {
	name  string // canonical
	typ   uint16
	ttl   uint32
	rdata []byte
}

type tsigRR struct {
	start         int // offset of the TSIG record in the message
	name, alg     string
	signed        uint64
	fudge         uint16
	mac           []byte
	origID, error uint16
	other         []byte
}

var errShort = errors.New("malformed DNS reply")

// readName reads a possibly compressed name at off; it returns the name
// and the offset after it in the record.
func readName(msg []byte, off int) (string, int, error) {
	var labels []string
	next := -1
	for hops := 0; ; hops++ {
		if off >= len(msg) || hops > 127 {
			return "", 0, errShort
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if next < 0 {
				next = off + 1
			}
			return canonicalName(strings.Join(labels, ".")), next, nil
		case l&0xC0 == 0xC0:
			if off+1 >= len(msg) {
				return "", 0, errShort
			}
			if next < 0 {
				next = off + 2
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
		case l&0xC0 != 0:
			return "", 0, errShort
		default:
			if off+1+l > len(msg) {
				return "", 0, errShort
			}
			labels = append(labels, string(msg[off+1:off+1+l]))
			off += 1 + l
		}
	}
}

// parseReply reads the header, the answer section and a final TSIG record.
func parseReply(msg []byte) (*reply, error) {
	if len(msg) < 12 {
		return nil, errShort
	}
	r := &reply{id: binary.BigEndian.Uint16(msg), rcode: int(msg[3] & 0x0F)}
	if msg[2]&0x80 == 0 {
		return nil, errors.New("DNS message is not a reply")
	}
	qd, an := int(binary.BigEndian.Uint16(msg[4:])), int(binary.BigEndian.Uint16(msg[6:]))
	ns, ar := int(binary.BigEndian.Uint16(msg[8:])), int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	for i := 0; i < qd; i++ {
		_, n, err := readName(msg, off)
		if err != nil || n+4 > len(msg) {
			return nil, errShort
		}
		off = n + 4
	}
	for i := 0; i < an+ns+ar; i++ {
		start := off
		name, n, err := readName(msg, off)
		if err != nil || n+10 > len(msg) {
			return nil, errShort
		}
		typ := binary.BigEndian.Uint16(msg[n:])
		ttl := binary.BigEndian.Uint32(msg[n+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[n+8:]))
		rd := n + 10
		if rd+rdlen > len(msg) {
			return nil, errShort
		}
		switch {
		case i < an:
			r.answers = append(r.answers, answer{name: name, typ: typ, ttl: ttl, rdata: msg[rd : rd+rdlen]})
		case i == an+ns+ar-1 && typ == typeTSIG:
			t, err := parseTSIG(msg, rd, rd+rdlen)
			if err != nil {
				return nil, err
			}
			t.start, t.name = start, name
			r.tsig = t
		}
		off = rd + rdlen
	}
	// The extended rcode of a TSIG error is in the TSIG record; the
	// header's rcode stays NOTAUTH.
	return r, nil
}

func parseTSIG(msg []byte, off, end int) (*tsigRR, error) {
	alg, n, err := readName(msg, off)
	if err != nil || n+10 > end {
		return nil, errShort
	}
	t := &tsigRR{alg: alg}
	t.signed = uint64(binary.BigEndian.Uint16(msg[n:]))<<32 | uint64(binary.BigEndian.Uint32(msg[n+2:]))
	t.fudge = binary.BigEndian.Uint16(msg[n+6:])
	ml := int(binary.BigEndian.Uint16(msg[n+8:]))
	p := n + 10
	if p+ml+6 > end {
		return nil, errShort
	}
	t.mac = msg[p : p+ml]
	p += ml
	t.origID = binary.BigEndian.Uint16(msg[p:])
	t.error = binary.BigEndian.Uint16(msg[p+2:])
	ol := int(binary.BigEndian.Uint16(msg[p+4:]))
	if p+6+ol > end {
		return nil, errShort
	}
	t.other = msg[p+6 : p+6+ol]
	return t, nil
}

// verify checks a reply's TSIG against the request's MAC (RFC 8945 5.3.1).
func (k Key) verify(msg []byte, r *reply, reqMAC []byte, now time.Time) error {
	t := r.tsig
	if t == nil {
		return errors.New("the reply is not signed (TSIG missing)")
	}
	if t.name != k.Name || t.alg != k.Algorithm {
		return fmt.Errorf("the reply is signed with key %s (%s), not %s", t.name, t.alg, k.Name)
	}
	h, err := k.newHash()
	if err != nil {
		return err
	}
	unsigned := append([]byte(nil), msg[:t.start]...)
	binary.BigEndian.PutUint16(unsigned[0:], t.origID)
	binary.BigEndian.PutUint16(unsigned[10:], binary.BigEndian.Uint16(unsigned[10:])-1)
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(reqMAC))))
	h.Write(reqMAC)
	h.Write(unsigned)
	h.Write(k.tsigVariables(t.signed, t.fudge, t.error, t.other))
	if !hmac.Equal(h.Sum(nil), t.mac) {
		return errors.New("the reply's TSIG signature does not match the key")
	}
	if d := int64(t.signed) - now.Unix(); d > int64(t.fudge) || -d > int64(t.fudge) {
		return fmt.Errorf("the reply was signed %d s away from this host's clock (fudge %d s): fix NTP", d, t.fudge)
	}
	return nil
}
