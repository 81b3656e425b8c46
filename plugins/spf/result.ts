// SPF result names as codes, recognised in a guest buffer without a loop:
// the plugin reads them from the gateway's result and from its cache on
// every message.
import { FAIL, NEUTRAL, NONE, PASS, PERMERROR, SOFTFAIL, TEMPERROR } from "./check";

export const RESULTS: string[] = [NONE, NEUTRAL, PASS, FAIL, SOFTFAIL, TEMPERROR, PERMERROR];
const NONE_CODE = 0;
const NEUTRAL_CODE = 1;
const PASS_CODE = 2;
const FAIL_CODE = 3;
const SOFTFAIL_CODE = 4;
const TEMPERROR_CODE = 5;
const PERMERROR_CODE = 6;

// Each name's UTF-8 bytes, and its first 8 bytes and 9th byte (0 when
// shorter) as integers for comparison. No name is longer than 9 bytes.
export const resultBytes = new StaticArray<ArrayBuffer>(RESULTS.length);
const head = new StaticArray<u64>(RESULTS.length);
const ninth = new StaticArray<u8>(RESULTS.length);
for (let i = 0; i < RESULTS.length; i++) {
  const b = String.UTF8.encode(RESULTS[i]);
  const p = changetype<usize>(b);
  resultBytes[i] = b;
  for (let j = 0; j < min(b.byteLength, 8); j++) head[i] |= <u64>load<u8>(p + j) << (8 * j);
  if (b.byteLength == 9) ninth[i] = load<u8>(p + 8);
}

// Returns the code of the result name that the n bytes at p start with,
// followed by their end or a space (a cached fail carries its
// explanation), or -1. The buffer at p must hold at least 9 bytes.
export function resultCode(p: usize, n: i32): i32 {
  if (n < 4) return -1;
  const c0 = load<u8>(p);
  const c1 = load<u8>(p + 1);
  let code = -1;
  if (c0 == 0x6e) code = c1 == 0x6f ? NONE_CODE : NEUTRAL_CODE; // "no", "ne"
  else if (c0 == 0x70) code = c1 == 0x61 ? PASS_CODE : PERMERROR_CODE; // "pa", "pe"
  else if (c0 == 0x66) code = FAIL_CODE;
  else if (c0 == 0x73) code = SOFTFAIL_CODE;
  else if (c0 == 0x74) code = TEMPERROR_CODE;
  if (code < 0) return -1;

  const len = resultBytes[code].byteLength;
  if (n < len || (n > len && load<u8>(p + len) != 0x20)) return -1;
  const mask = len >= 8 ? u64.MAX_VALUE : (<u64>1 << (8 * len)) - 1;
  if ((load<u64>(p) & mask) != head[code]) return -1;
  if (len == 9 && load<u8>(p + 8) != ninth[code]) return -1;
  return code;
}
