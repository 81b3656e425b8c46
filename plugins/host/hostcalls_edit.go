package host

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tetratelabs/wazero/api"

	"github.com/lambgate/lambgate/appliance/filter"
)

// hSetReply records the SMTP reply for a reject or tempfail verdict. The
// code must be 400-599; an enhanced code, when given, must be "C.S.D" with
// class C equal to the code's first digit. The text is cleaned rather than
// refused (see cleanText), so a careless plugin cannot inject SMTP lines.
func hSetReply(_ context.Context, c *call, mod api.Module, stack []uint64) {
	code := int32(stack[0])
	enh := c.readString(mod, u32(stack[1]), u32(stack[2]))
	text := c.read(mod, u32(stack[3]), u32(stack[4]))

	if code < 400 || code > 599 {
		c.badReply(fmt.Sprintf("reply code %d is not 400-599", code))
		stack[0] = encI32(statusBadArgument)
		return
	}
	var e [3]int
	if enh != "" {
		var ok bool
		e, ok = parseEnhanced(enh)
		if !ok || e[0] != int(code)/100 {
			c.badReply(fmt.Sprintf("enhanced code %q does not fit reply code %d", enh, code))
			stack[0] = encI32(statusBadArgument)
			return
		}
	}
	clean := cleanText(text, maxReplyText)
	if clean != string(text) {
		// Kept, because the cleaned text is safe, but counted and logged so
		// that the plugin's author can fix it.
		c.plugin.stats.repliesCleaned.Add(1)
		c.plugin.logLimited("plugin reply text cleaned of control characters or cut to 400 bytes",
			"phase", c.phaseName(), "length", len(text))
	}
	c.reply = reply{set: true, code: int(code), enhanced: e, text: clean}
	stack[0] = encI32(statusOK)
}

// badReply counts and logs a reply the host refused.
func (c *call) badReply(reason string) {
	c.plugin.stats.repliesRefused.Add(1)
	c.plugin.logLimited("plugin reply refused", "phase", c.phaseName(), "reason", reason)
}

// logLimited writes a warning about the plugin within its log rate limit.
func (p *Plugin) logLimited(msg string, attrs ...any) {
	if !p.logLimit.Allow() {
		p.stats.logsDropped.Add(1)
		return
	}
	p.log.Warn(msg, attrs...)
}

// parseEnhanced parses an RFC 3463 enhanced status code such as "5.7.1".
func parseEnhanced(s string) ([3]int, bool) {
	var e [3]int
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return e, false
	}
	limits := [3]int{5, 999, 999}
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return e, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > limits[i] {
			return e, false
		}
		e[i] = n
	}
	return e, e[0] >= 2
}

// cleanText makes guest text safe for one SMTP reply or header line: CR,
// LF and other control characters become spaces, invalid UTF-8 becomes
// U+FFFD, and the result is cut to max bytes on a character boundary.
func cleanText(b []byte, max int) string {
	var sb strings.Builder
	sb.Grow(min(len(b), max))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		if sb.Len()+utf8.RuneLen(r) > max {
			break
		}
		sb.WriteRune(r)
	}
	return strings.TrimSpace(sb.String())
}

// validHeaderName reports whether s is an RFC 5322 field name: printable
// ASCII except the colon.
func validHeaderName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

func hAddHeader(_ context.Context, c *call, mod api.Module, stack []uint64) {
	name := c.readString(mod, u32(stack[0]), u32(stack[1]))
	value := c.read(mod, u32(stack[2]), u32(stack[3]))
	if !c.inMessage() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	if !validHeaderName(name) {
		stack[0] = encI32(statusBadArgument)
		return
	}
	if len(c.headers) >= maxHeadersPerCall {
		stack[0] = encI32(statusLimit)
		return
	}
	v := cleanText(value, maxHeaderLine-len(name)-2)
	c.headers = append(c.headers, filter.Header{Name: name, Value: v})
	stack[0] = encI32(statusOK)
}

func validTag(s string) bool {
	if s == "" || len(s) > maxTagLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			ch == '.' || ch == '_' || ch == ':' || ch == '-' || ch == '='
		if !ok {
			return false
		}
	}
	return true
}

func hAddTag(_ context.Context, c *call, mod api.Module, stack []uint64) {
	tag := c.readString(mod, u32(stack[0]), u32(stack[1]))
	if !c.inMessage() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	if !validTag(tag) {
		stack[0] = encI32(statusBadArgument)
		return
	}
	if len(c.tags) >= maxTagsPerCall {
		stack[0] = encI32(statusLimit)
		return
	}
	c.tags = append(c.tags, tag)
	stack[0] = encI32(statusOK)
}

// hLog writes one guest log line, rate-limited per plugin so that a
// plugin logging per message cannot flood the appliance's log buffer.
func hLog(ctx context.Context, c *call, mod api.Module, stack []uint64) {
	level := slog.Level(int32(stack[0]))
	msg := cleanText(c.read(mod, u32(stack[1]), u32(stack[2])), 1000)
	p := c.plugin
	if !p.logLimit.Allow() {
		p.stats.logsDropped.Add(1)
		stack[0] = encI32(statusLimit)
		return
	}
	attrs := []any{"phase", c.phaseName()} // p.log carries the plugin name
	if c.txn != nil && c.txn.QueueID != "" {
		attrs = append(attrs, "queue_id", c.txn.QueueID)
	}
	p.log.Log(ctx, level, "plugin: "+msg, attrs...)
	stack[0] = encI32(statusOK)
}

func (c *call) phaseName() string {
	if c.phase == phaseInit {
		return "init"
	}
	return c.phase.String()
}
