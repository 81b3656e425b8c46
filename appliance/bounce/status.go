package bounce

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// maxDiagnosticBytes bounds the remote server's text quoted in a DSN, so
// that a hostile reply cannot inflate the report or hide its own header.
const maxDiagnosticBytes = 512

// failure is the reason one recipient failed, as reported in a DSN.
type failure struct {
	// Code is the SMTP reply code, 0 when the failure was local.
	Code int
	// Status is the RFC 3463 enhanced status code, such as "5.1.1".
	Status string
	// Text is the sanitized reply text without the enhanced code.
	Text string
}

// failureOf returns the reason to report for r. A recipient in state bounce
// (unknown under the bounce policy) that carries no reply of its own is
// reported as 550 5.1.1 user unknown.
func failureOf(r envelope.Recipient) failure {
	text := sanitizeText(r.LastError, maxDiagnosticBytes)
	// The queue records the whole reply ("550 5.2.1 mailbox full"), so the
	// reply code goes before the enhanced code is looked for.
	if r.LastCode != 0 {
		text = strings.TrimPrefix(text, strconv.Itoa(r.LastCode)+" ")
	}
	status, rest := splitEnhancedCode(text)

	f := failure{Code: r.LastCode, Status: status, Text: rest}
	if r.State == envelope.StateBounce && f.Code == 0 && f.Text == "" {
		return failure{Code: 550, Status: "5.1.1", Text: "user unknown"}
	}
	if f.Status == "" {
		f.Status = defaultStatus(f.Code)
	}
	if f.Text == "" {
		f.Text = "delivery failed"
	}
	return f
}

// defaultStatus derives an enhanced code from the reply code's class, and
// returns 5.0.0 when there is no reply code.
func defaultStatus(code int) string {
	if code >= 400 && code < 500 {
		return "4.0.0"
	}
	return "5.0.0"
}

// splitEnhancedCode separates a leading RFC 3463 code ("5.1.1 user
// unknown") from the rest of text. It returns "" and text unchanged when
// text does not start with a valid code.
func splitEnhancedCode(text string) (status, rest string) {
	word, after, _ := strings.Cut(text, " ")
	if !validEnhancedCode(word) {
		return "", text
	}
	return word, strings.TrimSpace(after)
}

// validEnhancedCode reports whether s is class.subject.detail with class
// 2, 4 or 5 and subject and detail of one to three digits (RFC 3463).
func validEnhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	if parts[0] != "2" && parts[0] != "4" && parts[0] != "5" {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		if _, err := strconv.Atoi(p); err != nil || p[0] == '+' || p[0] == '-' {
			return false
		}
	}
	return true
}

// sanitizeText turns s into one printable line of at most max bytes:
// control characters (CR and LF included) become spaces, runs of spaces
// collapse, invalid UTF-8 is replaced, and a cut never splits a character.
// Text from a remote server ends up in DSN header fields, where a line break
// would let it add fields or MIME parts of its own.
func sanitizeText(s string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < 0x20 || r == 0x7f || r == ' ' || (r >= 0x80 && r < 0xa0) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// dsnAddress formats addr for an address field of message/delivery-status:
// "rfc822; addr" for ASCII, else "utf-8; " with each non-ASCII character
// written as \x{HEX} (RFC 6533 utf-8-addr-xtext), so that the part stays
// 7-bit.
func dsnAddress(addrType, addr string) string {
	addr = sanitizeText(addr, maxDiagnosticBytes)
	if isASCII(addr) {
		return addrType + "; " + addr
	}

	var b strings.Builder
	for _, r := range addr {
		if r < 0x80 && r != '\\' {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\x{%X}`, r)
	}
	return "utf-8; " + b.String()
}

// originalRecipient returns the Original-Recipient value for an ORCPT
// parameter, or "" when orcpt is empty. The envelope keeps ORCPT decoded
// from xtext, as "type;address" or as a bare address taken as rfc822.
func originalRecipient(orcpt string) string {
	orcpt = strings.TrimSpace(orcpt)
	if orcpt == "" {
		return ""
	}
	addrType, addr, found := strings.Cut(orcpt, ";")
	if !found {
		return dsnAddress("rfc822", orcpt)
	}
	addrType = strings.ToLower(strings.TrimSpace(addrType))
	if addrType == "" || !isASCII(addrType) || strings.ContainsAny(addrType, " \t\r\n") {
		addrType = "rfc822"
	}
	return dsnAddress(addrType, strings.TrimSpace(addr))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
