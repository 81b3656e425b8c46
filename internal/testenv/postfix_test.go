package testenv_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

func TestPostfixDeliversMessageUnchanged(t *testing.T) {
	began := time.Now()
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		Domains: []string{"example.test"},
		Users:   []string{"alice@example.test"},
	})
	t.Logf("StartPostfix took %v", time.Since(began))

	original := "From: Sender <sender@sender.test>\r\n" +
		"To: Alice <alice@example.test>\r\n" +
		"Subject: delivery check\r\n" +
		"Date: Fri, 04 Dec 2026 12:00:00 +0000\r\n" +
		"Message-ID: <check-1@sender.test>\r\n" +
		"\r\n" +
		"First line.\r\n" +
		".Line that starts with a dot.\r\n" +
		"\r\n" +
		"Last line.\r\n"
	dataFile := filepath.Join(t.TempDir(), "message.eml")
	// swaks ends the data with the file's final ".\r\n" line. Without that
	// line, it would add an empty line before its own.
	if err := os.WriteFile(dataFile, []byte(original+".\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test",
		"--to", "alice@example.test", "--data", "@"+dataFile)
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0:\n%s", code, out)
	}

	msgs := pf.WaitMessages(t, "alice@example.test", 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if got := m.Original(); !bytes.Equal(got, []byte(original)) {
		t.Errorf("delivered message differs from the sent one\ngot:\n%q\nwant:\n%q", got, original)
	}
	if got := m.Header.Get("Delivered-To"); got != "alice@example.test" {
		t.Errorf("Delivered-To = %q, want alice@example.test", got)
	}
	if got := m.Header.Get("Return-Path"); got != "<sender@sender.test>" {
		t.Errorf("Return-Path = %q, want <sender@sender.test>", got)
	}
	if got := m.Header.Get("Subject"); got != "delivery check" {
		t.Errorf("Subject = %q, want %q", got, "delivery check")
	}
	if got := pf.Count(); got != 1 {
		t.Errorf("Count = %d, want 1", got)
	}
}

func TestPostfixRejectsUnknownUserAtRCPT(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		Users: []string{"alice@example.test"},
	})

	out, code := testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test",
		"--to", "nobody@example.test", "--quit-after", "RCPT")
	// swaks exits with 24 when the server rejects every recipient.
	if code != 24 {
		t.Errorf("swaks exit code %d, want 24 (recipients rejected)", code)
	}
	if !strings.Contains(out, "550 5.1.1") {
		t.Errorf("transcript has no 550 5.1.1 reply:\n%s", out)
	}
}

func TestPostfixCatchAllSeparatesRecipients(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})

	out, code := testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test",
		"--to", "carol@example.test,dave@example.test", "--header", "Subject: both")
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0:\n%s", code, out)
	}

	for _, user := range []string{"carol@example.test", "dave@example.test"} {
		msgs := pf.WaitMessages(t, user, 1, 10*time.Second)
		if len(msgs) != 1 {
			t.Errorf("%s has %d messages, want 1", user, len(msgs))
		}
	}
	if got := pf.Messages("erin@example.test"); len(got) != 0 {
		t.Errorf("erin has %d messages, want 0", len(got))
	}
}

func TestPostfixRejectRecipientsAtRCPT(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		Users:            []string{"alice@example.test", "blocked@example.test"},
		RejectRecipients: []string{"blocked@example.test"},
	})

	out, code := testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test",
		"--to", "blocked@example.test", "--quit-after", "RCPT")
	if code != 24 {
		t.Errorf("swaks exit code %d, want 24 (recipients rejected)", code)
	}
	if !strings.Contains(out, "550 5.2.1") {
		t.Errorf("transcript has no 550 5.2.1 reply:\n%s", out)
	}
}

func TestPostfixRejectAfterDataFailsMessage(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		Users:           []string{"alice@example.test", "late@example.test"},
		RejectAfterData: []string{"late@example.test"},
	})

	out, code := testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test",
		"--to", "alice@example.test,late@example.test")
	// swaks exits with 26 when the server rejects the message after DATA.
	if code != 26 {
		t.Errorf("swaks exit code %d, want 26 (rejected after DATA)", code)
	}
	if !strings.Contains(out, "250 2.1.5") {
		t.Errorf("transcript has no accepted RCPT:\n%s", out)
	}
	if !strings.Contains(out, "550 5.7.1") {
		t.Errorf("transcript has no 550 5.7.1 reply after DATA:\n%s", out)
	}

	out, code = testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test",
		"--to", "alice@example.test")
	if code != 0 {
		t.Fatalf("message to alice alone: swaks exit code %d, want 0:\n%s", code, out)
	}
	pf.WaitMessages(t, "alice@example.test", 1, 10*time.Second)
	if got := pf.Count(); got != 1 {
		t.Errorf("Count = %d, want 1 (only the message without late@)", got)
	}
}

func TestPostfixStopStartKeepsQueue(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Users: []string{"alice@example.test"}})

	began := time.Now()
	pf.Stop()
	t.Logf("Stop took %v", time.Since(began))
	if conn, err := net.DialTimeout("tcp", pf.Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s accepts connections after Stop", pf.Addr())
	}

	began = time.Now()
	pf.Start()
	t.Logf("Start took %v", time.Since(began))
	out, code := testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test",
		"--to", "alice@example.test")
	if code != 0 {
		t.Fatalf("swaks after Start: exit code %d, want 0:\n%s\nmaillog:\n%s", code, out, pf.Log())
	}
	pf.WaitMessages(t, "alice@example.test", 1, 10*time.Second)
}

func TestStartPostfixFailureShowsMaillog(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	message := fatalMessage(t, func(tb testing.TB) {
		testenv.StartPostfix(tb, testenv.PostfixOptions{Addr: taken.Addr().String()})
	})
	if !strings.Contains(message, "postfix check") {
		t.Errorf("failure message lacks the postfix check result:\n%s", message)
	}
	if !strings.Contains(message, "Address already in use") {
		t.Errorf("failure message lacks the maillog's bind error:\n%s", message)
	}
}

// BenchmarkStartPostfix measures a start from an empty folder, up to the
// greeting, followed by Stop.
func BenchmarkStartPostfix(b *testing.B) {
	for b.Loop() {
		pf := testenv.StartPostfix(b, testenv.PostfixOptions{})
		pf.Stop()
	}
}
