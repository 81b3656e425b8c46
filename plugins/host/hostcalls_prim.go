package host

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"regexp"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Search flags.
const searchFoldCase = 1 // ASCII case-insensitive

// hSearch finds a byte string in the header block or the body and returns
// its offset, or statusNotFound.
func hSearch(_ context.Context, c *call, mod api.Module, stack []uint64) {
	target, flags := int32(stack[0]), int32(stack[3])
	pat := c.read(mod, u32(stack[1]), u32(stack[2]))

	hay, st := c.targetBytes(target)
	if st != statusOK {
		stack[0] = encI64(int64(st))
		return
	}
	var i int
	if flags&searchFoldCase != 0 {
		i = indexFold(hay, pat)
	} else {
		i = bytes.Index(hay, pat)
	}
	if i < 0 {
		stack[0] = encI64(statusNotFound)
		return
	}
	stack[0] = encI64(int64(i))
}

// targetBytes returns the header block or the body for a target, or the
// status to return when the target is unknown or not yet available.
func (c *call) targetBytes(target int32) ([]byte, int) {
	switch target {
	case targetHeaders:
		if !c.inMessage() {
			return nil, statusWrongPhase
		}
		return c.msg.headerBlock(), statusOK
	case targetBody:
		if !c.bodyAllowed() {
			return nil, statusWrongPhase
		}
		return c.msg.bodyBytes(), statusOK
	}
	return nil, statusBadArgument
}

// indexFold is bytes.Index with ASCII case folding, without lowering a
// copy of the haystack.
func indexFold(hay, pat []byte) int {
	if len(pat) == 0 {
		return 0
	}
	first := lowerASCII(pat[0])
	for i := 0; i+len(pat) <= len(hay); i++ {
		if lowerASCII(hay[i]) != first {
			continue
		}
		if bytes.EqualFold(hay[i:i+len(pat)], pat) {
			return i
		}
	}
	return -1
}

func lowerASCII(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// hRegexCompile compiles an RE2 pattern (Go regexp syntax, linear time in
// the input, so a hostile message cannot make a rule backtrack) and returns
// a handle valid for the plugin's lifetime in every instance.
func hRegexCompile(_ context.Context, c *call, mod api.Module, stack []uint64) {
	pat := c.readString(mod, u32(stack[0]), u32(stack[1]))
	if len(pat) > maxRegexLen {
		stack[0] = encI32(statusLimit)
		return
	}
	h, st := c.plugin.compileRegex(pat)
	if st != statusOK {
		stack[0] = encI32(st)
		return
	}
	stack[0] = encI32(h)
}

func hRegexMatch(_ context.Context, c *call, mod api.Module, stack []uint64) {
	handle, target := int32(stack[0]), int32(stack[1])
	arg := c.read(mod, u32(stack[2]), u32(stack[3]))

	re := c.plugin.regex(handle)
	if re == nil {
		stack[0] = encI32(statusBadArgument)
		return
	}
	switch target {
	case targetGuest:
		stack[0] = encI32(boolInt(re.Match(arg)))
	case targetHeader:
		if !c.inMessage() {
			stack[0] = encI32(statusWrongPhase)
			return
		}
		stack[0] = encI32(boolInt(matchHeader(c.msg, re, string(arg))))
	case targetHeaders, targetBody:
		hay, st := c.targetBytes(target)
		if st != statusOK {
			stack[0] = encI32(st)
			return
		}
		stack[0] = encI32(boolInt(re.Match(hay)))
	default:
		stack[0] = encI32(statusBadArgument)
	}
}

// matchHeader reports whether any value of the named header matches.
func matchHeader(m *message, re *regexp.Regexp, name string) bool {
	m.readHeader()
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) && re.MatchString(f.value) {
			return true
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hHash writes the digest of guest bytes or of the body into the guest
// buffer and returns the digest length.
func hHash(_ context.Context, c *call, mod api.Module, stack []uint64) {
	alg, target := int32(stack[0]), int32(stack[1])
	arg := c.read(mod, u32(stack[2]), u32(stack[3]))
	out, capacity := u32(stack[4]), u32(stack[5])

	var h hash.Hash
	switch alg {
	case hashSHA256:
		h = sha256.New()
	case hashSHA1:
		h = sha1.New()
	case hashMD5:
		h = md5.New()
	default:
		stack[0] = encI32(statusBadArgument)
		return
	}
	switch target {
	case targetGuest:
		h.Write(arg)
	case targetBody:
		if !c.bodyAllowed() {
			stack[0] = encI32(statusWrongPhase)
			return
		}
		h.Write(c.msg.bodyBytes())
	default:
		stack[0] = encI32(statusBadArgument)
		return
	}
	var sum [sha256.Size]byte
	stack[0] = c.fill(mod, out, capacity, h.Sum(sum[:0]))
}
