//go:build wasip1

package lambgate

import "unsafe"

// Host calls of ABI v1 (sdk/ABI.md). A Go string parameter is passed as
// the (pointer, length) pair the ABI expects.

//go:wasmimport lambgate get_property
func hostGetProperty(id int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate rcpt_count
func hostRcptCount() int32

//go:wasmimport lambgate get_rcpt
func hostGetRcpt(index int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate get_header
func hostGetHeader(name string, index int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate header_count
func hostHeaderCount(name string) int32

//go:wasmimport lambgate get_headers
func hostGetHeaders(buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate body_size
func hostBodySize() int64

//go:wasmimport lambgate get_body
func hostGetBody(offset int64, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate part_count
func hostPartCount() int32

//go:wasmimport lambgate get_part
func hostGetPart(index, field int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate part_size
func hostPartSize(index int32) int64

//go:wasmimport lambgate get_setting
func hostGetSetting(name string, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate set_reply
func hostSetReply(code int32, enhanced string, text string) int32

//go:wasmimport lambgate add_header
func hostAddHeader(name string, value string) int32

//go:wasmimport lambgate add_tag
func hostAddTag(tag string) int32

//go:wasmimport lambgate log
func hostLog(level int32, msg string) int32

//go:wasmimport lambgate search
func hostSearch(target int32, pattern string, flags int32) int64

//go:wasmimport lambgate regex_compile
func hostRegexCompile(pattern string) int32

//go:wasmimport lambgate regex_match
func hostRegexMatch(handle, target int32, arg unsafe.Pointer, length uint32) int32

//go:wasmimport lambgate hash
func hostHash(alg, target int32, data unsafe.Pointer, length uint32, out unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate dns_lookup
func hostDNSLookup(rtype int32, name string, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate now_ms
func hostNowMs() int64

//go:wasmimport lambgate kv_get
func hostKVGet(key string, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport lambgate kv_set
func hostKVSet(key string, value unsafe.Pointer, length uint32, ttlSeconds int32) int32

//go:wasmimport lambgate kv_incr
func hostKVIncr(key string, delta int64, ttlSeconds int32, out *int64) int32
