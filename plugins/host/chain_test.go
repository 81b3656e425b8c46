package host

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
)

func TestActionCodesMapToVerdicts(t *testing.T) {
	for code := filter.Continue; code <= filter.Bounce; code++ {
		t.Run(code.String(), func(t *testing.T) {
			dir := t.TempDir()
			wasm := wat2wasm(t, watModule("", map[string]string{"connect": "(i32.const " + strconv.Itoa(int(code)) + ")"}))
			installPlugin(t, dir, "act", wasm, manifest("act", `phases = ["connect"]`))
			h, _ := newTestHost(t, dir, nil)
			if v := h.Connect(context.Background(), testConn); v.Action != code {
				t.Errorf("verdict %v, want %v", v.Action, code)
			}
		})
	}
}

// replyWAT sets a reply from data segments and returns an action. The text
// at offset 1024 is written by the body, so that it can be huge.
func replyWAT(code int, enhanced, fill string, textLen int, action filter.Action) string {
	return watModule(`  (data (i32.const 0) "`+enhanced+`")
  (data (i32.const 1024) "`+fill+`")`, map[string]string{"connect": `(drop (call $set_reply (i32.const ` + strconv.Itoa(code) +
		`) (i32.const 0) (i32.const ` + strconv.Itoa(len(enhanced)) + `) (i32.const 1024) (i32.const ` + strconv.Itoa(textLen) + `)))
    (i32.const ` + strconv.Itoa(int(action)) + `)`})
}

func TestReplyValidation(t *testing.T) {
	cases := []struct {
		name     string
		wat      string
		wantCode int
		wantEnh  [3]int
		wantText string
		refused  uint64
		cleaned  uint64
		logged   string
	}{
		{name: "valid reply kept", wat: replyWAT(554, "5.7.1", "no thanks", 9, filter.Reject),
			wantCode: 554, wantEnh: [3]int{5, 7, 1}, wantText: "no thanks"},
		{name: "CRLF injection cleaned",
			wat:      replyWAT(550, "5.7.1", `bad\0d\0a250 2.0.0 OK\0d\0aRCPT`, 24, filter.Reject),
			wantCode: 550, wantEnh: [3]int{5, 7, 1}, wantText: "bad  250 2.0.0 OK  RCPT",
			cleaned: 1, logged: "plugin reply text cleaned"},
		{name: "success code refused", wat: replyWAT(250, "", "ok", 2, filter.Reject),
			refused: 1, logged: "is not 400-599"},
		{name: "enhanced class mismatch refused", wat: replyWAT(550, "4.7.1", "x", 1, filter.Reject),
			refused: 1, logged: "does not fit reply code"},
		{name: "malformed enhanced code refused", wat: replyWAT(550, "5.7", "x", 1, filter.Reject),
			refused: 1, logged: "does not fit reply code"},
		{name: "tempfail code on reject ignored", wat: replyWAT(451, "4.7.1", "later", 5, filter.Reject),
			refused: 1, logged: "does not match action reject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			installPlugin(t, dir, "r", wat2wasm(t, tc.wat), manifest("r", `phases = ["connect"]`))
			h, logs := newTestHost(t, dir, nil)
			v := h.Connect(context.Background(), testConn)
			if v.Action != filter.Reject {
				t.Fatalf("verdict %v, want reject", v.Action)
			}
			st := statsFor(t, h, "r")
			if st.RepliesRefused != tc.refused || st.RepliesCleaned != tc.cleaned {
				t.Errorf("replies refused %d, cleaned %d; want %d, %d", st.RepliesRefused, st.RepliesCleaned, tc.refused, tc.cleaned)
			}
			if tc.logged != "" && !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("log lacks %q:\n%s", tc.logged, logs)
			}
			if v.Code != tc.wantCode {
				t.Errorf("code %d, want %d", v.Code, tc.wantCode)
			}
			if v.Enhanced != tc.wantEnh {
				t.Errorf("enhanced %v, want %v", v.Enhanced, tc.wantEnh)
			}
			if v.Text != tc.wantText {
				t.Errorf("text %q, want %q", v.Text, tc.wantText)
			}
		})
	}
}

