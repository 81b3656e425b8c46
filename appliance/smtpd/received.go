package smtpd

import (
	"net/netip"
	"strings"
	"time"
)

// traceInfo is the data of the Received header of one message.
type traceInfo struct {
	Hostname string
	HELO     string
	ClientIP netip.Addr
	TLS      bool
	SMTPUTF8 bool
	QueueID  string
	// Recipient is named in a "for" clause only when it is the only one.
	Recipients []string
	Time       time.Time
}

// maxHELOInHeader bounds the HELO name copied into the header.
const maxHELOInHeader = 255

// receivedHeader formats the Received header field of RFC 5321 section
// 4.4, folded and CRLF-terminated. Every value from the client is reduced
// to printable ASCII without spaces, so that nothing a client sends can end
// the field, start another one or forge a clause.
func receivedHeader(t traceInfo) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	helo := sanitizeHELO(t.HELO)
	ipLit := addressLiteral(t.ClientIP)
	if helo == t.HELO && helo != "" && isDomainOrLiteral(helo) {
		b.WriteString(helo)
		b.WriteString(" (" + ipLit + ")")
	} else {
		// A HELO name that is no domain is shown only inside a comment.
		b.WriteString(ipLit)
		if helo != "" {
			b.WriteString(" (helo=" + strings.NewReplacer("(", "", ")", "").Replace(helo) + ")")
		}
	}
	b.WriteString("\r\n\tby ")
	b.WriteString(sanitizeHELO(t.Hostname))
	b.WriteString(" with ")
	b.WriteString(protocolName(t))
	if t.QueueID != "" {
		b.WriteString(" id ")
		b.WriteString(sanitizeHELO(t.QueueID))
	}
	if len(t.Recipients) == 1 && safeForClause(t.Recipients[0]) {
		b.WriteString("\r\n\tfor <" + t.Recipients[0] + ">")
	}
	b.WriteString("; ")
	b.WriteString(t.Time.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// protocolName returns the "with" keyword registered by RFC 3848 (ESMTP,
// ESMTPS) and RFC 6531 (UTF8SMTP, UTF8SMTPS). Lambgate offers no AUTH, so
// the "A" forms never occur, and go-smtp does not tell HELO from EHLO, so
// plain "SMTP" is never used either.
func protocolName(t traceInfo) string {
	switch {
	case t.SMTPUTF8 && t.TLS:
		return "UTF8SMTPS"
	case t.SMTPUTF8:
		return "UTF8SMTP"
	case t.TLS:
		return "ESMTPS"
	default:
		return "ESMTP"
	}
}

// sanitizeHELO keeps printable ASCII other than space, backslash, quote and
// semicolon (which would end the clause list), at most maxHELOInHeader bytes.
func sanitizeHELO(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxHELOInHeader; i++ {
		c := s[i]
		if c > 0x20 && c < 0x7f && c != '\\' && c != '"' && c != ';' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isDomainOrLiteral reports whether s is an RFC 5321 Domain (letters,
// digits, hyphens, dots) or an address literal in brackets.
func isDomainOrLiteral(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner := strings.TrimPrefix(s[1:len(s)-1], "IPv6:")
		_, err := netip.ParseAddr(inner)
		return err == nil
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
			if !ok {
				return false
			}
		}
	}
	return true
}

// addressLiteral formats ip as in RFC 5321 section 4.1.3.
func addressLiteral(ip netip.Addr) string {
	if !ip.IsValid() {
		return "[unknown]"
	}
	if ip.Is6() && !ip.Is4In6() {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.Unmap().String() + "]"
}

// safeForClause reports whether a recipient can go into a "for" clause:
// the policy already parsed it, and this rechecks that it has no byte that
// could break the header.
func safeForClause(addr string) bool {
	for _, r := range addr {
		if r < 0x21 || r == 0x7f || r == '<' || r == '>' || r == ';' {
			return false
		}
	}
	return addr != ""
}
