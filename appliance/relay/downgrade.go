package relay

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// A server without 8BITMIME must not receive 8-bit message bodies: RFC 6152
// leaves the client the choice to convert the message to 7 bits or to
// return it. downgrade8bit converts, as Postfix does: every MIME leaf part
// whose body has 8-bit bytes and whose transfer encoding is 7bit, 8bit,
// binary or missing is re-encoded as quoted-printable, inside multiparts
// and attached messages too. Header fields with 8-bit bytes stay as they
// are, because encoding them needs a charset the message does not name.

// bytesBody is a message held in memory.
type bytesBody struct{ *bytes.Reader }

func (b bytesBody) Size() int64 { return b.Reader.Size() }

// downgradeBody reads body and returns it converted by downgrade8bit. The
// whole message is read into memory, which only this rare path does.
func downgradeBody(body envelope.Body) (envelope.Body, error) {
	msg := make([]byte, body.Size())
	if _, err := body.ReadAt(msg, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return bytesBody{bytes.NewReader(downgrade8bit(msg))}, nil
}

// maxMIMEDepth bounds the nesting of multiparts and attached messages that
// the conversion follows, so a crafted message cannot exhaust the stack.
const maxMIMEDepth = 32

// downgrade8bit returns msg with its 8-bit parts in quoted-printable. A
// message without 8-bit bytes comes back unchanged.
func downgrade8bit(msg []byte) []byte {
	if !has8bit(msg) {
		return msg
	}
	return convertEntity(msg, 0)
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// convertEntity converts one MIME entity: its header section, the empty
// line and its body.
func convertEntity(ent []byte, depth int) []byte {
	header, body, ok := splitEntity(ent)
	if !ok || !has8bit(body) || depth >= maxMIMEDepth {
		return ent
	}
	mediaType, params, err := mime.ParseMediaType(headerValue(header, "Content-Type"))
	if err != nil {
		mediaType = "text/plain"
	}
	cte := strings.ToLower(strings.TrimSpace(headerValue(header, "Content-Transfer-Encoding")))

	switch {
	case strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "":
		return joinEntity(header, convertMultipart(body, params["boundary"], depth))
	case mediaType == "message/rfc822" || mediaType == "message/global":
		return joinEntity(header, convertEntity(body, depth+1))
	case cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary":
		var out bytes.Buffer
		w := quotedprintable.NewWriter(&out)
		w.Write(body)
		w.Close()
		header = setHeader(header, "Content-Transfer-Encoding", "quoted-printable")
		return joinEntity(header, out.Bytes())
	}
	return ent
}

// splitEntity splits an entity at the empty line after its header section.
// header keeps its last CRLF. An entity without a body has no empty line.
func splitEntity(ent []byte) (header, body []byte, ok bool) {
	if bytes.HasPrefix(ent, []byte("\r\n")) {
		return nil, ent[2:], true
	}
	i := bytes.Index(ent, []byte("\r\n\r\n"))
	if i < 0 {
		return nil, nil, false
	}
	return ent[:i+2], ent[i+4:], true
}

func joinEntity(header, body []byte) []byte {
	out := make([]byte, 0, len(header)+2+len(body))
	out = append(out, header...)
	out = append(out, '\r', '\n')
	return append(out, body...)
}

// convertMultipart converts each part between the boundary delimiter lines
// and keeps preamble, delimiters and epilogue as they are.
func convertMultipart(body []byte, boundary string, depth int) []byte {
	delim := []byte("--" + boundary)
	var out bytes.Buffer
	rest := body
	partStart := -1 // offset in body of the current part, -1 in the preamble
	offset := 0
	for len(rest) > 0 {
		line := rest
		if i := bytes.Index(rest, []byte("\r\n")); i >= 0 {
			line = rest[:i+2]
		}
		trimmed := bytes.TrimRight(line, " \t\r\n")
		isDelim := bytes.HasPrefix(trimmed, delim)
		closing := isDelim && bytes.Equal(trimmed, append(delim, '-', '-'))
		if isDelim && !closing && len(trimmed) != len(delim) {
			isDelim = false
		}
		if isDelim {
			if partStart < 0 {
				out.Write(body[:offset])
			} else {
				// The CRLF before a delimiter belongs to the delimiter.
				part := body[partStart:offset]
				part = bytes.TrimSuffix(part, []byte("\r\n"))
				out.Write(convertEntity(part, depth+1))
				out.WriteString("\r\n")
			}
			out.Write(line)
			offset += len(line)
			rest = rest[len(line):]
			if closing {
				out.Write(rest)
				return out.Bytes()
			}
			partStart = offset
			continue
		}
		offset += len(line)
		rest = rest[len(line):]
	}
	// No closing delimiter: the last part runs to the end.
	if partStart < 0 {
		return body
	}
	out.Write(convertEntity(body[partStart:], depth+1))
	return out.Bytes()
}

// headerValue returns the unfolded value of the first field called name.
func headerValue(header []byte, name string) string {
	start, end := findField(header, name)
	if start < 0 {
		return ""
	}
	field := string(header[start:end])
	_, value, _ := strings.Cut(field, ":")
	value = strings.ReplaceAll(value, "\r\n", "")
	return strings.TrimSpace(value)
}

// findField returns the byte range of the first field called name,
// continuation lines and final CRLF included, or -1.
func findField(header []byte, name string) (int, int) {
	for pos := 0; pos < len(header); {
		end := fieldEnd(header, pos)
		line := header[pos:end]
		if colon := bytes.IndexByte(line, ':'); colon > 0 &&
			strings.EqualFold(strings.TrimRight(string(line[:colon]), " \t"), name) {
			return pos, end
		}
		pos = end
	}
	return -1, -1
}

// fieldEnd returns where the field starting at pos ends: after its last
// line, continuation lines (starting with space or tab) included.
func fieldEnd(header []byte, pos int) int {
	for {
		i := bytes.Index(header[pos:], []byte("\r\n"))
		if i < 0 {
			return len(header)
		}
		pos += i + 2
		if pos >= len(header) || (header[pos] != ' ' && header[pos] != '\t') {
			return pos
		}
	}
}

// setHeader replaces the first field called name with "name: value", or
// appends it when there is none.
func setHeader(header []byte, name, value string) []byte {
	field := name + ": " + value + "\r\n"
	start, end := findField(header, name)
	if start < 0 {
		return append(append([]byte(nil), header...), field...)
	}
	out := make([]byte, 0, len(header)+len(field))
	out = append(out, header[:start]...)
	out = append(out, field...)
	return append(out, header[end:]...)
}
