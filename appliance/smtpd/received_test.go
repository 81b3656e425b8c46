package smtpd

import (
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReceivedHeaderCannotBeInjected(t *testing.T) {
	cases := []struct {
		name string
		helo string
		want string // the from clause
	}{
		{"plain domain", "client.example", "from client.example ([192.0.2.7])"},
		{"address literal", "[192.0.2.7]", "from [192.0.2.7] ([192.0.2.7])"},
		{"header injection", "x\r\nBcc: victim@relay.test", "from [192.0.2.7] (helo=xBcc:victim@relay.test)"},
		{"clause injection", "x; by evil.example", "from [192.0.2.7] (helo=xbyevil.example)"},
		{"comment breakout", "a)(b", "from [192.0.2.7] (helo=ab)"},
		{"non-ASCII", "bücher.example", "from [192.0.2.7] (helo=bcher.example)"},
		{"empty", "", "from [192.0.2.7]\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := receivedHeader(traceInfo{
				Hostname: "mx.relay.test", HELO: tc.helo,
				ClientIP: netip.MustParseAddr("192.0.2.7"), QueueID: "Q1",
				Recipients: []string{"b@relay.test"},
				Time:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			})
			if !strings.Contains(h, tc.want) {
				t.Errorf("header %q lacks %q", h, tc.want)
			}
			if strings.Count(h, "\r\n") != 3 && strings.Count(h, "\r\n") != 2 {
				t.Errorf("header %q has unexpected line breaks", h)
			}
			for _, line := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n")[1:] {
				if !strings.HasPrefix(line, "\t") {
					t.Errorf("line %q is not a folded continuation", line)
				}
			}
		})
	}
}

func TestReceivedHeaderClauses(t *testing.T) {
	base := traceInfo{Hostname: "mx.relay.test", HELO: "client.example",
		ClientIP: netip.MustParseAddr("2001:db8::7"), QueueID: "Q1",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

	one := base
	one.Recipients = []string{"b@relay.test"}
	one.TLS = true
	h := receivedHeader(one)
	want := "Received: from client.example ([IPv6:2001:db8::7])\r\n\tby mx.relay.test with ESMTPS id Q1\r\n" +
		"\tfor <b@relay.test>; Fri, 02 Jan 2026 03:04:05 +0000\r\n"
	if h != want {
		t.Errorf("header\n%q\nwant\n%q", h, want)
	}

	two := base
	two.Recipients = []string{"b@relay.test", "c@relay.test"}
	two.SMTPUTF8 = true
	h = receivedHeader(two)
	if strings.Contains(h, "for <") {
		t.Errorf("header names a recipient of two: %q", h)
	}
	if !strings.Contains(h, "with UTF8SMTP id") {
		t.Errorf("header lacks UTF8SMTP: %q", h)
	}
}

func TestSelfSignedCertificateKept(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateCertificate(dir, "mx.relay.test")
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateCertificate(dir, "mx.relay.test")
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Certificate[0]) != string(second.Certificate[0]) {
		t.Errorf("a second call generated a new certificate")
	}
	cert, err := x509.ParseCertificate(first.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("mx.relay.test"); err != nil {
		t.Errorf("certificate does not name the host: %v", err)
	}
	if cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", cert.PublicKeyAlgorithm)
	}
	fi, err := os.Stat(filepath.Join(dir, selfSignedKey))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestTLSConfigNeedsBothFiles(t *testing.T) {
	if _, err := TLSConfig("cert.pem", "", t.TempDir(), "mx.relay.test"); err == nil {
		t.Errorf("a certificate without a key was accepted")
	}
}

func TestTLSConfigLoadsCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	want, err := LoadOrCreateCertificate(dir, "mx.relay.test")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := TLSConfig(filepath.Join(dir, selfSignedCert), filepath.Join(dir, selfSignedKey),
		t.TempDir(), "other.example")
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Certificates[0].Certificate[0]) != string(want.Certificate[0]) {
		t.Errorf("TLSConfig did not load the given certificate file")
	}
}
