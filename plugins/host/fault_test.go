package host

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
)

// tailPlugin rejects every connection with "550 5.7.1 tail". Placed after
// a failing plugin, it shows whether the chain went on.
var tailWAT = watModule(`  (data (i32.const 0) "5.7.1")
  (data (i32.const 16) "tail")`, map[string]string{
	"connect": `(drop (call $set_reply (i32.const 550) (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 4)))
    (i32.const 2)`,
})

var testConn = &filter.Conn{ClientIP: netip.MustParseAddr("192.0.2.7"), ClientPort: 40000, HELO: "client.example"}

func TestFaultContainment(t *testing.T) {
	tail := wat2wasm(t, tailWAT)
	cases := []struct {
		name     string
		body     string
		extra    string
		manifest []string
		want     FailureKind
	}{
		{name: "infinite loop", body: `(loop $l (br $l)) (i32.const 0)`,
			manifest: []string{`time_limit = "20ms"`}, want: FailTimeLimit},
		{name: "memory bomb", body: `(loop $l
      (if (i32.eq (memory.grow (i32.const 4)) (i32.const -1)) (then unreachable))
      (br $l))
    (i32.const 0)`, manifest: []string{"memory_limit_mb = 4"}, want: FailMemoryLimit},
		{name: "trap", body: `unreachable`, want: FailTrap},
		{name: "read outside memory", body: `(drop (call $get_property (i32.const 1) (i32.const -16) (i32.const 64)))
    (i32.const 0)`, want: FailABI},
		{name: "reply outside memory", body: `(drop (call $set_reply (i32.const 550) (i32.const 0) (i32.const 0) (i32.const 65000) (i32.const 4096)))
    (i32.const 2)`, want: FailABI},
		{name: "dns without grant", extra: `  (data (i32.const 0) "example.org")`,
			body: `(drop (call $dns_lookup (i32.const 1) (i32.const 0) (i32.const 11) (i32.const 64) (i32.const 64)))
    (i32.const 0)`, want: FailABI},
		{name: "clock without grant", body: `(drop (call $now_ms)) (i32.const 0)`, want: FailABI},
		{name: "kv without grant", extra: `  (data (i32.const 0) "k")`,
			body: `(drop (call $kv_incr (i32.const 0) (i32.const 1) (i64.const 1) (i32.const 0) (i32.const 64)))
    (i32.const 0)`, want: FailABI},
		{name: "invalid action", body: `(i32.const 42)`, want: FailInvalidAction},
	}
	for _, tc := range cases {
		bad := wat2wasm(t, watModule(tc.extra, map[string]string{"connect": tc.body}))
		for _, mode := range []string{"open", "closed"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				dir := t.TempDir()
				lines := append([]string{`phases = ["connect"]`, "order = 1", `failure_mode = "` + mode + `"`}, tc.manifest...)
				installPlugin(t, dir, "bad", bad, manifest("bad", lines...))
				installPlugin(t, dir, "tail", tail, manifest("tail", `phases = ["connect"]`, "order = 2"))
				h, logs := newTestHost(t, dir, nil)

				// Two calls: the second shows that the failed instance was
				// replaced and the host still serves. Their context has no
				// deadline, so only the host's watchdog can stop a loop.
				for i := 1; i <= 2; i++ {
					start := time.Now()
					v := h.Connect(context.Background(), testConn)
					if d := time.Since(start); tc.want == FailTimeLimit && d > time.Second {
						t.Errorf("call %d: stopped after %v, want about the 20ms limit", i, d)
					}
					if mode == "open" {
						if v.Action != filter.Reject || v.Text != "tail" {
							t.Errorf("call %d: verdict %+v, want the tail plugin's reject", i, v)
						}
					} else {
						if v.Action != filter.Tempfail || v.Code != 451 || v.Filter != "bad" {
							t.Errorf("call %d: verdict %+v, want 451 tempfail from bad", i, v)
						}
					}
				}

				st := statsFor(t, h, "bad")
				if got := st.Failures[tc.want.String()]; got != 2 {
					t.Errorf("failures %v, want 2 of %s", st.Failures, tc.want)
				}
				wantDiscarded := uint64(2)
				if tc.want == FailInvalidAction {
					wantDiscarded = 0 // the instance is sound, only its return value was invalid
				}
				wantStops := uint64(0)
				if tc.want == FailTimeLimit {
					wantStops = 2
				}
				if n := h.watchdog.stops.Load(); n != wantStops {
					t.Errorf("watchdog stopped %d calls, want %d", n, wantStops)
				}
				if st.InstancesDiscarded != wantDiscarded {
					t.Errorf("instances discarded %d, want %d", st.InstancesDiscarded, wantDiscarded)
				}
				if !strings.Contains(logs.String(), "failure="+tc.want.String()) ||
					!strings.Contains(logs.String(), "plugin=bad") {
					t.Errorf("log lacks the failure record:\n%s", logs)
				}
			})
		}
	}
}

