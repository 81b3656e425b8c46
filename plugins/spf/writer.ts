// A writer into a static guest buffer, for keys and header values built
// from host properties without strings: the host writes each property
// straight into place, so building costs no guest loop and no allocation.
import * as host from "../../sdk/assemblyscript/lambgate/host";

export class Writer {
  start: usize;
  cap: i32;
  len: i32 = 0;
  // Cleared when a property was missing or did not fit: the caller then
  // takes its string path.
  ok: bool = true;

  constructor(cap: i32) {
    this.start = heap.alloc(<usize>cap);
    this.cap = cap;
  }

  reset(): void {
    this.len = 0;
    this.ok = true;
  }

  bytes(b: ArrayBuffer): void {
    this.raw(changetype<usize>(b), b.byteLength);
  }

  raw(p: usize, n: i32): void {
    if (n > this.cap - this.len) {
      this.ok = false;
      return;
    }
    memory.copy(this.start + this.len, p, n);
    this.len += n;
  }

  // Appends a get_property value and returns its length, or -1.
  property(id: i32): i32 {
    const n = host.get_property(id, this.start + this.len, this.cap - this.len);
    if (n < 0 || n > this.cap - this.len) {
      this.ok = false;
      return -1;
    }
    this.len += n;
    return n;
  }
}
