package relay

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSmtpSink runs Postfix's smtp-sink on a free loopback port, dumping
// each transaction into a file of dir. It fails the test when smtp-sink is
// not installed, because a skipped real-peer test would hide that gap.
func startSmtpSink(t *testing.T, extraArgs ...string) (addr, dir string) {
	t.Helper()
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		t.Fatalf("smtp-sink not found (%v); install Debian's postfix package", err)
	}

	// smtp-sink drops to another user, which must be able to write here.
	dir, err = os.MkdirTemp("", "lambgate-smtp-sink-")
	if err != nil {
		t.Fatalf("create dump directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatalf("chmod dump directory: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	addr = l.Addr().String()
	l.Close()

	args := []string{"-d", filepath.Join(dir, "%M.")}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, extraArgs...)
	args = append(args, addr, "100")
	cmd := exec.Command(bin, args...)
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start smtp-sink: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	// Wait until it listens; this bounds start-up, it measures nothing.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, dir
}

// readDumps returns the contents of the dump files in dir.
func readDumps(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dump directory: %v", err)
	}
	var dumps []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("read dump: %v", err)
		}
		dumps = append(dumps, string(b))
	}
	return dumps
}

func TestSmtpSinkReceivesExactBytes(t *testing.T) {
	addr, dir := startSmtpSink(t)
	r := newRelay(t, Config{Server: addr})

	env := newEnvelope("s@example.org", "a@example.test", "b@example.test")
	env.Prepend = "X-Filter: checked\r\n"
	msg := "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n"
	results := deliver(t, r, env, msg)
	for _, res := range results {
		if !res.Delivered {
			t.Errorf("result for %s = %+v, want delivered", res.Recipient, res)
		}
	}
	r.Close()

	dumps := readDumps(t, dir)
	if len(dumps) != 1 {
		t.Fatalf("smtp-sink dumped %d transactions, want 1", len(dumps))
	}
	dump := dumps[0]
	t.Logf("dump:\n%s", dump)

	// smtp-sink offers no SIZE, so MAIL carries no parameter.
	for _, want := range []string{
		"X-Mail-Args: <s@example.org>\n",
		"X-Rcpt-Args: <a@example.test>\n",
		"X-Rcpt-Args: <b@example.test>\n",
		"X-Helo-Args: lambgate.example.test\n",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %q", want)
		}
	}

	// smtp-sink stores lines with LF ends after undoing the dot-stuffing;
	// the message follows its three-line Received header.
	wantBody := strings.ReplaceAll(env.Prepend+msg, "\r\n", "\n")
	_, content, ok := strings.Cut(dump, "(smtp-sink)")
	if !ok {
		t.Fatalf("dump has no Received header of smtp-sink")
	}
	_, content, _ = strings.Cut(content, "\n") // rest of "by" line
	_, content, _ = strings.Cut(content, "\n") // the date line
	if content != wantBody+"\n" {
		t.Errorf("smtp-sink stored\n%q\nwant\n%q", content, wantBody+"\n")
	}
}

func TestSmtpSinkLockStepDelivery(t *testing.T) {
	// -p: smtp-sink does not offer PIPELINING.
	addr, dir := startSmtpSink(t, "-p")
	r := newRelay(t, Config{Server: addr})

	for i := range 3 {
		env := newEnvelope("s@example.org", fmt.Sprintf("r%d@example.test", i))
		if res := deliver(t, r, env, simpleBody); !res[0].Delivered {
			t.Errorf("message %d result = %+v, want delivered", i, res[0])
		}
	}
	r.Close()
	if n := len(readDumps(t, dir)); n != 3 {
		t.Errorf("smtp-sink dumped %d transactions, want 3", n)
	}
}

func TestSmtpSinkTempfailDefers(t *testing.T) {
	// -r RCPT: smtp-sink rejects every RCPT with 450 4.3.0.
	addr, _ := startSmtpSink(t, "-r", "RCPT")
	r := newRelay(t, Config{Server: addr})
	res := deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
	if res[0].Delivered || res[0].Permanent || res[0].Code != 450 {
		t.Errorf("result = %+v, want a temporary 450", res[0])
	}
}

