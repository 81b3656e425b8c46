package host

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
)

// fakeResolver answers for host.example, nx.example (NXDOMAIN) and
// servfail.example (SERVFAIL), and nothing else, so tests never leave the
// process.
type fakeResolver struct{}

func (fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	switch host {
	case "host.example":
		if network == "ip6" {
			return []netip.Addr{netip.MustParseAddr("2001:db8::1")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}, nil
	case "servfail.example":
		return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if name == "host.example" {
		return []string{"v=spf1 -all"}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (fakeResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if name == "host.example" {
		return []*net.MX{{Host: "mx.example.", Pref: 10}}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// conformanceMessage has two Received fields, an RFC 2047 subject and a
// multipart body with a text part and an attachment.
const conformanceMessage = "Received: by a.example; Sun, 1 Mar 2026 12:00:00 +0000\r\n" +
	"Received: by b.example; Sun, 1 Mar 2026 11:59:00 +0000\r\n" +
	"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"From: a@example.org\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n" +
	"\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"find the needle\r\n" +
	"--XX\r\n" +
	"Content-Type: application/octet-stream; name=\"report.pdf.exe\"\r\n" +
	"Content-Disposition: attachment; filename=\"report.pdf.exe\"\r\n" +
	"\r\n" +
	"AAAA\r\n" +
	"--XX--\r\n"

const conformanceManifest = `phases = ["connect", "helo", "mail", "rcpt", "headers", "body", "done"]
grants = ["dns", "clock", "kv"]
time_limit = "2s"
[settings]
greeting = "hello"
list = ["a", "b"]
`

// TestConformance runs each SDK's conformance plugin through every phase
// and host call, and checks the values it reports.
func TestConformance(t *testing.T) {
	sdks := []struct {
		name  string
		build func(t *testing.T) []byte
	}{
		{"go", func(t *testing.T) []byte { return buildGoGuest(t, "plugins/host/testdata/goconf") }},
		{"assemblyscript", func(t *testing.T) []byte { return buildASGuest(t, "plugins/host/testdata/asconf/conf.ts") }},
	}
	for _, sdk := range sdks {
		t.Run(sdk.name, func(t *testing.T) {
			dir := t.TempDir()
			installPlugin(t, dir, "conf", sdk.build(t), manifest("conf", conformanceManifest))
			h, logs := newTestHost(t, dir, func(c *Config) {
				c.Resolver = fakeResolver{}
				c.CacheDir = wazeroCacheDir
			})
			checkConformance(t, h, logs)
		})
	}
}

func checkConformance(t *testing.T, h *Host, logs *logBuffer) {
	ctx := context.Background()
	conn := &filter.Conn{ClientIP: netip.MustParseAddr("192.0.2.7"), ClientPort: 40000, HELO: "client.example", TLS: true, SPF: "pass"}
	txn := &filter.Txn{Conn: conn, QueueID: "Q123", From: "sender@example.org", Recipients: []string{"prev@example.net"}}

	early := []struct {
		phase  string
		run    func() filter.Verdict
		action filter.Action
		code   int
		want   []string
	}{
		{"connect", func() filter.Verdict { return h.Connect(ctx, conn) }, filter.Reject, 550,
			[]string{"addr=192.0.2.7", "port=40000", "helo=wrong_phase", "plugin=conf", "greeting=hello", "list=a,b", "missing=false"}},
		{"helo", func() filter.Verdict { return h.Helo(ctx, conn) }, filter.Reject, 550,
			[]string{"helo=client.example", "tls=1", "from=wrong_phase"}},
		{"mail", func() filter.Verdict { return h.Mail(ctx, txn) }, filter.Reject, 550,
			[]string{"from=sender@example.org", "rcpts=prev@example.net", "queue=Q123", "spf=pass", "rcpt=wrong_phase"}},
		{"rcpt", func() filter.Verdict { return h.Rcpt(ctx, txn, "user@example.net") }, filter.Tempfail, 451,
			[]string{"rcpt=user@example.net", "first=prev@example.net", "hdr=wrong_phase", "badcode=bad_argument", "badenh=bad_argument"}},
	}
	for _, tc := range early {
		v := tc.run()
		if v.Action != tc.action || v.Code != tc.code || v.Filter != "conf" {
			t.Errorf("%s: verdict %v %d from %q, want %v %d from conf", tc.phase, v.Action, v.Code, v.Filter, tc.action, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(v.Text+" ", w+" ") {
				t.Errorf("%s: reply %q lacks %q", tc.phase, v.Text, w)
			}
		}
	}

	msg := []byte(conformanceMessage)
	v, edits := h.Data(ctx, txn, bytes.NewReader(msg))
	if v.Action != filter.Quarantine {
		t.Errorf("data: verdict %v, want quarantine", v.Action)
	}
	got := map[string]string{}
	for _, hd := range edits.AddHeaders {
		got[hd.Name] = hd.Value
	}
	body := msg[bytes.Index(msg, []byte("\r\n\r\n"))+4:]
	bodyMD5 := md5.Sum(body)
	wantHeaders := map[string][]string{
		"X-Conf-Headers": {"subject=Grüße", "count=2", "second=by b.example; Sun, 1 Mar 2026 11:59:00 +0000",
			fmt.Sprintf("block=%d", bytes.Index(msg, []byte("\r\n\r\n"))+2), "body=wrong_phase",
			fmt.Sprintf("search=%d", strings.Index(conformanceMessage, "Subject:")), "re=true", "hre=true",
			"rebad=bad_argument", "badname=bad_argument"},
		"X-Conf-Body": {"mimeerr=", fmt.Sprintf("size=%d", len(body)), "first=--XX",
			"parts=1:text/plain:::15,2:application/octet-stream:report.pdf.exe:attachment:4",
			fmt.Sprintf("search=%d", bytes.Index(body, []byte("needle"))), "nosearch=-1", "re=true",
			"sha=ba7816bf", "bodymd5=" + hex.EncodeToString(bodyMD5[:])},
		"X-Conf-Done": {"a=192.0.2.1,192.0.2.2/ok", "aaaa=2001:db8::1", "phase=done", "restr=true,false", "txt=v=spf1 -all", "mx=10 mx.example.", "nx=not_found",
			"tf=temp_failure", "now=1772366400000", "incr=1,2", "kv=stored", "kvmissing=false"},
	}
	for name, wants := range wantHeaders {
		val, ok := got[name]
		if !ok {
			t.Errorf("data: no %s header in edits %+v", name, edits)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(val+" ", w+" ") {
				t.Errorf("data: %s %q lacks %q", name, val, w)
			}
		}
	}
	if len(edits.Tags) != 1 || edits.Tags[0] != "conf:headers" {
		t.Errorf("data: tags %v, want [conf:headers]", edits.Tags)
	}
	if !strings.Contains(logs.String(), "conformance done") {
		t.Errorf("log lacks the plugin's line:\n%s", logs)
	}
}
