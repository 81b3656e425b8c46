package relay

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadReplyParsesLines(t *testing.T) {
	cases := []struct {
		name     string
		raw      string
		code     int
		enhanced string
		text     string
		wantErr  string
	}{
		{name: "single line", raw: "250 OK\r\n", code: 250, text: "OK"},
		{name: "enhanced code", raw: "550 5.1.1 User unknown\r\n", code: 550, enhanced: "5.1.1", text: "User unknown"},
		{name: "multiline enhanced", raw: "451-4.3.0 first\r\n451-4.3.0 second\r\n451 4.3.0 third\r\n",
			code: 451, enhanced: "4.3.0", text: "first second third"},
		{name: "bare code", raw: "354\r\n", code: 354, text: ""},
		{name: "LF only", raw: "250 fine\n", code: 250, text: "fine"},
		{name: "class mismatch kept as text", raw: "250 5.0.0 odd\r\n", code: 250, text: "5.0.0 odd"},
		{name: "version-like text", raw: "220 mail ESMTP 1.2.3\r\n", code: 220, text: "mail ESMTP 1.2.3"},
		{name: "mixed codes", raw: "250-a\r\n251 b\r\n", wantErr: "continues a 250 reply"},
		{name: "no code", raw: "hello\r\n", wantErr: "no reply code"},
		{name: "bad separator", raw: "250_x\r\n", wantErr: "bad separator"},
		{name: "code out of range", raw: "999 x\r\n", wantErr: "out of range"},
		{name: "truncated", raw: "250-a\r\n", wantErr: "EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := readReply(bufio.NewReader(strings.NewReader(tc.raw)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readReply error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readReply: %v", err)
			}
			if r.Code != tc.code {
				t.Errorf("Code = %d, want %d", r.Code, tc.code)
			}
			if r.Enhanced != tc.enhanced {
				t.Errorf("Enhanced = %q, want %q", r.Enhanced, tc.enhanced)
			}
			if r.Text() != tc.text {
				t.Errorf("Text = %q, want %q", r.Text(), tc.text)
			}
		})
	}
}

func TestReadReplyLimitsLines(t *testing.T) {
	raw := strings.Repeat("250-x\r\n", maxReplyLines+1) + "250 end\r\n"
	_, err := readReply(bufio.NewReader(strings.NewReader(raw)))
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("readReply error = %v, want a line count error", err)
	}

	long := "250 " + strings.Repeat("x", 5000) + "\r\n"
	_, err = readReply(bufio.NewReaderSize(strings.NewReader(long), 4096))
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("readReply error = %v, want a line length error", err)
	}
}
