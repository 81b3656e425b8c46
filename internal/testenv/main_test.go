package testenv_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/lambgate/lambgate/appliance/settings"
)

// fakeGatewayEnv makes the test binary act as a stand-in gateway, so that
// StartGateway's process handling is tested apart from the real lambgate:
// "serve" sends greetings, "exit" exits at once with status 3.
const fakeGatewayEnv = "TESTENV_FAKE_GATEWAY"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeGatewayEnv) {
	case "serve":
		os.Exit(runFakeGateway(os.Args[1:]))
	case "exit":
		fmt.Fprintln(os.Stderr, "fake gateway: exiting before it listens")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// runFakeGateway reads -data DIR, loads DIR/lambgate.toml and, on the
// first inbound address, sends a 220 greeting to every connection and 221
// to its first command, until it is killed.
func runFakeGateway(args []string) int {
	if len(args) < 2 || args[0] != "-data" {
		fmt.Fprintf(os.Stderr, "fake gateway: arguments %q, want -data DIR\n", args)
		return 2
	}
	s, _, err := settings.Load(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake gateway: %v\n", err)
		return 2
	}
	listener, err := net.Listen("tcp", s.Inbound.Listen[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake gateway: %v\n", err)
		return 1
	}
	fmt.Printf("fake gateway pid %d listening on %s\n", os.Getpid(), listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			return 1
		}
		fmt.Fprintf(conn, "220 fake.test ESMTP\r\n")
		if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
			fmt.Fprintf(conn, "221 2.0.0 Bye\r\n")
		}
		conn.Close()
	}
}

// fatalRecorder is a testing.TB whose Fatal and Fatalf record the message
// and end the calling goroutine, so that a test can check that a helper
// fails its test.
type fatalRecorder struct {
	testing.TB
	message string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.message = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.message = fmt.Sprint(args...)
	runtime.Goexit()
}

// fatalMessage runs f with a fatalRecorder in its own goroutine and returns
// the message f failed with, or "" when it returned normally.
func fatalMessage(t testing.TB, f func(testing.TB)) string {
	recorder := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(recorder)
	}()
	<-done
	return recorder.message
}
