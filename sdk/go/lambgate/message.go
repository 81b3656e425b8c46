//go:build wasip1

package lambgate

import "unsafe"

// Header returns the first value of the named header field, unfolded and
// with RFC 2047 encoded words decoded. Headers are available in the
// headers, body and done phases.
func Header(name string) (string, bool) {
	s, err := HeaderAt(name, 0)
	return s, err == nil
}

// HeaderAt returns the index-th value (from zero) of the named field.
func HeaderAt(name string, index int) (string, error) {
	return fetchString(func(b unsafe.Pointer, c uint32) int32 { return hostGetHeader(name, int32(index), b, c) })
}

// HeaderCount returns how many fields have the name.
func HeaderCount(name string) int { return max(int(hostHeaderCount(name)), 0) }

// HeaderValues returns every value of the named field in message order.
func HeaderValues(name string) []string {
	n := HeaderCount(name)
	out := make([]string, 0, n)
	for i := range n {
		if v, err := HeaderAt(name, i); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// HeaderBlock returns the raw header block (CRLF line ends, folded as
// received).
func HeaderBlock() ([]byte, error) {
	b, err := fetch(hostGetHeaders)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// BodySize returns the body's size in bytes, in the body and done phases.
func BodySize() (int64, error) {
	n := hostBodySize()
	if n < 0 {
		return 0, statusError(n)
	}
	return n, nil
}

// ReadBody copies body bytes from offset into p and returns the count:
// zero at the end. Prefer SearchBody and Regexp.MatchBody, which run in
// the host and cost no guest loop.
func ReadBody(p []byte, offset int64) (int, error) {
	n := hostGetBody(offset, unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p)))
	if n < 0 {
		return 0, statusError(int64(n))
	}
	return int(n), nil
}

// Part is one MIME entity of the message, leaves and attached messages
// alike, found depth first through nested multiparts and message/rfc822.
type Part struct {
	// Path numbers the entity as IMAP does: "1", "2.1", ...
	Path string
	// ContentType is the lower-case media type without parameters.
	ContentType string
	// FileName is the decoded name from Content-Disposition or
	// Content-Type, "" when none.
	FileName string
	// Disposition is "attachment", "inline" or "".
	Disposition string
	// Size is the entity body's size as transferred (still encoded).
	Size int64
}

// MIMEError returns why the host stopped walking the MIME tree early
// (malformed structure, nesting deeper than 16, more than 1,000 entities),
// or "" when it walked the whole tree. Parts then lists only the entities
// before the error, so a policy on attachments should not pass such a
// message silently.
func MIMEError() (string, error) { return property(11) }

// Parts returns the message's MIME entities, in the body and done phases.
func Parts() ([]Part, error) {
	n := hostPartCount()
	if n < 0 {
		return nil, statusError(int64(n))
	}
	out := make([]Part, 0, n)
	for i := range n {
		field := func(f int32) string {
			return must(fetchString(func(b unsafe.Pointer, c uint32) int32 { return hostGetPart(i, f, b, c) }))
		}
		out = append(out, Part{
			ContentType: field(1),
			FileName:    field(2),
			Disposition: field(3),
			Path:        field(4),
			Size:        max(hostPartSize(i), 0),
		})
	}
	return out, nil
}
