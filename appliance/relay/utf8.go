package relay

import (
	"bufio"
	"bytes"
	"io"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// maxHeaderScan bounds how much of a message is read to find its header's
// end. A longer header is judged by its first maxHeaderScan bytes.
const maxHeaderScan = 256 << 10

// needsSMTPUTF8 reports whether env or the header of body contains bytes
// outside ASCII (RFC 6531), so that relaying it to a server without
// SMTPUTF8 would change its meaning.
func needsSMTPUTF8(env *envelope.Envelope, body envelope.Body) bool {
	if !isASCII(env.From) || !isASCII(env.Prepend) {
		return true
	}
	for _, r := range env.Recipients {
		if !isASCII(r.Address) {
			return true
		}
	}

	br := bufio.NewReader(io.NewSectionReader(body, 0, min(body.Size(), maxHeaderScan)))
	for {
		line, err := br.ReadSlice('\n')
		if !isASCII(string(line)) {
			return true
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if bytes.Equal(line, []byte("\r\n")) || err != nil {
			return false
		}
	}
}
