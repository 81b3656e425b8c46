package host

import (
	"context"
	"encoding/binary"
	"unicode/utf16"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func encI32(v int) uint64   { return api.EncodeI32(int32(v)) }
func encI64(v int64) uint64 { return api.EncodeI64(v) }
func u32(v uint64) uint32   { return api.DecodeU32(v) }

// hostFunc is one import of the "lambgate" module. fn receives the call of
// the running callback, which is never nil.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(ctx context.Context, c *call, mod api.Module, stack []uint64)
}

// hostFuncs lists ABI v1's host calls; sdk/ABI.md documents each.
var hostFuncs = []hostFunc{
	// Transaction data.
	{"get_property", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hGetProperty},
	{"rcpt_count", nil, []api.ValueType{i32}, hRcptCount},
	{"get_rcpt", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hGetRcpt},
	{"get_header", []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}, hGetHeader},
	{"header_count", []api.ValueType{i32, i32}, []api.ValueType{i32}, hHeaderCount},
	{"get_headers", []api.ValueType{i32, i32}, []api.ValueType{i32}, hGetHeaders},
	{"body_size", nil, []api.ValueType{i64}, hBodySize},
	{"get_body", []api.ValueType{i64, i32, i32}, []api.ValueType{i32}, hGetBody},
	{"part_count", nil, []api.ValueType{i32}, hPartCount},
	{"get_part", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hGetPart},
	{"part_size", []api.ValueType{i32}, []api.ValueType{i64}, hPartSize},
	{"get_setting", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hGetSetting},

	// Replies, edits and logs.
	{"set_reply", []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}, hSetReply},
	{"add_header", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hAddHeader},
	{"add_tag", []api.ValueType{i32, i32}, []api.ValueType{i32}, hAddTag},
	{"log", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hLog},

	// Primitives that keep guest loops short.
	{"search", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hSearch},
	{"regex_compile", []api.ValueType{i32, i32}, []api.ValueType{i32}, hRegexCompile},
	{"regex_match", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hRegexMatch},
	{"hash", []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hHash},

	// Capabilities the manifest must grant.
	{"dns_lookup", []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}, hDNSLookup},
	{"now_ms", nil, []api.ValueType{i64}, hNowMs},
	{"kv_get", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hKVGet},
	{"kv_set", []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}, hKVSet},
	{"kv_incr", []api.ValueType{i32, i32, i64, i32, i32}, []api.ValueType{i32}, hKVIncr},
}

// instantiateHostModules registers the "lambgate" module and AssemblyScript's
// env.abort in one plugin's runtime.
func instantiateHostModules(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(hostModuleName)
	for _, hf := range hostFuncs {
		fn := hf.fn
		name := hf.name
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				c := callFrom(ctx)
				if c == nil {
					// Only the host calls guests, and always with a call.
					panic(fault{"host call " + name + " outside a plugin call"})
				}
				fn(ctx, c, mod, stack)
			}), hf.params, hf.results).
			Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return err
	}

	_, err := r.NewHostModuleBuilder(envModuleName).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hAbort), []api.ValueType{i32, i32, i32, i32}, nil).
		Export("abort").
		Instantiate(ctx)
	return err
}

// hAbort implements AssemblyScript's abort(message, fileName, line,
// column): the guest gave up, so the call fails with its message.
func hAbort(ctx context.Context, mod api.Module, stack []uint64) {
	msg := asString(mod, u32(stack[0]))
	file := asString(mod, u32(stack[1]))
	reason := "abort: " + msg + " at " + file
	if c := callFrom(ctx); c != nil {
		c.faultMsg = reason
	}
	panic(fault{reason})
}

// asString decodes an AssemblyScript string: UTF-16LE with its byte length
// in the four bytes before the pointer. It returns "" for anything that
// does not fit in memory, since abort must not fault a second time.
func asString(mod api.Module, ptr uint32) string {
	if ptr < 4 {
		return ""
	}
	n, ok := mod.Memory().ReadUint32Le(ptr - 4)
	if !ok || n > 1024 {
		return ""
	}
	b, ok := mod.Memory().Read(ptr, n&^1)
	if !ok {
		return ""
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
