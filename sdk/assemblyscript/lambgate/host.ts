// Host calls of Lambgate ABI v1 (sdk/ABI.md). Pointers are guest memory
// offsets; strings cross as UTF-8 (pointer, length) pairs.

@external("lambgate", "get_property")
export declare function get_property(id: i32, buf: usize, cap: i32): i32;
@external("lambgate", "rcpt_count")
export declare function rcpt_count(): i32;
@external("lambgate", "get_rcpt")
export declare function get_rcpt(index: i32, buf: usize, cap: i32): i32;
@external("lambgate", "get_header")
export declare function get_header(name: usize, nameLen: i32, index: i32, buf: usize, cap: i32): i32;
@external("lambgate", "header_count")
export declare function header_count(name: usize, nameLen: i32): i32;
@external("lambgate", "get_headers")
export declare function get_headers(buf: usize, cap: i32): i32;
@external("lambgate", "body_size")
export declare function body_size(): i64;
@external("lambgate", "get_body")
export declare function get_body(offset: i64, buf: usize, cap: i32): i32;
@external("lambgate", "part_count")
export declare function part_count(): i32;
@external("lambgate", "get_part")
export declare function get_part(index: i32, field: i32, buf: usize, cap: i32): i32;
@external("lambgate", "part_size")
export declare function part_size(index: i32): i64;
@external("lambgate", "get_setting")
export declare function get_setting(name: usize, nameLen: i32, buf: usize, cap: i32): i32;
@external("lambgate", "set_reply")
export declare function set_reply(code: i32, enh: usize, enhLen: i32, text: usize, textLen: i32): i32;
@external("lambgate", "add_header")
export declare function add_header(name: usize, nameLen: i32, value: usize, valueLen: i32): i32;
@external("lambgate", "add_tag")
export declare function add_tag(tag: usize, tagLen: i32): i32;
@external("lambgate", "log")
export declare function log(level: i32, msg: usize, msgLen: i32): i32;
@external("lambgate", "search")
export declare function search(target: i32, pat: usize, patLen: i32, flags: i32): i64;
@external("lambgate", "regex_compile")
export declare function regex_compile(pat: usize, patLen: i32): i32;
@external("lambgate", "regex_match")
export declare function regex_match(handle: i32, target: i32, arg: usize, argLen: i32): i32;
@external("lambgate", "hash")
export declare function hash(alg: i32, target: i32, data: usize, dataLen: i32, out: usize, cap: i32): i32;
@external("lambgate", "dns_lookup")
export declare function dns_lookup(rtype: i32, name: usize, nameLen: i32, buf: usize, cap: i32): i32;
@external("lambgate", "now_ms")
export declare function now_ms(): i64;
@external("lambgate", "kv_get")
export declare function kv_get(key: usize, keyLen: i32, buf: usize, cap: i32): i32;
@external("lambgate", "kv_set")
export declare function kv_set(key: usize, keyLen: i32, value: usize, valueLen: i32, ttl: i32): i32;
@external("lambgate", "kv_incr")
export declare function kv_incr(key: usize, keyLen: i32, delta: i64, ttl: i32, out: usize): i32;
