package fat16

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// encodeDir returns the directory entries of n: "." and ".." unless it is
// the root directory, then for each child a long file name (when the name
// is not already an upper-case 8.3 name) and its short entry. parent is nil
// when n's parent is the root directory, whose cluster number is 0.
func encodeDir(n *node, parent *node, modTime time.Time, isRoot bool) []byte {
	var out []byte
	if !isRoot {
		out = append(out, shortEntry(dotName("."), attrDirectory, n.cluster, 0, modTime)...)
		var parentCluster uint16
		if parent != nil {
			parentCluster = parent.cluster
		}
		out = append(out, shortEntry(dotName(".."), attrDirectory, parentCluster, 0, modTime)...)
	}

	taken := map[[11]byte]bool{}
	for _, c := range n.children {
		short, exact := shortName(c.name, taken)
		taken[short] = true
		if !exact {
			out = append(out, longNameEntries(c.name, short)...)
		}
		attr := byte(attrArchive)
		size := uint32(len(c.data))
		if c.isDir {
			attr, size = attrDirectory, 0
		}
		out = append(out, shortEntry(short, attr, c.cluster, size, modTime)...)
	}
	return out
}

func dotName(s string) (name [11]byte) {
	copy(name[:], padRight(s, 11))
	return name
}

func shortEntry(name [11]byte, attr byte, cluster uint16, size uint32, modTime time.Time) []byte {
	e := make([]byte, dirEntrySize)
	copy(e[0:11], name[:])
	e[11] = attr
	fatTime, fatDate := encodeTime(modTime)
	le := binary.LittleEndian
	le.PutUint16(e[14:], fatTime) // creation time
	le.PutUint16(e[16:], fatDate) // creation date
	le.PutUint16(e[18:], fatDate) // last access date
	le.PutUint16(e[22:], fatTime)
	le.PutUint16(e[24:], fatDate)
	le.PutUint16(e[26:], cluster)
	le.PutUint32(e[28:], size)
	return e
}

// encodeTime converts t to FAT's local-time fields, which count from 1980
// in two-second steps.
func encodeTime(t time.Time) (fatTime, fatDate uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		return 0, 1<<5 | 1 // 1980-01-01
	}
	fatTime = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	fatDate = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	return fatTime, fatDate
}

// shortName returns the 8.3 name of name and whether it is name itself
// (upper case, fitting 8.3, only valid characters), in which case no long
// name entry is needed. Names too long for 8.3 get a numeric tail ("BCM271~1DTB")
// that is unique among taken, the same scheme that Windows and gokrazy's
// runtime reader use, so the reader finds cmdline.txt and
// loader/entries/gokrazy.conf by their short names.
func shortName(name string, taken map[[11]byte]bool) (short [11]byte, exact bool) {
	upper := strings.ToUpper(name)
	base, ext := upper, ""
	if i := strings.LastIndex(upper, "."); i > 0 {
		base, ext = upper[:i], upper[i+1:]
	}
	base = cleanShort(strings.TrimLeft(base, "."))
	ext = cleanShort(ext)

	// A name that fits 8.3 is stored as it is, lower case included, as
	// gokrazy's own writer does: its reader matches an extension-less
	// name such as "loader" only byte for byte.
	fits := len(base) <= 8 && len(ext) <= 3 && base != "" && base+dotIf(ext) == upper
	if fits {
		base, ext = name[:len(base)], name[len(name)-len(ext):]
		copy(short[:], padRight(base, 8)+padRight(ext, 3))
		return short, upper == name
	}

	if len(ext) > 3 {
		ext = ext[:3]
	}
	for n := 1; ; n++ {
		tail := "~" + strconv.Itoa(n)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		copy(short[:], padRight(b+tail, 8)+padRight(ext, 3))
		if !taken[short] {
			return short, false
		}
	}
}

func dotIf(ext string) string {
	if ext == "" {
		return ""
	}
	return "." + ext
}

// cleanShort drops spaces and replaces characters that 8.3 names do not
// allow.
func cleanShort(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ':
		case r > 0x7e || strings.ContainsRune("+,;=[].\"*/:<>?\\|", r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// longNameEntries returns the VFAT long file name entries of name, last
// part first as the format requires, each tied to short by its checksum.
func longNameEntries(name string, short [11]byte) []byte {
	var sum byte
	for _, c := range short {
		sum = (sum&1)<<7 + sum>>1 + c
	}

	units := utf16.Encode([]rune(name))
	if len(units)%13 != 0 {
		units = append(units, 0)
		for len(units)%13 != 0 {
			units = append(units, 0xffff)
		}
	}
	count := len(units) / 13

	var out []byte
	for i := count; i >= 1; i-- {
		e := make([]byte, dirEntrySize)
		e[0] = byte(i)
		if i == count {
			e[0] |= 0x40 // last logical entry
		}
		e[11] = attrLongName
		e[13] = sum
		part := units[(i-1)*13 : i*13]
		offsets := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
		for j, u := range part {
			binary.LittleEndian.PutUint16(e[offsets[j]:], u)
		}
		out = append(out, e...)
	}
	return out
}
