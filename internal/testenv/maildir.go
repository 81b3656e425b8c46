package testenv

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Message is one message that Postfix delivered into a Maildir.
type Message struct {
	// Path is the message file.
	Path string
	// Raw is the file as virtual(8) wrote it: LF line ends, with the
	// Return-Path, X-Original-To, Delivered-To and Received headers that
	// Postfix added.
	Raw []byte
	// Header holds the parsed header fields of Raw.
	Header mail.Header
	// Body is the part of Raw after the empty line that ends the header.
	Body []byte
}

// Original returns the message as the SMTP client sent it: Raw without the
// Return-Path, Delivered-To and X-Original-To headers of virtual(8) and
// the one Received header that Postfix's smtpd added, with CRLF line ends, not dot-stuffed.
// A bare LF in the original message also comes back as CRLF.
func (m Message) Original() []byte {
	rest := m.Raw
	for _, name := range []string{"Return-Path", "X-Original-To", "Delivered-To", "Received"} {
		field, after := firstField(rest)
		if strings.EqualFold(field, name) {
			rest = after
		}
	}
	return bytes.ReplaceAll(rest, []byte("\n"), []byte("\r\n"))
}

// firstField returns the name of the first header field of msg and msg
// after that field and its continuation lines.
func firstField(msg []byte) (name string, rest []byte) {
	colon := bytes.IndexByte(msg, ':')
	newline := bytes.IndexByte(msg, '\n')
	if colon < 0 || newline < 0 || newline < colon {
		return "", msg
	}
	name = string(msg[:colon])
	rest = msg[newline+1:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			return name, nil
		}
		rest = rest[end+1:]
	}
	return name, rest
}

// Messages returns the messages delivered to the full address user, oldest
// first. It fails the test in relay mode (PostfixOptions.RelayTo), where
// nothing is delivered to Maildirs.
func (p *Postfix) Messages(user string) []Message {
	p.t.Helper()
	msgs, err := p.messages(user)
	if err != nil {
		p.t.Fatal(err)
	}
	return msgs
}

// WaitMessages waits until at least n messages were delivered to user and
// returns them. When the timeout passes first, it fails t with the
// maillog.
func (p *Postfix) WaitMessages(t testing.TB, user string, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := p.messages(user)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix %s: %d of %d messages for %s arrived within %v; maillog:\n%s",
				p.addr, len(msgs), n, user, timeout, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Count returns the number of messages delivered to all Maildirs.
func (p *Postfix) Count() int {
	p.t.Helper()
	count := 0
	for _, sub := range []string{"new", "cur"} {
		files, err := filepath.Glob(filepath.Join(p.mailDir, "*", sub, "*"))
		if err != nil {
			p.t.Fatalf("list Maildirs in %s: %v", p.mailDir, err)
		}
		count += len(files)
	}
	return count
}

func (p *Postfix) messages(user string) ([]Message, error) {
	if p.opts.RelayTo != "" {
		return nil, fmt.Errorf("postfix %s relays to %s: read the messages from the sink there", p.addr, p.opts.RelayTo)
	}
	address := strings.ToLower(user)
	if len(p.opts.Users) > 0 {
		if !slices.ContainsFunc(p.opts.Users, func(u string) bool { return strings.EqualFold(u, user) }) {
			return nil, fmt.Errorf("postfix %s has no user %q: add it to PostfixOptions.Users", p.addr, user)
		}
		return readMaildir(filepath.Join(p.mailDir, address))
	}

	all, err := readMaildir(filepath.Join(p.mailDir, catchAllMaildir))
	if err != nil {
		return nil, err
	}
	var mine []Message
	for _, m := range all {
		if strings.EqualFold(m.Header.Get("Delivered-To"), address) {
			mine = append(mine, m)
		}
	}
	return mine, nil
}

// readMaildir reads the messages in the new and cur folders of a Maildir,
// oldest first. A Maildir that does not exist yet holds no messages.
func readMaildir(dir string) ([]Message, error) {
	type entry struct {
		path string
		mod  time.Time
	}
	var entries []entry
	for _, sub := range []string{"new", "cur"} {
		files, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			info, err := f.Info()
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry{filepath.Join(dir, sub, f.Name()), info.ModTime()})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})

	msgs := make([]Message, 0, len(entries))
	for _, e := range entries {
		raw, err := os.ReadFile(e.path)
		if err != nil {
			return nil, err
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse delivered message %s: %v", e.path, err)
		}
		msgs = append(msgs, Message{
			Path:   e.path,
			Raw:    raw,
			Header: parsed.Header,
			Body:   messageBody(raw),
		})
	}
	return msgs, nil
}

// messageBody returns the part of a message after the empty line that
// ends its header.
func messageBody(raw []byte) []byte {
	if bytes.HasPrefix(raw, []byte("\n")) {
		return raw[1:]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[i+2:]
	}
	return nil
}
