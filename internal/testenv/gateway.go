package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

// gatewayBuild is the lambgate binary built once per test process.
var gatewayBuild struct {
	once sync.Once
	path string
	err  error
}

// gatewayBuildPrefix names the folders under os.TempDir() that hold a
// built binary, followed by the PID of the test process.
const gatewayBuildPrefix = "lambgate-testenv-build-"

// BuildGateway builds ./appliance/cmd/lambgate once per test binary into
// a folder under os.TempDir() named after the test process, and returns the
// path of the binary. Folders of test processes that have exited are
// removed, because no single test owns the binary and can clean it up.
func BuildGateway(t testing.TB) string {
	t.Helper()
	gatewayBuild.once.Do(func() {
		gatewayBuild.path, gatewayBuild.err = buildGateway()
	})
	if gatewayBuild.err != nil {
		t.Fatal(gatewayBuild.err)
	}
	return gatewayBuild.path
}

func buildGateway() (string, error) {
	removeStaleBuilds()

	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build lambgate: go not found in PATH: %v", err)
	}
	gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("build lambgate: go env GOMOD: %v", err)
	}
	moduleRoot := filepath.Dir(strings.TrimSpace(string(gomod)))
	if moduleRoot == "." || moduleRoot == "/" {
		return "", fmt.Errorf("build lambgate: no go.mod above the working directory: run the tests inside the repository")
	}

	dir := filepath.Join(os.TempDir(), gatewayBuildPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build lambgate: %v", err)
	}
	bin := filepath.Join(dir, "lambgate")
	cmd := exec.Command(goTool, "build", "-o", bin, "./appliance/cmd/lambgate")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./appliance/cmd/lambgate in %s: %v\n%s", moduleRoot, err, out)
	}
	return bin, nil
}

// removeStaleBuilds removes the build folders of test processes that are
// no longer running.
func removeStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), gatewayBuildPrefix+"*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), gatewayBuildPrefix))
		if err == nil && pid != os.Getpid() && !processAlive(pid) {
			os.RemoveAll(dir)
		}
	}
}

// Gateway is a running lambgate process.
type Gateway struct {
	t       testing.TB
	argv    []string
	inNetns bool
	dataDir string
	addr    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// gatewayReadyTimeout bounds the wait for the inbound 220 greeting. A
// first start generates a TLS certificate and may compile Wasm plugins,
// which is slow on a busy machine.
const gatewayReadyTimeout = 60 * time.Second

// gatewayStopTimeout bounds the wait after SIGTERM before the cleanup
// sends SIGKILL.
const gatewayStopTimeout = 30 * time.Second

// StartGateway writes settingsTOML to dataDir/lambgate.toml, starts
// `bin -data dataDir extraArgs...` with its output in a log file, and
// returns once the first inbound listen address sends a 220 greeting. The
// settings must name that address with a fixed port (FreeAddr gives one).
// The process gets SIGTERM at the end of the test, and SIGKILL when it has
// not exited 30 s later.
func StartGateway(t testing.TB, bin, dataDir string, settingsTOML string, extraArgs ...string) *Gateway {
	t.Helper()
	return startGateway(t, nil, bin, dataDir, settingsTOML, extraArgs)
}

// StartGatewayExec starts the gateway under a command prefix such as
// []string{"ip", "netns", "exec", "appliance"}, as StartGateway does. It
// waits until the process listens on the inbound port rather than for the
// greeting, because the address is inside the namespace. The prefix must
// exec the gateway in its own process, as ip netns exec does, because the
// gateway is signalled by that PID.
func StartGatewayExec(t testing.TB, prefix []string, bin, dataDir string, settingsTOML string, extraArgs ...string) *Gateway {
	t.Helper()
	return startGateway(t, prefix, bin, dataDir, settingsTOML, extraArgs)
}

func startGateway(t testing.TB, prefix []string, bin, dataDir string, settingsTOML string, extraArgs []string) *Gateway {
	t.Helper()
	s, err := settings.Parse([]byte(settingsTOML))
	if err != nil {
		t.Fatalf("StartGateway: invalid settings: %v", err)
	}
	if len(s.Inbound.Listen) == 0 {
		t.Fatalf("StartGateway: the settings have no [inbound] listen address to wait for")
	}
	addr, err := dialableAddr(s.Inbound.Listen[0])
	if err != nil {
		t.Fatalf("StartGateway: %v", err)
	}

	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatalf("StartGateway: create data folder: %v", err)
	}
	path := filepath.Join(dataDir, settings.FileName)
	if err := os.WriteFile(path, []byte(settingsTOML), 0o644); err != nil {
		t.Fatalf("StartGateway: write settings: %v", err)
	}

	g := &Gateway{
		t:       t,
		argv:    commandLine(prefix, bin, append([]string{"-data", dataDir}, extraArgs...)...),
		inNetns: len(prefix) > 0,
		dataDir: dataDir,
		addr:    addr,
		logPath: filepath.Join(t.TempDir(), "lambgate.log"),
	}
	t.Cleanup(g.cleanup)
	g.start()
	return g
}

