package smtpd

import (
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/lambgate/lambgate/appliance/filter"
)

// Fixed replies.
var (
	errBareLineInContent = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
		Message: "Bare CR or LF in message content, lines must end in CRLF"}
	errBareLineInCommand = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
		Message: "Bare CR or LF in command, lines must end in CRLF"}
	errNestedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "Bad sequence of commands: nested MAIL, send RSET or finish the transaction first"}
	// errTransferReset ends a BDAT transfer that the client reset; the
	// client never sees it (see strictConn.finishTransfer).
	errTransferReset = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Transfer reset"}
	errContentLineTooLong = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message line too long, lines are limited to 998 bytes before CRLF"}
	errMailLoop = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 6},
		Message: "Too many Received headers, mail loop detected"}
	errTooLarge = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "Message size exceeds the limit"}
	errTooManyRecipients = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
		Message: "Too many recipients"}
	errNoSpace = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
		Message: "Insufficient system storage"}
	errSpool = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary failure storing the message, try again later"}
	errBadSender = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7},
		Message: "Bad sender address syntax"}
)

// Default filter replies.
var (
	defaultReject   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message rejected"}
	defaultTempfail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Try again later"}
)

// verdictError turns a Reject or Tempfail verdict into a reply. A plugin
// must not be able to send a 2xx reply or inject reply lines, so a code of
// the wrong class and text with control characters fall back to the
// action's default.
func verdictError(v filter.Verdict) *smtp.SMTPError {
	def, class := defaultReject, 5
	if v.Action == filter.Tempfail {
		def, class = defaultTempfail, 4
	}
	e := *def
	if v.Code/100 == class && v.Code%100 < 60 {
		e.Code = v.Code
	}
	if v.Enhanced[0] == class && validEnhancedPart(v.Enhanced[1]) && validEnhancedPart(v.Enhanced[2]) {
		e.EnhancedCode = smtp.EnhancedCode(v.Enhanced)
	}
	if text := strings.TrimSpace(v.Text); text != "" && len(text) <= 200 && isPrintableASCII(text) {
		e.Message = text
	}
	return &e
}

func validEnhancedPart(n int) bool { return n >= 0 && n <= 999 }

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// policyError builds the reply for a policy decision.
func policyError(code int, enhanced [3]int, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enhanced), Message: text}
}

// formatReply formats a one-line reply for the connection layer, which
// writes below go-smtp.
func formatReply(code int, enhanced smtp.EnhancedCode, text string) string {
	return fmt.Sprintf("%d %d.%d.%d %s\r\n", code, enhanced[0], enhanced[1], enhanced[2], text)
}