func TestSmtpSinkGetsDSNParameters(t *testing.T) {
	addr, dir := startSmtpSink(t)
	r := newRelay(t, Config{Server: addr})

	env := newEnvelope("s@example.org", "a@example.test")
	env.BodyType = "8BITMIME"
	env.DSNReturn = "hdrs"
	env.EnvID = "Q1+x"
	env.Recipients[0].Notify = []string{"FAILURE"}
	env.Recipients[0].ORCPT = "rfc822;orig@example.test"
	if res := deliver(t, r, env, simpleBody); !res[0].Delivered {
		t.Fatalf("result = %+v, want delivered", res[0])
	}
	r.Close()

	dumps := readDumps(t, dir)
	if len(dumps) != 1 {
		t.Fatalf("smtp-sink dumped %d transactions, want 1", len(dumps))
	}
	for _, want := range []string{
		"X-Mail-Args: <s@example.org> BODY=8BITMIME RET=HDRS ENVID=Q1+2Bx\n",
		"X-Rcpt-Args: <a@example.test> NOTIFY=FAILURE ORCPT=rfc822;orig@example.test\n",
	} {
		if !strings.Contains(dumps[0], want) {
			t.Errorf("dump lacks %q:\n%s", want, dumps[0])
		}
	}
}

func TestSmtpSinkWithout8BITMIMEGetsQuotedPrintable(t *testing.T) {
	// -8: smtp-sink does not offer 8BITMIME.
	addr, dir := startSmtpSink(t, "-8")
	r := newRelay(t, Config{Server: addr})

	env := newEnvelope("s@example.org", "a@example.test")
	env.BodyType = "8BITMIME"
	msg := "Subject: caf\xc3\xa9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nna\xc3\xafve\r\n"
	if res := deliver(t, r, env, msg); !res[0].Delivered {
		t.Fatalf("result = %+v, want delivered", res[0])
	}
	r.Close()

	dumps := readDumps(t, dir)
	if len(dumps) != 1 {
		t.Fatalf("smtp-sink dumped %d transactions, want 1", len(dumps))
	}
	if strings.Contains(dumps[0], "BODY=") {
		t.Errorf("MAIL carried BODY= although the server did not offer 8BITMIME:\n%s", dumps[0])
	}
	// The header keeps its 8-bit subject; only the body is converted.
	want := "Subject: caf\xc3\xa9\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nna=C3=AFve\n"
	if !strings.Contains(dumps[0], want) {
		t.Errorf("the body did not arrive as quoted-printable:\n%s", dumps[0])
	}
}

func TestSmtpSinkRejectedGreetingFails(t *testing.T) {
	// -f CONNECT: smtp-sink greets with a 5xx reply.
	addr, _ := startSmtpSink(t, "-f", "CONNECT")
	r := newRelay(t, Config{Server: addr})
	_, err := r.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body(simpleBody))
	if err == nil || !strings.Contains(err.Error(), "rejected the connection") {
		t.Errorf("Deliver error = %v, want the rejected greeting", err)
	}
}

func TestSmtpSinkClosingReplyDefers(t *testing.T) {
	// -Q MAIL: smtp-sink replies 421 to MAIL and disconnects.
	addr, dir := startSmtpSink(t, "-Q", "MAIL")
	r := newRelay(t, Config{Server: addr})
	for i := range 2 {
		env := newEnvelope("s@example.org", "a@example.test", "b@example.test")
		results, err := r.Deliver(context.Background(), env, body(simpleBody))
		if err != nil {
			t.Fatalf("attempt %d: Deliver: %v", i, err)
		}
		for _, res := range results {
			if res.Delivered || res.Permanent || res.Code != 421 {
				t.Errorf("attempt %d result = %+v, want a temporary 421", i, res)
			}
		}
	}
	if n := len(readDumps(t, dir)); n != 0 {
		t.Errorf("smtp-sink dumped %d transactions, want 0", n)
	}
}