// dialableAddr turns a listen address into one a client can dial: an
// unspecified host (0.0.0.0, ::, empty) becomes the loopback address.
func dialableAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("inbound listen address %q is not host:port: %v", listen, err)
	}
	if port == "0" {
		return "", fmt.Errorf("inbound listen address %q has port 0: give a fixed port, for example from testenv.FreeAddr", listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// Addr returns the inbound address the gateway was waited for.
func (g *Gateway) Addr() string { return g.addr }

// PID returns the process ID of the running gateway.
func (g *Gateway) PID() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cmd.Process.Pid
}

// Log returns the output of every run of the gateway so far.
func (g *Gateway) Log() string {
	data, err := os.ReadFile(g.logPath)
	if err != nil {
		return fmt.Sprintf("(gateway log %s unreadable: %v)", g.logPath, err)
	}
	return string(data)
}

// Kill ends the gateway with SIGKILL, as a power cut would, and waits for
// the process to be gone.
func (g *Gateway) Kill() {
	g.t.Helper()
	g.signalAndWait(syscall.SIGKILL, gatewayStopTimeout)
}

// Stop sends SIGTERM and waits until the gateway has exited. A gateway that
// is still running after 30 s fails the test and is killed.
func (g *Gateway) Stop() {
	g.t.Helper()
	if !g.signalAndWait(syscall.SIGTERM, gatewayStopTimeout) {
		g.t.Errorf("lambgate did not exit within %v of SIGTERM; killed it. Log:\n%s", gatewayStopTimeout, g.Log())
		g.signalAndWait(syscall.SIGKILL, gatewayStopTimeout)
	}
}

// Restart stops the gateway with SIGTERM when it runs, starts it again with
// the same data folder and arguments, and waits for the 220 greeting.
func (g *Gateway) Restart() {
	g.t.Helper()
	g.Stop()
	g.start()
}

// start runs the process and waits for the greeting, failing the test
// with the log when the process exits first or the wait times out.
func (g *Gateway) start() {
	g.t.Helper()
	logFile, openErr := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if openErr != nil {
		g.t.Fatalf("open gateway log: %v", openErr)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== testenv: start %s\n", strings.Join(g.argv, " "))

	cmd := exec.Command(g.argv[0], g.argv[1:]...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("start %s: %v", strings.Join(g.argv, " "), err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	g.mu.Lock()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()

	exited := func() error {
		select {
		case <-done:
			return fmt.Errorf("lambgate exited before it sent a greeting: %v", cmd.ProcessState)
		default:
			return nil
		}
	}
	var err error
	if g.inNetns {
		_, port, _ := net.SplitHostPort(g.addr)
		err = waitListening(cmd.Process.Pid, port, gatewayReadyTimeout, exited)
	} else {
		err = waitBanner(g.addr, gatewayReadyTimeout, exited)
	}
	if err != nil {
		g.t.Fatalf("%v\nlambgate log:\n%s", err, g.Log())
	}
}

// signalAndWait signals the process and reports whether it exited within
// the timeout. A gateway that already exited counts as stopped.
func (g *Gateway) signalAndWait(sig syscall.Signal, timeout time.Duration) bool {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (g *Gateway) cleanup() {
	if !g.signalAndWait(syscall.SIGTERM, gatewayStopTimeout) {
		g.t.Errorf("lambgate did not exit within %v of SIGTERM at the end of the test; killed it", gatewayStopTimeout)
		g.signalAndWait(syscall.SIGKILL, gatewayStopTimeout)
	}
}
