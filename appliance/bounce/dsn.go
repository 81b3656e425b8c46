package bounce

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// dsnMarkerField marks every DSN that Lambgate builds, with the original's
// queue id as its value, so that a DSN that comes back gets no DSN in reply.
const dsnMarkerField = "X-Lambgate-DSN"

// dsnSubject is the Subject of every DSN, the one that Postfix also uses
// and that users and mail filters recognise.
const dsnSubject = "Undelivered Mail Returned to Sender"

// report is the input of one DSN.
type report struct {
	// HELO is the reporting MTA's name, also the domain of From and
	// Message-ID.
	HELO string
	// Hostname names the appliance in the human-readable part.
	Hostname string
	// Original is the envelope of the message that failed.
	Original *envelope.Envelope
	// Headers is the original's cleaned header section.
	Headers *originalHeaders
	// Failed holds the recipients to report, each with its reason.
	Failed []envelope.Recipient
	// Date is when the DSN is made.
	Date time.Time
}

// buildDSN returns a multipart/report DSN (RFC 3464, RFC 6522) with three
// parts: a plain-text explanation, a message/delivery-status part with one
// block per failed recipient, and the original's headers as
// text/rfc822-headers. The original's body is never included, not even
// when the client asked for it with RET=FULL (RFC 3461), because it is
// likely spam.
func buildDSN(r *report) ([]byte, error) {
	if err := checkSender(r.Original.From); err != nil {
		return nil, err
	}
	if len(r.Failed) == 0 {
		return nil, errors.New("bounce: no failed recipient to report")
	}

	var msg bytes.Buffer
	parts := multipart.NewWriter(&msg)
	messageID := newMessageID(r.HELO)

	top := []struct{ name, value string }{
		{"From", "Mail Delivery System <MAILER-DAEMON@" + r.HELO + ">"},
		// TODO: a sender with a UTF-8 local part gets an 8-bit To field.
		// It needs SMTPUTF8 on delivery and message/global-delivery-status
		// (RFC 6533), and neither is used yet.
		{"To", (&mail.Address{Address: r.Original.From}).String()},
		{"Subject", dsnSubject},
		{"Date", r.Date.Format(time.RFC1123Z)},
		{"Message-ID", messageID},
		{"MIME-Version", "1.0"},
		// RFC 3834 marks the DSN as automatic, so that auto-responders
		// at the destination do not reply to it.
		{"Auto-Submitted", "auto-replied"},
		{dsnMarkerField, r.Original.QueueID},
		{"Content-Type", mime.FormatMediaType("multipart/report", map[string]string{
			"report-type": "delivery-status",
			"boundary":    parts.Boundary(),
		})},
	}
	for _, f := range top {
		fmt.Fprintf(&msg, "%s: %s\r\n", f.name, f.value)
	}
	msg.WriteString("\r\n")

	if err := writeTextPart(parts, explanation(r)); err != nil {
		return nil, err
	}
	if err := writeStatusPart(parts, r); err != nil {
		return nil, err
	}
	if err := writeHeadersPart(parts, r.Headers); err != nil {
		return nil, err
	}
	if err := parts.Close(); err != nil {
		return nil, err
	}
	return msg.Bytes(), nil
}

// checkSender rejects an envelope sender that cannot be a To address.
func checkSender(from string) error {
	if from == "" {
		return errors.New("bounce: the null sender gets no DSN")
	}
	if sanitizeText(from, len(from)) != from || !strings.Contains(from, "@") {
		return fmt.Errorf("bounce: invalid sender address %q: a DSN needs local@domain without spaces or control characters", from)
	}
	return nil
}

// newMessageID returns a Message-ID at the HELO name: a timestamp and 26
// random base32 characters, unique without any state.
func newMessageID(helo string) string {
	return "<" + time.Now().UTC().Format("20060102150405") + "." + rand.Text() + "@" + helo + ">"
}

// explanation is the human-readable first part.
func explanation(r *report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\n", r.Hostname)
	b.WriteString("Your message could not be delivered to one or more recipients.\r\n")
	b.WriteString("Only its header section is returned below; the body was not kept.\r\n\r\n")
	for _, rcpt := range r.Failed {
		f := failureOf(rcpt)
		addr := sanitizeText(rcpt.Address, maxDiagnosticBytes)
		if f.Code != 0 {
			fmt.Fprintf(&b, "<%s>: %d %s %s\r\n", addr, f.Code, f.Status, f.Text)
		} else {
			fmt.Fprintf(&b, "<%s>: %s %s\r\n", addr, f.Status, f.Text)
		}
	}
	return b.String()
}