func TestHugeReplyTextIsCut(t *testing.T) {
	// 60,000 bytes of "A" written with memory.fill, then passed as text.
	wat := watModule("", map[string]string{"connect": `(memory.fill (i32.const 1024) (i32.const 65) (i32.const 60000))
    (drop (call $set_reply (i32.const 550) (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 60000)))
    (i32.const 2)`})
	dir := t.TempDir()
	installPlugin(t, dir, "huge", wat2wasm(t, wat), manifest("huge", `phases = ["connect"]`))
	h, _ := newTestHost(t, dir, nil)
	v := h.Connect(context.Background(), testConn)
	if len(v.Text) != maxReplyText {
		t.Errorf("text length %d, want %d", len(v.Text), maxReplyText)
	}
	if v.Code != 550 {
		t.Errorf("code %d, want 550", v.Code)
	}
	if n := statsFor(t, h, "huge").RepliesCleaned; n != 1 {
		t.Errorf("replies cleaned %d, want 1", n)
	}
}

// editWAT adds a header and a tag in the headers phase, then returns an
// action.
func editWAT(action filter.Action) string {
	return watModule(`  (data (i32.const 0) "X-Test")
  (data (i32.const 16) "v1")
  (data (i32.const 32) "t1")`, map[string]string{"headers": `(drop (call $add_header (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 2)))
    (drop (call $add_tag (i32.const 32) (i32.const 2)))
    (i32.const ` + strconv.Itoa(int(action)) + `)`})
}

func TestEditsOnlyWhenMessageKept(t *testing.T) {
	cases := []struct {
		action filter.Action
		kept   bool
	}{
		{filter.Continue, true}, {filter.Accept, true}, {filter.Quarantine, true},
		{filter.Reject, false}, {filter.Tempfail, false}, {filter.Discard, false}, {filter.Bounce, false},
	}
	msg := []byte("Subject: x\r\n\r\nbody\r\n")
	for _, tc := range cases {
		t.Run(tc.action.String(), func(t *testing.T) {
			dir := t.TempDir()
			installPlugin(t, dir, "e", wat2wasm(t, editWAT(tc.action)), manifest("e", `phases = ["headers"]`))
			h, _ := newTestHost(t, dir, nil)
			v, edits := h.Data(context.Background(), &filter.Txn{Conn: testConn}, bytes.NewReader(msg))
			if v.Action != tc.action {
				t.Errorf("verdict %v, want %v", v.Action, tc.action)
			}
			if got := len(edits.AddHeaders) == 1 && len(edits.Tags) == 1; got != tc.kept {
				t.Errorf("edits %+v, want kept=%t", edits, tc.kept)
			}
		})
	}
}

func TestEditsRefusedBeforeData(t *testing.T) {
	// add_header in connect returns the wrong-phase status, which the
	// module turns into its action: 3 (tempfail) when the status is -3.
	wat := watModule(`  (data (i32.const 0) "X-Test")`, map[string]string{"connect": `(if (result i32) (i32.eq
        (call $add_header (i32.const 0) (i32.const 6) (i32.const 0) (i32.const 1)) (i32.const -3))
      (then (i32.const 3)) (else (i32.const 0)))`})
	dir := t.TempDir()
	installPlugin(t, dir, "e", wat2wasm(t, wat), manifest("e", `phases = ["connect"]`))
	h, _ := newTestHost(t, dir, nil)
	if v := h.Connect(context.Background(), testConn); v.Action != filter.Tempfail {
		t.Errorf("verdict %v, want tempfail (add_header returned wrong phase)", v.Action)
	}
}

func TestChainOrderStopsAtFinal(t *testing.T) {
	cont := wat2wasm(t, watModule("", map[string]string{"connect": "(i32.const 0)"}))
	rej := wat2wasm(t, watModule("", map[string]string{"connect": "(i32.const 2)"}))
	dir := t.TempDir()
	// Names sort against their order, so the order field must decide.
	installPlugin(t, dir, "c-first", cont, manifest("c-first", `phases = ["connect"]`, "order = 1"))
	installPlugin(t, dir, "b-second", rej, manifest("b-second", `phases = ["connect"]`, "order = 2"))
	installPlugin(t, dir, "a-third", cont, manifest("a-third", `phases = ["connect"]`, "order = 3"))
	h, _ := newTestHost(t, dir, nil)

	v := h.Connect(context.Background(), testConn)
	if v.Action != filter.Reject || v.Filter != "b-second" {
		t.Errorf("verdict %v from %q, want reject from b-second", v.Action, v.Filter)
	}
	var names []string
	for _, m := range h.Plugins() {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "c-first,b-second,a-third" {
		t.Errorf("plugin order %s, want c-first,b-second,a-third", got)
	}
	if n := statsFor(t, h, "c-first").Calls["connect"]; n != 1 {
		t.Errorf("c-first called %d times, want 1", n)
	}
	if n := statsFor(t, h, "a-third").Calls["connect"]; n != 0 {
		t.Errorf("a-third called %d times after a final verdict, want 0", n)
	}
}
