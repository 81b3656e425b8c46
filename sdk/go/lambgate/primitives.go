//go:build wasip1

package lambgate

import "unsafe"

// Search targets and flags of ABI v1.
const (
	targetGuest   = 0
	targetHeaders = 1
	targetBody    = 2
	targetHeader  = 3
	foldCase      = 1
)

// SearchHeaders returns the offset of s in the raw header block, or -1.
// With fold set, ASCII letters match either case.
func SearchHeaders(s string, fold bool) int64 { return search(targetHeaders, s, fold) }

// SearchBody returns the offset of s in the raw body, or -1.
func SearchBody(s string, fold bool) int64 { return search(targetBody, s, fold) }

func search(target int32, s string, fold bool) int64 {
	var flags int32
	if fold {
		flags = foldCase
	}
	n := hostSearch(target, s, flags)
	if n < 0 {
		return -1
	}
	return n
}

// Regexp is a pattern compiled by the host (Go regexp syntax, RE2: linear
// time in the input).
type Regexp struct{ handle int32 }

// CompileRegexp compiles pattern once per plugin; compiling the same
// pattern again returns the same handle.
func CompileRegexp(pattern string) (Regexp, error) {
	h := hostRegexCompile(pattern)
	if h < 0 {
		return Regexp{}, statusError(int64(h))
	}
	return Regexp{h}, nil
}

// MustCompileRegexp is CompileRegexp that panics on an invalid pattern,
// which the host counts as a trap.
func MustCompileRegexp(pattern string) Regexp {
	re, err := CompileRegexp(pattern)
	if err != nil {
		panic("lambgate: invalid regular expression " + pattern + ": " + err.Error())
	}
	return re
}

// MatchString reports whether s matches.
func (r Regexp) MatchString(s string) bool {
	return hostRegexMatch(r.handle, targetGuest, unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))) == 1
}

// MatchHeader reports whether any value of the named field matches.
func (r Regexp) MatchHeader(name string) bool {
	return hostRegexMatch(r.handle, targetHeader, unsafe.Pointer(unsafe.StringData(name)), uint32(len(name))) == 1
}

// MatchHeaders reports whether the raw header block matches.
func (r Regexp) MatchHeaders() bool { return hostRegexMatch(r.handle, targetHeaders, nil, 0) == 1 }

// MatchBody reports whether the raw body matches.
func (r Regexp) MatchBody() bool { return hostRegexMatch(r.handle, targetBody, nil, 0) == 1 }

// Hash algorithms.
const (
	SHA256 = 1
	SHA1   = 2
	MD5    = 3
)

// Hash returns the digest of data.
func Hash(alg int, data []byte) ([]byte, error) {
	return digest(alg, targetGuest, data)
}

// HashBody returns the digest of the raw body.
func HashBody(alg int) ([]byte, error) { return digest(alg, targetBody, nil) }

func digest(alg int, target int32, data []byte) ([]byte, error) {
	var out [32]byte
	n := hostHash(int32(alg), target, unsafe.Pointer(unsafe.SliceData(data)), uint32(len(data)),
		unsafe.Pointer(&out[0]), uint32(len(out)))
	if n < 0 {
		return nil, statusError(int64(n))
	}
	return append([]byte(nil), out[:n]...), nil
}
