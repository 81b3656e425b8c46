package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Swaks runs swaks with args and returns its transcript (standard output
// and standard error, interleaved as written) and its exit code. A
// non-zero exit code is returned, not a failure, because tests check
// rejections with it: swaks exits with 23 for a rejected MAIL FROM, 24 when
// every recipient was rejected and 25 for a rejection after DATA. The
// transcript is logged, so a failing test shows it.
func Swaks(t testing.TB, args ...string) (transcript string, exitCode int) {
	t.Helper()
	return SwaksExec(t, nil, args...)
}

// SwaksExec runs swaks under a command prefix such as
// []string{"ip", "netns", "exec", "internet"}, as Swaks does.
func SwaksExec(t testing.TB, prefix []string, args ...string) (transcript string, exitCode int) {
	t.Helper()
	return runClient(t, prefix, "swaks", args)
}

// SMTPSource runs smtp-source with args and returns its output. It fails
// the test with the output when smtp-source exits with an error, because
// smtp-source is used for load, where every message must go through.
func SMTPSource(t testing.TB, args ...string) string {
	t.Helper()
	return SMTPSourceExec(t, nil, args...)
}

// SMTPSourceExec runs smtp-source under a command prefix, as SMTPSource
// does.
func SMTPSourceExec(t testing.TB, prefix []string, args ...string) string {
	t.Helper()
	out, code := runClient(t, prefix, "smtp-source", args)
	if code != 0 {
		t.Fatalf("smtp-source %s: exit code %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func runClient(t testing.TB, prefix []string, program string, args []string) (string, int) {
	t.Helper()
	argv := commandLine(prefix, lookBinary(t, program), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	code, err := exitCode(err)
	if err != nil {
		t.Fatalf("run %s: %v", strings.Join(argv, " "), err)
	}
	t.Logf("%s (exit code %d):\n%s", strings.Join(argv, " "), code, out)
	return string(out), code
}
