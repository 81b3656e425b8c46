package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// A message file is laid out as
//
//	header   "LGSPOOL1" (8 bytes)
//	body     the message bytes, exactly as delivery sends them after Prepend
//	envelope JSON of envelope.Envelope as it was at Commit
//	trailer  body size (uint64), envelope size (uint32),
//	         CRC-32C of header, body and envelope (uint32), "LGE1"
//
// Integers are big endian.
//
// The body comes first so that it streams to disk while the SMTP client
// sends it, and the envelope, which filters may still change, is written at
// Commit. A file whose size, magic numbers or checksum do not match was torn
// by a crash before its Commit returned, and recovery removes it.
const (
	headerMagic  = "LGSPOOL1"
	trailerMagic = "LGE1"
	headerSize   = int64(len(headerMagic))
	trailerSize  = 20

	// maxEnvelopeSize bounds the envelope JSON read back from disk, so a
	// corrupt size field cannot make recovery allocate gigabytes.
	maxEnvelopeSize = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// trailer is the fixed-size record at the end of a message file.
type trailer struct {
	bodySize     int64
	envelopeSize uint32
	checksum     uint32
}

func (t trailer) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.bodySize))
	b = binary.BigEndian.AppendUint32(b, t.envelopeSize)
	b = binary.BigEndian.AppendUint32(b, t.checksum)
	return append(b, trailerMagic...)
}

// fileSize is the size a complete message file with this trailer has.
func (t trailer) fileSize() int64 {
	return headerSize + t.bodySize + int64(t.envelopeSize) + trailerSize
}

var errTorn = errors.New("incomplete message file")

// readTrailer reads and checks the trailer and the header of f against the
// file size. It does not verify the checksum.
func readTrailer(f *os.File) (trailer, error) {
	info, err := f.Stat()
	if err != nil {
		return trailer{}, err
	}
	size := info.Size()
	if size < headerSize+trailerSize {
		return trailer{}, fmt.Errorf("%w: %d bytes is shorter than header and trailer", errTorn, size)
	}

	var head [headerSize]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return trailer{}, err
	}
	if string(head[:]) != headerMagic {
		return trailer{}, fmt.Errorf("%w: bad header magic %q", errTorn, head[:])
	}

	var raw [trailerSize]byte
	if _, err := f.ReadAt(raw[:], size-trailerSize); err != nil {
		return trailer{}, err
	}
	if string(raw[16:]) != trailerMagic {
		return trailer{}, fmt.Errorf("%w: bad trailer magic %q", errTorn, raw[16:])
	}
	t := trailer{
		bodySize:     int64(binary.BigEndian.Uint64(raw[0:8])),
		envelopeSize: binary.BigEndian.Uint32(raw[8:12]),
		checksum:     binary.BigEndian.Uint32(raw[12:16]),
	}
	if t.bodySize < 0 || t.envelopeSize > maxEnvelopeSize || t.fileSize() != size {
		return trailer{}, fmt.Errorf("%w: trailer sizes (body %d, envelope %d) do not match file size %d",
			errTorn, t.bodySize, t.envelopeSize, size)
	}
	return t, nil
}

// verifyChecksum reads everything before the trailer and compares its
// CRC-32C with the trailer's.
func verifyChecksum(f *os.File, t trailer) error {
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, io.NewSectionReader(f, 0, t.fileSize()-trailerSize))
	if err != nil {
		return err
	}
	if n != t.fileSize()-trailerSize {
		return fmt.Errorf("%w: read %d bytes, expected %d", errTorn, n, t.fileSize()-trailerSize)
	}
	if h.Sum32() != t.checksum {
		return fmt.Errorf("%w: checksum %08x, trailer has %08x", errTorn, h.Sum32(), t.checksum)
	}
	return nil
}

// readEnvelope decodes the envelope stored in a message file.
func readEnvelope(f *os.File, t trailer) (*envelope.Envelope, error) {
	raw := make([]byte, t.envelopeSize)
	if _, err := f.ReadAt(raw, headerSize+t.bodySize); err != nil {
		return nil, err
	}
	env := new(envelope.Envelope)
	if err := json.Unmarshal(raw, env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", errTorn, err)
	}
	return env, nil
}
