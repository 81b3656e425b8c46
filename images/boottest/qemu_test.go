//go:build boottest

package boottest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/images/internal/builder"
)

// bootTimeout bounds each wait for a banner or a delivery. Boots took 4 to
// 15 s under software emulation on a shared 2-core machine, and the margin
// covers load from other jobs.
const bootTimeout = 3 * time.Minute

const testPassword = "boottest-password"

// testTime fixes the files' time stamps, as a commit time would.
var testTime = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run scripts/install-deps.sh", tool)
		}
	}
}

func requireFiles(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: run scripts/install-deps.sh", err)
		}
	}
}

// testSettings returns the settings baked into test images: the gateway's
// defaults on port 25, relaying to the sink, with short retry delays so a
// deferred message is retried within seconds. SPF is off because the
// isolated guest has no DNS.
func testSettings(t *testing.T) []byte {
	t.Helper()
	s := settings.Default()
	s.Hostname = "lambgate-test"
	s.Inbound.Listen = []string{"0.0.0.0:25"}
	s.Inbound.SPF = false
	s.Bounce.RequireSPFPass = false
	s.Internal.Server = internalServerAddr
	s.Queue.MinBackoff = settings.Duration(2 * time.Second)
	s.Queue.MaxBackoff = settings.Duration(4 * time.Second)
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Parse(data); err != nil {
		t.Fatalf("test settings are invalid: %v", err)
	}
	return data
}

// buildImage builds an image with the gateway and testSettings and returns
// the image path and the root squashfs path.
func buildImage(t *testing.T, target, buildID string) (image, root string) {
	t.Helper()
	dir := t.TempDir()
	image = filepath.Join(dir, "lambgate-"+target+".img")
	root = filepath.Join(dir, "root.squashfs")
	start := time.Now()
	res, err := builder.Build(context.Background(), builder.Options{
		Target:     target,
		Output:     image,
		RootOutput: root,
		Size:       1200 << 20,
		Hostname:   "lambgate-test",
		Settings:   testSettings(t),
		Password:   testPassword,
		BuildID:    buildID,
		Time:       testTime,
	})
	if err != nil {
		t.Fatalf("build %s image: %v", target, err)
	}
	t.Logf("built %s in %.1fs, sha256 %s", image, time.Since(start).Seconds(), res.SHA256)
	return image, root
}

// bootFile reads a file of the image's boot partition with mtools, a FAT
// reader independent of the builder's writer.
func bootFile(t *testing.T, image, name string) string {
	t.Helper()
	const bootOffset = 8192 * 512
	out, err := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", image, bootOffset), "::"+name).Output()
	if err != nil {
		t.Fatalf("mtype %s from %s: %v", name, image, err)
	}
	return string(out)
}

func extractBootFile(t *testing.T, image, name string) string {
	t.Helper()
	const bootOffset = 8192 * 512
	dst := filepath.Join(t.TempDir(), filepath.Base(name))
	cmd := exec.Command("mcopy", "-n", "-i", fmt.Sprintf("%s@@%d", image, bootOffset), "::"+name, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy %s from %s: %v\n%s", name, image, err, out)
	}
	return dst
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// vm is one qemu process with its forwarded ports.
type vm struct {
	cmd      *exec.Cmd
	serial   string
	smtpPort int
	httpPort int
	started  time.Time
	// exited is closed when qemu ends, and waitErr is then its exit status.
	exited  chan struct{}
	waitErr error
}

// startVM runs qemu with args plus a user-mode network that forwards the
// guest's ports 25 and 80 to free loopback ports and internalServerAddr to
// the sink on sinkPort. The process is killed when the test ends, and its
// serial console is logged if the test failed.
func startVM(t *testing.T, binary string, nic string, sinkPort int, args ...string) *vm {
	t.Helper()
	v := &vm{
		serial:   filepath.Join(t.TempDir(), "serial.log"),
		smtpPort: freePort(t),
		httpPort: freePort(t),
		exited:   make(chan struct{}),
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(self, " \t") {
		t.Fatalf("test binary path %q contains a space, which qemu's guestfwd cmd: cannot pass", self)
	}
	netdev := fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:25,hostfwd=tcp:127.0.0.1:%d-:80,"+
		"guestfwd=tcp:%s-cmd:%s", v.smtpPort, v.httpPort, internalServerAddr, self)

	full := append([]string{
		"-m", "1024", "-smp", "2",
		"-display", "none", "-monitor", "none",
		"-serial", "file:" + v.serial,
		"-netdev", netdev, "-device", nic + ",netdev=net0",
	}, args...)

	v.cmd = exec.Command(binary, full...)
	v.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", proxyEnv, sinkPort))
	out, err := os.Create(filepath.Join(t.TempDir(), "qemu.out"))
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdout, v.cmd.Stderr = out, out
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", binary, err)
	}
	v.started = time.Now()

	go func() {
		v.waitErr = v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			for _, stream := range []string{"stdout", "stderr"} {
				t.Logf("gateway %s from gokrazy's log buffer:\n%s", stream, v.gatewayLog(stream))
			}
		}
		v.cmd.Process.Kill()
		<-v.exited
		out.Close()
		if t.Failed() {
			logTail(t, "qemu output", out.Name())
			logTail(t, "serial console", v.serial)
		}
	})
	return v
}

func logTail(t *testing.T, what, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s: %v", what, err)
		return
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	t.Logf("last lines of the %s:\n%s", what, strings.Join(lines, "\n"))
}

// waitBanner connects to the forwarded SMTP port until the first line
// contains want, and returns that line. qemu accepts connections on the
// forwarded port before the guest listens, so an empty read means "not yet".
func (v *vm) waitBanner(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-v.exited:
			t.Fatalf("qemu exited before the banner: %v", v.waitErr)
		default:
		}
		line, err := readBanner(v.smtpPort)
		if err == nil {
			last = line
			if strings.Contains(line, want) {
				return line
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no banner containing %q on 127.0.0.1:%d within %s; last banner %q", want, v.smtpPort, bootTimeout, last)
	return ""
}

func readBanner(port int) (string, error) {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	fmt.Fprint(conn, "QUIT\r\n")
	return strings.TrimSpace(line), nil
}

func (v *vm) baseURL() string { return fmt.Sprintf("http://127.0.0.1:%d", v.httpPort) }

// sendMail sends one message through the forwarded SMTP port without
// STARTTLS (the gateway's certificate is self-signed) and returns the
// first error, which carries the SMTP reply.
func (v *vm) sendMail(from, to, subject string) error {
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", v.smtpPort))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@client.test>\r\n\r\nboot test\r\n",
		from, to, subject, time.Now().UTC().Format(time.RFC1123Z), subject)
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// gatewayLog returns the gateway's recent output as gokrazy's init keeps it.
func (v *vm) gatewayLog(stream string) string {
	req, err := http.NewRequest(http.MethodGet, v.baseURL()+"/log?path=/user/lambgate&stream="+stream, nil)
	if err != nil {
		return err.Error()
	}
	req.SetBasicAuth("gokrazy", testPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	// The log endpoint streams new lines until the client leaves, so the
	// timeout above ends the read.
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
