package host

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/lambgate/lambgate/appliance/filter"
)

// Bounds on host-side parsing, so that a hostile message costs bounded work.
const (
	maxHeaderBytes = 1 << 20 // a header block longer than this is cut there
	maxParts       = 1000
	maxMIMEDepth   = 16
)

// message is the host's lazily parsed view of one spooled message. The
// header block is parsed at the first header request, the body is read at
// the first body request, and the MIME tree is walked at the first part
// request. A message whose plugins never request the body costs no body
// read. A message is used by one
// Data call, which runs its plugins one after another, so it needs no lock.
type message struct {
	src filter.Message

	headersRead bool
	header      []byte // raw header block including the final CRLF, without the blank line
	bodyStart   int64
	fields      []headerField

	bodyRead bool
	body     []byte

	partsRead bool
	parts     []mimePart
	mimeErr   error // the reason the walk stopped early; parts before it are kept
}

type headerField struct {
	name  string // as received
	value string // unfolded, RFC 2047 encoded words decoded
}

type mimePart struct {
	path        string
	contentType string
	fileName    string
	disposition string
	size        int64
}

func newMessage(m filter.Message) *message { return &message{src: m} }

var wordDecoder = mime.WordDecoder{
	// Unknown charsets are passed through undecoded rather than failing the
	// header: a rule can still match the ASCII parts.
	CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("charset %q is not supported", charset)
	},
}

// readHeader finds the blank line that ends the header block and splits
// the block into fields.
func (m *message) readHeader() {
	if m.headersRead {
		return
	}
	m.headersRead = true

	buf := readHeaderBlock(m.src)
	switch {
	case bytes.HasPrefix(buf, []byte("\r\n")):
		m.header, m.bodyStart = nil, 2
	default:
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			m.header, m.bodyStart = buf[:i+2], int64(i+4)
		} else {
			// No blank line within the limit: treat all of it as header and
			// the rest, if any, as body.
			m.header, m.bodyStart = buf, int64(len(buf))
		}
	}
	m.fields = parseFields(m.header)
}

// readHeaderBlock reads the message in growing chunks until it holds the
// blank line that ends the header block, the whole message, or
// maxHeaderBytes, so that a large message costs no large read here.
func readHeaderBlock(src filter.Message) []byte {
	size := min(src.Size(), maxHeaderBytes)
	buf := make([]byte, 0, min(size, 8192))
	for int64(len(buf)) < size {
		n := min(int64(max(cap(buf)-len(buf), 8192)), size-int64(len(buf)))
		if int64(cap(buf)-len(buf)) < n {
			buf = append(buf, make([]byte, n)...)[:len(buf)]
		}
		got, _ := src.ReadAt(buf[len(buf):len(buf)+int(n)], int64(len(buf)))
		if got == 0 {
			break
		}
		// Search from three bytes back, in case the CRLFCRLF straddles
		// two chunks.
		from := max(len(buf)-3, 0)
		buf = buf[:len(buf)+got]
		if bytes.Contains(buf[from:], []byte("\r\n\r\n")) {
			break
		}
	}
	return buf
}

func parseFields(block []byte) []headerField {
	var fields []headerField
	for line := range bytes.SplitSeq(block, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.value += string(line)
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // not a field; RFC 5322 has no place for it
		}
		fields = append(fields, headerField{name: string(bytes.TrimRight(name, " \t")), value: string(value)})
	}
	for i := range fields {
		v := strings.TrimSpace(fields[i].value)
		if d, err := wordDecoder.DecodeHeader(v); err == nil {
			v = d
		}
		fields[i].value = v
	}
	return fields
}

// headerValue returns the index-th value (from zero) of the named field.
func (m *message) headerValue(name string, index int) (string, bool) {
	m.readHeader()
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			if index == 0 {
				return f.value, true
			}
			index--
		}
	}
	return "", false
}

func (m *message) headerBlock() []byte {
	m.readHeader()
	return m.header
}

func (m *message) bodySize() int64 {
	m.readHeader()
	return max(m.src.Size()-m.bodyStart, 0)
}

// bodyBytes reads the whole body once. Messages are bounded by the
// gateway's size limit, and regular expressions need contiguous input.
func (m *message) bodyBytes() []byte {
	if m.bodyRead {
		return m.body
	}
	m.bodyRead = true
	m.body = make([]byte, m.bodySize())
	n, _ := m.src.ReadAt(m.body, m.bodyStart)
	m.body = m.body[:n]
	return m.body
}

