package dnsvip

// The messages this backend sends, built and exchanged with
// github.com/miekg/dns: UPDATE messages (RFC 2136) signed with TSIG
// (RFC 8945), and a question to the zone's server without recursion.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Rcodes a caller may test RcodeError against (RFC 1035, 2136, 8945).
const (
	RcodeSuccess  = dns.RcodeSuccess
	RcodeFormErr  = dns.RcodeFormatError
	RcodeServFail = dns.RcodeServerFailure
	RcodeNXDomain = dns.RcodeNameError
	RcodeRefused  = dns.RcodeRefused
	RcodeNXRRSet  = dns.RcodeNXRrset
	RcodeNotAuth  = dns.RcodeNotAuth
	RcodeBadSig   = dns.RcodeBadSig
	RcodeBadKey   = dns.RcodeBadKey
	RcodeBadTime  = dns.RcodeBadTime

	algSHA256 = dns.HmacSHA256
	algSHA512 = dns.HmacSHA512
)

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

func typeName(t uint16) string { return dns.TypeToString[t] }

// addrRR is name's A or AAAA record for a.
func addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	h := dns.RR_Header{Name: name, Rrtype: rrtype(a), Class: dns.ClassINET, Ttl: ttl}
	if a.Is4() {
		return &dns.A{Hdr: h, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: h, AAAA: a.AsSlice()}
}

func rrtype(a netip.Addr) uint16 {
	if a.Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

// canonicalName is s lower-cased with a final dot.
func canonicalName(s string) string { return strings.ToLower(dns.Fqdn(s)) }

// validName accepts a canonical host name: labels of 1 to 63 bytes of
// letters, digits, '-' and '_', at most 255 bytes on the wire.
func validName(s string) bool {
	if s == "." || !strings.HasSuffix(s, ".") {
		return false
	}
	if _, ok := dns.IsDomainName(s); !ok {
		return false
	}
	for _, l := range dns.SplitDomainName(s) {
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// holdMsg replaces the RRset of me's type with me, in one message: delete
// the RRset (RFC 2136 2.5.2), add this node's RR (2.5.1).
func (b *Backend) holdMsg(me netip.Addr) *dns.Msg {
	m := new(dns.Msg).SetUpdate(b.zone)
	m.RemoveRRset([]dns.RR{addrRR(b.name, me, 0)})
	m.Insert([]dns.RR{addrRR(b.name, me, b.ttl)})
	return m
}

// releaseMsg deletes me from the RRset (2.5.4); guarded, only when the
// RRset is exactly {me} (value-dependent prerequisite, 2.4.2).
func (b *Backend) releaseMsg(me netip.Addr, guarded bool) *dns.Msg {
	m := new(dns.Msg).SetUpdate(b.zone)
	if guarded {
		m.Used([]dns.RR{addrRR(b.name, me, 0)})
	}
	m.Remove([]dns.RR{addrRR(b.name, me, 0)})
	return m
}

// queryMsg asks for name's RRset of type t, without recursion.
func queryMsg(name string, t uint16) *dns.Msg {
	m := new(dns.Msg).SetQuestion(name, t)
	m.RecursionDesired = false
	return m
}

// exchange sends m to the server within the backend's timeout and ctx; a
// key signs the request, and then the reply must carry a valid signature.
func (b *Backend) exchange(ctx context.Context, m *dns.Msg, k *Key) (*dns.Msg, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	c := &dns.Client{Net: b.net, Timeout: b.timeout}
	if k != nil {
		c.TsigSecret = map[string]string{k.Name: k.secret}
		m.SetTsig(k.Name, k.Algorithm, fudge, time.Now().Unix())
	}
	r, _, err := c.ExchangeContext(ctx, m, b.server)
	if k != nil && r != nil && r.Rcode == dns.RcodeNotAuth && (err == nil || errors.Is(err, dns.ErrAuth)) {
		// A refusal: the server refused the request's signature (the TSIG
		// error says why; such a reply is unsigned), or it is not the
		// zone's primary. miekg/dns does not check signatures on NOTAUTH
		// replies; a failure is believed without one, a success never is.
		e := &RcodeError{Rcode: r.Rcode}
		if t := r.IsTsig(); t != nil {
			e.TSIGError = t.Error
		}
		return nil, e
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, &unansweredError{fmt.Errorf("no answer within %v: %w", time.Since(start).Round(time.Millisecond), ctx.Err())}
		}
		if k != nil && r != nil {
			return nil, fmt.Errorf("%s (rcode %s): %w", k, rcodeName(r.Rcode), tsigErr(err))
		}
		if r == nil {
			return nil, &unansweredError{err}
		}
		return nil, err
	}
	if k != nil && r.IsTsig() == nil {
		return nil, fmt.Errorf("%s (rcode %s): the reply is not signed (TSIG missing)", k, rcodeName(r.Rcode))
	}
	return r, nil
}

// unansweredError is a request the server did not answer (unreachable,
// silent, too slow): what it serves is unknown, not wrong.
type unansweredError struct{ err error }

func (e *unansweredError) Error() string { return e.err.Error() }
func (e *unansweredError) Unwrap() error { return e.err }

// unanswered tells whether err is a request the server did not answer.
func unanswered(err error) bool {
	var u *unansweredError
	return errors.As(err, &u)
}

// tsigErr says what a failed check of the reply's signature means.
func tsigErr(err error) error {
	switch {
	case errors.Is(err, dns.ErrSig):
		return errors.New("the reply's TSIG signature does not match the key")
	case errors.Is(err, dns.ErrTime):
		return fmt.Errorf("the reply was signed more than %d s away from this host's clock: fix NTP", fudge)
	}
	return err
}