func writeTextPart(parts *multipart.Writer, text string) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Description", "Notification")
	if isASCII(text) {
		h.Set("Content-Type", "text/plain; charset=us-ascii")
		h.Set("Content-Transfer-Encoding", "7bit")
		w, err := parts.CreatePart(h)
		if err != nil {
			return err
		}
		_, err = w.Write([]byte(text))
		return err
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	return writeQuotedPrintable(parts, h, []byte(text))
}

// writeStatusPart writes the message/delivery-status part: the per-message
// fields, then one block of per-recipient fields for each failed recipient.
func writeStatusPart(parts *multipart.Writer, r *report) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Description", "Delivery report")
	h.Set("Content-Type", "message/delivery-status")
	w, err := parts.CreatePart(h)
	if err != nil {
		return err
	}

	var b strings.Builder
	field := func(name, value string) {
		fmt.Fprintf(&b, "%s: %s\r\n", name, value)
	}
	field("Reporting-MTA", "dns; "+r.HELO)
	field("X-Lambgate-Queue-ID", sanitizeText(r.Original.QueueID, 64))
	if r.Original.EnvID != "" {
		field("Original-Envelope-Id", sanitizeText(r.Original.EnvID, 100))
	}
	if !r.Original.Received.IsZero() {
		field("Arrival-Date", r.Original.Received.Format(time.RFC1123Z))
	}

	for _, rcpt := range r.Failed {
		f := failureOf(rcpt)
		b.WriteString("\r\n")
		if orcpt := originalRecipient(rcpt.ORCPT); orcpt != "" {
			field("Original-Recipient", orcpt)
		}
		field("Final-Recipient", dsnAddress("rfc822", rcpt.Address))
		field("Action", "failed")
		field("Status", f.Status)
		// TODO: report Remote-MTA once envelope.Recipient records the next
		// hop. Report it only for hops outside the organisation, never the
		// internal server's name.
		if f.Code != 0 {
			field("Diagnostic-Code", fmt.Sprintf("smtp; %d %s %s", f.Code, f.Status, asciiOnly(f.Text)))
		} else {
			field("Diagnostic-Code", "X-Lambgate; "+asciiOnly(f.Text))
		}
		// TODO: use the recipient's own last attempt time once
		// envelope.Recipient records it. Until then a recipient that was
		// tried reports the DSN's date, since the queue bounces right after
		// a permanent failure or at expiry.
		if rcpt.Attempts > 0 {
			field("Last-Attempt-Date", r.Date.Format(time.RFC1123Z))
		}
	}
	_, err = w.Write([]byte(b.String()))
	return err
}

// asciiOnly replaces non-ASCII characters with "?" because
// message/delivery-status is a 7-bit part.
func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0x80 {
			return '?'
		}
		return r
	}, s)
}

// writeHeadersPart writes the original's header section as
// text/rfc822-headers, quoted-printable when it contains 8-bit bytes.
func writeHeadersPart(parts *multipart.Writer, headers *originalHeaders) error {
	raw := headers.Raw
	if headers.Truncated {
		note := fmt.Sprintf("X-Lambgate-Truncated: header section cut at %d bytes\r\n", MaxHeaderBytes)
		raw = append(bytes.Clone(raw), note...)
	}

	h := textproto.MIMEHeader{}
	h.Set("Content-Description", "Undelivered message headers")
	if isASCII(string(raw)) {
		h.Set("Content-Type", "text/rfc822-headers")
		h.Set("Content-Transfer-Encoding", "7bit")
		w, err := parts.CreatePart(h)
		if err != nil {
			return err
		}
		_, err = w.Write(raw)
		return err
	}
	h.Set("Content-Type", "text/rfc822-headers; charset=utf-8")
	return writeQuotedPrintable(parts, h, raw)
}

func writeQuotedPrintable(parts *multipart.Writer, h textproto.MIMEHeader, data []byte) error {
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	w, err := parts.CreatePart(h)
	if err != nil {
		return err
	}
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write(data); err != nil {
		return err
	}
	return qp.Close()
}
