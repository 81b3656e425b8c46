package webui

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestProbeReportsClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	transcript, err := ProbeInternal(context.Background(), addr, "", "mx.example.test", "postmaster@example.test")
	if err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
	if !strings.Contains(transcript, "connecting to "+addr) || !strings.Contains(transcript, "connection failed") {
		t.Errorf("transcript does not show the failed connection:\n%s", transcript)
	}
}

func TestProbeRejectsBadSourceAddress(t *testing.T) {
	_, err := ProbeInternal(context.Background(), "127.0.0.1:25", "not-an-ip", "mx.example.test", "postmaster@example.test")
	if err == nil || !strings.Contains(err.Error(), `"not-an-ip" is not an IP address`) {
		t.Errorf("err = %v, want the invalid source address named", err)
	}
}

func TestProbeHidesNonSMTPResponses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("SECRET-TOKEN=hunter2 some other service\r\nsecond line\r\n"))
	}()

	transcript, err := ProbeInternal(context.Background(), l.Addr().String(), "", "mx.example.test", "postmaster@example.test")
	if err == nil {
		t.Fatal("probe of a service that is not SMTP succeeded")
	}
	if strings.Contains(transcript, "hunter2") || strings.Contains(transcript, "second line") {
		t.Errorf("transcript shows the other service's bytes:\n%s", transcript)
	}
	if !strings.Contains(transcript, "not an SMTP reply") {
		t.Errorf("transcript does not say what was hidden:\n%s", transcript)
	}
}