func statsFor(t *testing.T, h *Host, name string) PluginStats {
	t.Helper()
	for _, s := range h.Stats() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("plugin %q is not loaded", name)
	return PluginStats{}
}

func TestLoadRejectsInvalidModules(t *testing.T) {
	good := watModule("", map[string]string{"connect": "(i32.const 0)"})
	cases := []struct {
		name     string
		wat      string
		manifest []string
		reason   string
	}{
		{name: "wrong ABI version",
			wat:    strings.Replace(good, "lambgate_abi_version_1", "lambgate_abi_version_2", 1),
			reason: "ABI version 2"},
		{name: "missing ABI marker",
			wat:    strings.Replace(good, `(func (export "lambgate_abi_version_1"))`, "", 1),
			reason: "missing export lambgate_abi_version_1"},
		{name: "missing memory export",
			wat:    strings.Replace(good, `(memory (export "memory") 1)`, "(memory 1)", 1),
			reason: `missing export \"memory\"`},
		{name: "missing phase export", manifest: []string{`phases = ["connect", "helo"]`},
			wat: good, reason: "does not export lambgate_on_helo"},
		{name: "wrong callback signature",
			wat:    `(module (memory (export "memory") 1) (func (export "lambgate_abi_version_1")) (func (export "lambgate_on_connect") (param i32) (result i32) (i32.const 0)))`,
			reason: "wrong signature"},
		{name: "unknown import",
			wat:    `(module (import "lambgate" "open_file" (func)) (memory (export "memory") 1) (func (export "lambgate_abi_version_1")) (func (export "lambgate_on_connect") (result i32) (i32.const 0)))`,
			reason: "imports lambgate.open_file"},
		{name: "memory minimum above cap", manifest: []string{`phases = ["connect"]`, "memory_limit_mb = 1"},
			wat: strings.Replace(good, `(memory (export "memory") 1)`, `(memory (export "memory") 32)`, 1), reason: "invalid module"},
		{name: "trap in initialize",
			wat:    strings.Replace(good, `(func (export "lambgate_abi_version_1"))`, `(func (export "lambgate_abi_version_1")) (func (export "_initialize") unreachable)`, 1),
			reason: "_initialize failed"},
		{name: "unknown phase in manifest", manifest: []string{`phases = ["connect", "quit"]`},
			wat: good, reason: `phase \"quit\" is unknown`},
		{name: "unknown grant", manifest: []string{`phases = ["connect"]`, `grants = ["sockets"]`},
			wat: good, reason: `grant \"sockets\" is unknown`},
	}
	tail := wat2wasm(t, tailWAT)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lines := tc.manifest
			if lines == nil {
				lines = []string{`phases = ["connect"]`}
			}
			installPlugin(t, dir, "bad", wat2wasm(t, tc.wat), manifest("bad", lines...))
			installPlugin(t, dir, "tail", tail, manifest("tail", `phases = ["connect"]`))
			h, logs := newTestHost(t, dir, nil)

			if got := h.Plugins(); len(got) != 1 || got[0].Name != "tail" {
				t.Errorf("running plugins %v, want only tail", got)
			}
			out := logs.String()
			if !strings.Contains(out, "plugin rejected") || !strings.Contains(out, "bad.wasm") {
				t.Errorf("log lacks a rejection naming bad.wasm:\n%s", out)
			}
			if !strings.Contains(out, tc.reason) {
				t.Errorf("log lacks reason %q:\n%s", tc.reason, out)
			}
			if v := h.Connect(context.Background(), testConn); v.Text != "tail" {
				t.Errorf("verdict %+v, want the remaining plugin to serve", v)
			}
		})
	}
}
