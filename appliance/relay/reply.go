package relay

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

// maxReplyLines stops a server that never ends its reply. The length of a
// line is bounded by the read buffer, which is far above the 512 octets of
// RFC 5321 section 4.5.3.1.5, so a talkative server still parses.
const maxReplyLines = 100

// errReplyLine reports a reply line that does not fit the read buffer.
var errReplyLine = errors.New("reply line too long")

// smtpReply is one SMTP reply, possibly of several lines.
type smtpReply struct {
	Code int
	// Enhanced is the RFC 3463 status code of the first line ("5.1.1"),
	// or "" when the server sent none.
	Enhanced string
	// Lines holds the text of each line without the code, the separator
	// and the enhanced status code.
	Lines []string
}

// Text returns the reply's lines joined with spaces, for results and logs.
func (r smtpReply) Text() string {
	return strings.Join(r.Lines, " ")
}

// String formats the reply as it appeared on the wire, on one line.
func (r smtpReply) String() string {
	if r.Enhanced == "" {
		return fmt.Sprintf("%d %s", r.Code, r.Text())
	}
	return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text())
}

// readReply reads one reply, following the "ddd-" continuation lines of an
// RFC 5321 multiline reply until a "ddd " or bare "ddd" line.
func readReply(br *bufio.Reader) (smtpReply, error) {
	var reply smtpReply

	for n := 0; ; n++ {
		if n == maxReplyLines {
			return reply, fmt.Errorf("reply has more than %d lines", maxReplyLines)
		}

		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return reply, fmt.Errorf("%w: more than %d bytes", errReplyLine, br.Size())
		}
		if err != nil {
			return reply, err
		}
		line := strings.TrimRight(string(raw), "\r\n")

		code, more, text, err := parseReplyLine(line)
		if err != nil {
			return reply, err
		}
		if n == 0 {
			reply.Code = code
			reply.Enhanced, text = splitEnhanced(code, text)
		} else {
			if code != reply.Code {
				return reply, fmt.Errorf("malformed reply: line %q continues a %d reply",
					line, reply.Code)
			}
			if reply.Enhanced != "" {
				text = strings.TrimPrefix(text, reply.Enhanced+" ")
			}
		}
		reply.Lines = append(reply.Lines, text)

		if !more {
			return reply, nil
		}
	}
}

// parseReplyLine splits "250-text" or "250 text" into its code, whether
// more lines follow, and the text.
func parseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("malformed reply line %q", line)
	}
	for i := range 3 {
		c := line[i]
		if c < '0' || c > '9' {
			return 0, false, "", fmt.Errorf("malformed reply line %q: no reply code", line)
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("malformed reply line %q: code out of range", line)
	}
	if len(line) == 3 {
		return code, false, "", nil
	}

	switch line[3] {
	case ' ':
		return code, false, line[4:], nil
	case '-':
		return code, true, line[4:], nil
	}
	return 0, false, "", fmt.Errorf("malformed reply line %q: bad separator", line)
}

// splitEnhanced removes a leading RFC 3463 status code ("class.subject.detail")
// from text when its class matches the reply code's first digit.
func splitEnhanced(code int, text string) (enhanced, rest string) {
	word, rest, _ := strings.Cut(text, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 {
		return "", text
	}
	if parts[0] != fmt.Sprint(code/100) || (code/100 != 2 && code/100 != 4 && code/100 != 5) {
		return "", text
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return "", text
		}
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return "", text
			}
		}
	}
	return word, rest
}