// readBody copies body bytes from offset into p without loading the body.
func (m *message) readBody(p []byte, offset int64) int {
	size := m.bodySize()
	if offset >= size || len(p) == 0 {
		return 0
	}
	p = p[:min(int64(len(p)), size-offset)]
	n, _ := m.src.ReadAt(p, m.bodyStart+offset)
	return n
}

// mimeParts walks the MIME tree once, depth first, into nested multiparts
// and attached messages, recording every entity except multipart
// containers.
func (m *message) mimeParts() []mimePart {
	if m.partsRead {
		return m.parts
	}
	m.partsRead = true
	m.readHeader()

	h := make(textproto.MIMEHeader)
	for _, f := range m.fields {
		h.Add(f.name, f.value)
	}
	body := io.NewSectionReader(m.src, m.bodyStart, m.bodySize())
	m.mimeErr = m.walk(h, body, "1", 0)
	return m.parts
}

func (m *message) walk(h textproto.MIMEHeader, body io.Reader, path string, depth int) error {
	if depth > maxMIMEDepth {
		return fmt.Errorf("MIME nesting deeper than %d at part %s", maxMIMEDepth, path)
	}
	if len(m.parts) >= maxParts {
		return fmt.Errorf("more than %d MIME parts", maxParts)
	}

	ctype, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || ctype == "" {
		ctype = "text/plain"
		if h.Get("Content-Type") != "" {
			// A malformed type is still recorded, so that a policy on types
			// matches what the sender declared rather than a default.
			ctype = strings.ToLower(strings.TrimSpace(strings.SplitN(h.Get("Content-Type"), ";", 2)[0]))
		}
	}

	if strings.HasPrefix(ctype, "multipart/") && params["boundary"] != "" {
		mr := multipart.NewReader(body, params["boundary"])
		for i := 1; ; i++ {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("part %s.%d: %w", path, i, err)
			}
			child := path + "." + strconv.Itoa(i)
			if depth == 0 && path == "1" {
				child = strconv.Itoa(i)
			}
			if err := m.walk(textproto.MIMEHeader(p.Header), p, child, depth+1); err != nil {
				return err
			}
		}
	}

	part := mimePart{path: path, contentType: ctype, fileName: entityFileName(h, params)}
	if cd := h.Get("Content-Disposition"); cd != "" {
		if d, _, err := mime.ParseMediaType(cd); err == nil {
			part.disposition = d
		} else {
			part.disposition = strings.ToLower(strings.TrimSpace(strings.SplitN(cd, ";", 2)[0]))
		}
	}

	if ctype == "message/rfc822" || ctype == "message/global" {
		// Count the attached message's bytes while parsing its header, then
		// walk its body as a child of this part.
		cr := &countingReader{r: body}
		tr := textproto.NewReader(bufio.NewReader(cr))
		inner, err := tr.ReadMIMEHeader()
		idx := len(m.parts)
		m.parts = append(m.parts, part)
		if err != nil && len(inner) == 0 {
			return nil
		}
		werr := m.walk(inner, tr.R, path+".1", depth+1)
		m.parts[idx].size = cr.n
		return werr
	}

	n, err := io.Copy(io.Discard, body)
	part.size = n
	m.parts = append(m.parts, part)
	return err
}

// entityFileName returns the decoded file name an entity claims, from the
// Content-Disposition filename (RFC 2183, RFC 2231 continuations) or the
// Content-Type name. A malformed header is searched leniently, because
// senders hide names exactly there.
func entityFileName(h textproto.MIMEHeader, ctParams map[string]string) string {
	name := ""
	if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
		name = dp["filename"]
	} else {
		name = lenientParam(h.Get("Content-Disposition"), "filename")
	}
	if name == "" {
		name = ctParams["name"]
	}
	if name == "" && ctParams == nil {
		name = lenientParam(h.Get("Content-Type"), "name")
	}
	if d, err := wordDecoder.DecodeHeader(name); err == nil {
		name = d
	}
	return name
}

func lenientParam(header, key string) string {
	lower := strings.ToLower(header)
	for _, k := range []string{key + "*=", key + "="} {
		i := strings.Index(lower, k)
		if i < 0 {
			continue
		}
		v := strings.TrimSpace(header[i+len(k):])
		if strings.HasPrefix(v, `"`) {
			if j := strings.IndexByte(v[1:], '"'); j >= 0 {
				return v[1 : j+1]
			}
		}
		if j := strings.IndexAny(v, "; \t"); j >= 0 {
			v = v[:j]
		}
		return strings.Trim(v, `"'`)
	}
	return ""
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
