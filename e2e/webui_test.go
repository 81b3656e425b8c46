package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/gateway"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/spool"
	"github.com/lambgate/lambgate/appliance/webui"
	"github.com/lambgate/lambgate/internal/testenv"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// The web UI tests drive Debian's chromium through chromedp against a
// gateway started in this process, so they can reach its spool directly.
// Run with -webui.screenshots=../docs/screenshots to refresh the README's
// pictures.

var screenshotDir = flag.String("webui.screenshots", "", "`directory` for PNG screenshots of the web UI's pages")

const (
	chromiumPath  = "/usr/bin/chromium"
	adminPassword = "lamb gate e2e password"
	// browserTimeout bounds each browser test; a wait for an element
	// fails the test only when it runs out.
	browserTimeout = 3 * time.Minute
)

// webGateway is an in-process gateway with the web UI's log ring.
type webGateway struct {
	*gateway.Gateway
	dataDir  string
	settings *settings.Settings
	admin    string // https://127.0.0.1:PORT
	logs     *lockedBuffer
}

// startWebGateway starts a gateway on s in an empty data directory.
func startWebGateway(t *testing.T, s *settings.Settings) *webGateway {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ring := webui.NewLogRing(2000, webui.NewSeries())
	log := slog.New(webui.NewLogHandler(slog.NewTextHandler(logs, nil), ring))

	g, err := gateway.New(dataDir, s, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Shutdown(ctx)
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &webGateway{Gateway: g, dataDir: dataDir, settings: s,
		admin: "https://" + s.Admin.Listen, logs: logs}
}

// webSettings returns the default settings on free loopback ports, with SPF
// off because no DNS server runs, delivering to the data directory's
// Maildir unless internal is set.
func webSettings(t *testing.T, internal string) *settings.Settings {
	s := settings.Default()
	s.Inbound.Listen = []string{testenv.FreeAddr(t)}
	s.Admin.Listen = testenv.FreeAddr(t)
	s.Inbound.SPF = false
	s.Bounce.RequireSPFPass = false
	s.Bounce.Resolver = closedResolver
	s.Internal.Server = internal
	if internal != "" {
		s.Internal.SourceAddress = "127.0.0.1"
	}
	s.Queue.MinBackoff = settings.Duration(time.Second)
	s.Queue.MaxBackoff = settings.Duration(2 * time.Second)
	return s
}

// newBrowser starts headless chromium that trusts only the gateway's
// admin certificate (by its public key) and reaches no outside host.
func newBrowser(t *testing.T, gw *webGateway) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): run scripts/install-deps.sh as root to install Debian's chromium", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", adminSPKI(t, gw)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	// The first Run starts the browser and must not carry the timeout.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return tctx
}

// adminSPKI returns the base64 SHA-256 of the admin certificate's public
// key, the form chromium's --ignore-certificate-errors-spki-list takes.
func adminSPKI(t *testing.T, gw *webGateway) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(webui.CertificateDir(gw.dataDir), "admin-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("admin certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// do runs browser steps and fails the test with what went wrong.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// innerText reads the rendered text of the first element matching the CSS
// selector sel. It evaluates a script in the page rather than reading
// chromedp's copy of the DOM, which can hold a stale node after live.js
// swapped the content.
func innerText(ctx context.Context, sel string) (string, error) {
	quoted, _ := json.Marshal(sel)
	return chromedp.Run(ctx, chromedp.Evaluate[string](
		`(function (el) { if (!el) throw new Error("no element matches " + `+string(quoted)+`); return el.innerText; })`+
			`(document.querySelector(`+string(quoted)+`))`))
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := innerText(ctx, sel)
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// waitText waits until the element sel contains want, with every run of
// white space in the element's text read as one space. It fails only when
// the browser test's timeout runs out, never on a speed limit of its own.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	var last string
	var lastErr error
	for {
		s, err := innerText(ctx, sel)
		s = strings.Join(strings.Fields(s), " ")
		if err == nil && strings.Contains(s, want) {
			return s
		}
		last, lastErr = s, err
		select {
		case <-ctx.Done():
			t.Fatalf("%s never contained %q; last text (error %v):\n%s", sel, want, lastErr, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fill(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(sel), value)
}

func field(key string) string { return fmt.Sprintf(`[name=%q]`, key) }

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshotDir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(*screenshotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// completeSetup runs the wizard in the browser with the running settings
// plus the password, and leaves the browser logged in on the dashboard.
func completeSetup(t *testing.T, ctx context.Context, gw *webGateway) {
	t.Helper()
	do(t, ctx, "open the wizard",
		chromedp.Navigate(gw.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("setup-form")),
		fill("#password", adminPassword),
		fill("#password_confirm", adminPassword),
		chromedp.Click(chromedp.ID("finish")),
		chromedp.WaitVisible(chromedp.ID("dashboard-live")),
	)
}

// submitLogin posts the login form with password. The caller waits for
// the page it expects, because the login page stays visible until the
// response arrives.
func submitLogin(t *testing.T, ctx context.Context, gw *webGateway, password string) {
	t.Helper()
	do(t, ctx, "log in",
		chromedp.Navigate(gw.admin+"/login"),
		chromedp.WaitVisible(chromedp.ID("password")),
		fill("#password", password),
		chromedp.Click(chromedp.ID("login")),
	)
}

// lockedBuffer collects log lines from concurrent goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// insecureClient talks to the admin listener without a browser: it trusts
// any certificate and does not follow redirects.
func insecureClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// spoolMessage commits a message straight into an area of the gateway's
// spool, as a plugin's quarantine verdict would.
func spoolMessage(t *testing.T, gw *webGateway, area spool.Area, rcpt, subject string) string {
	t.Helper()
	return spoolMessageFrom(t, gw, area, "sender@example.org", "", rcpt, subject)
}

// spoolMessageFrom is spoolMessage with an envelope sender and the SPF
// result recorded for it.
func spoolMessageFrom(t *testing.T, gw *webGateway, area spool.Area, from, spf, rcpt, subject string) string {
	t.Helper()
	env := &envelope.Envelope{
		Kind:       envelope.KindInbound,
		From:       from,
		SPF:        spf,
		Recipients: []envelope.Recipient{{Address: rcpt, State: envelope.StatePending}},
		ClientIP:   "192.0.2.7",
		ClientHELO: "client.example.org",
		Received:   time.Now(),
	}
	w, err := gw.Spool().Create(env)
	if err != nil {
		t.Fatal(err)
	}
	msg := "Received: from client.example.org ([192.0.2.7])\r\n" +
		"From: " + from + "\r\nTo: " + rcpt + "\r\nSubject: " + subject + "\r\n\r\nheld for review\r\n"
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background(), area); err != nil {
		t.Fatal(err)
	}
	return env.QueueID
}

// waitMaildir waits until the gateway's Maildir holds a message containing
// want, and returns it.
func waitMaildir(t *testing.T, gw *webGateway, want string) string {
	t.Helper()
	dir := filepath.Join(gw.dataDir, "maildir", "new")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err == nil && strings.Contains(string(data), want) {
				return string(data)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no message containing %q arrived in %s", want, dir)
	return ""
}

func TestWebSetupWizardFromEmptyDataDir(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Users: []string{"postmaster@example.test", "alice@example.test"}})
	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)

	do(t, ctx, "open the admin address",
		chromedp.Navigate(gw.admin+"/queue"),
		chromedp.WaitVisible(chromedp.ID("setup-form")),
	)
	if loc := location(t, ctx); loc != gw.admin+"/setup" {
		t.Errorf("the first page is %s, want the wizard at %s/setup", loc, gw.admin)
	}

	do(t, ctx, "fill the wizard and test the internal server",
		fill("#password", adminPassword),
		fill("#password_confirm", adminPassword),
		fill(field("hostname"), "mx.example.test"),
		fill(field("domains.relay"), "example.test"),
		fill(field("internal.server"), pf.Addr()),
		fill(field("internal.source_address"), "127.0.0.1"),
		fill(field("bounce.helo"), "bounce.example.test"),
		fill(field("bounce.source_address"), "192.0.2.25"),
		chromedp.Click(chromedp.ID("probe")),
		chromedp.WaitVisible(chromedp.ID("transcript")),
	)
	transcript := textOf(t, ctx, "#transcript")
	for _, want := range []string{"C: MAIL FROM:<>", "C: RCPT TO:<postmaster@example.test>", "S: 250",
		"the internal server accepted postmaster@example.test"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("probe transcript lacks %q:\n%s", want, transcript)
		}
	}
	records := textOf(t, ctx, "#dns-records")
	for _, want := range []string{"bounce.example.test. IN A 192.0.2.25",
		"25.2.0.192.in-addr.arpa. IN PTR bounce.example.test.",
		`bounce.example.test. IN TXT "v=spf1 ip4:192.0.2.25 -all"`} {
		if !strings.Contains(records, want) {
			t.Errorf("DNS records lack %q:\n%s", want, records)
		}
	}
	// The probe re-renders the wizard: typed values stay, passwords do not.
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(field("internal.server")))); v != pf.Addr() {
		t.Errorf("internal.server after the probe = %q, want %q", v, pf.Addr())
	}
	screenshot(t, ctx, "setup")

	do(t, ctx, "finish the wizard",
		fill("#password", adminPassword),
		fill("#password_confirm", adminPassword),
		chromedp.Click(chromedp.ID("finish")),
		chromedp.WaitVisible(chromedp.ID("dashboard-live")),
	)
	if notice := textOf(t, ctx, ".notice"); !strings.Contains(notice, "Setup complete") {
		t.Errorf("dashboard notice = %q, want the setup confirmation", notice)
	}

	saved, err := os.ReadFile(filepath.Join(gw.dataDir, settings.FileName))
	if err != nil {
		t.Fatalf("the wizard saved no settings file: %v", err)
	}
	if !strings.Contains(string(saved), pf.Addr()) {
		t.Errorf("saved settings lack the internal server %s:\n%s", pf.Addr(), saved)
	}
	if strings.Contains(string(saved), "password") || strings.Contains(string(saved), "$2a$") {
		t.Errorf("the settings file holds password material:\n%s", saved)
	}
	admin, err := os.ReadFile(filepath.Join(webui.CertificateDir(gw.dataDir), "admin.json"))
	if err != nil {
		t.Fatalf("no admin password file: %v", err)
	}
	if !strings.Contains(string(admin), "$2a$12$") || strings.Contains(string(admin), adminPassword) {
		t.Errorf("admin.json holds no bcrypt hash of cost 12, or the password itself:\n%s", admin)
	}

	// The gateway relays to the server the wizard named, without a restart.
	out, code := testenv.Swaks(t, "--server", gw.settings.Inbound.Listen[0],
		"--from", "sender@example.org", "--to", "alice@example.test",
		"--header", "Subject: after the wizard")
	if code != 0 {
		t.Fatalf("swaks exit %d:\n%s", code, out)
	}
	msgs := pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)
	if got := msgs[0].Header.Get("Subject"); got != "after the wizard" {
		t.Errorf("Postfix got Subject %q", got)
	}
}

func TestWebLogoutAndLogin(t *testing.T) {
	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)

	do(t, ctx, "log out",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login")),
	)
	if notice := textOf(t, ctx, ".notice"); !strings.Contains(notice, "Logged out") {
		t.Errorf("login page notice = %q, want the logout confirmation", notice)
	}
	do(t, ctx, "open the queue while logged out",
		chromedp.Navigate(gw.admin+"/queue"),
		chromedp.WaitVisible(chromedp.ID("login")),
	)
	screenshot(t, ctx, "login")

	submitLogin(t, ctx, gw, "not the password")
	waitText(t, ctx, ".error", "Wrong password.")
	submitLogin(t, ctx, gw, adminPassword)
	do(t, ctx, "see the dashboard", chromedp.WaitVisible(chromedp.ID("dashboard-live")))
	do(t, ctx, "open the queue",
		chromedp.Navigate(gw.admin+"/queue"),
		chromedp.WaitVisible(chromedp.ID("messages")),
	)
}

func TestWebSettingChangeApplied(t *testing.T) {
	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	smtpAddr := gw.settings.Inbound.Listen[0]

	if out, code := testenv.Swaks(t, "--server", smtpAddr,
		"--from", "sender@example.org", "--to", "bob@example.net"); code == 0 {
		t.Fatalf("example.net accepted before it became a relay domain:\n%s", out)
	}

	do(t, ctx, "enter an invalid value",
		chromedp.Navigate(gw.admin+"/settings"),
		chromedp.WaitVisible(chromedp.ID("settings-form")),
		fill(field("queue.workers"), "0"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(`[id="err-queue.workers"]`)),
	)
	if msg := textOf(t, ctx, `[id="err-queue.workers"]`); !strings.Contains(msg, "positive number") {
		t.Errorf("queue.workers error = %q", msg)
	}
	screenshot(t, ctx, "settings-error")
	if got := gw.Settings().Queue.Workers; got == 0 {
		t.Fatal("an invalid value was applied")
	}

	do(t, ctx, "add a relay domain",
		fill(field("queue.workers"), "4"),
		fill(field("domains.relay"), "example.test\nexample.net"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if notice := textOf(t, ctx, ".notice"); !strings.Contains(notice, "saved and applied") {
		t.Errorf("settings notice = %q", notice)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(field("domains.relay")))); !strings.Contains(v, "example.net") {
		t.Errorf("the settings page shows relay domains %q after saving", v)
	}

	out, code := testenv.Swaks(t, "--server", smtpAddr,
		"--from", "sender@example.org", "--to", "bob@example.net", "--header", "Subject: new domain")
	if code != 0 {
		t.Fatalf("mail for the new relay domain: swaks exit %d:\n%s", code, out)
	}
	waitMaildir(t, gw, "Subject: new domain")
	saved, err := os.ReadFile(filepath.Join(gw.dataDir, settings.FileName))
	if err != nil || !strings.Contains(string(saved), "example.net") || !strings.Contains(string(saved), "workers = 4") {
		t.Errorf("settings file after saving (err %v):\n%s", err, saved)
	}
}

func TestWebReleaseQuarantinedMessage(t *testing.T) {
	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	id := spoolMessage(t, gw, spool.AreaQuarantine, "alice@example.test", "held by a plugin")
	junk := spoolMessage(t, gw, spool.AreaQuarantine, "bob@example.test", "junk held by a plugin")

	do(t, ctx, "delete the junk",
		chromedp.Navigate(gw.admin+"/quarantine/"+junk),
		chromedp.WaitVisible(chromedp.ID("delete")),
		chromedp.Click(chromedp.ID("delete")),
	)
	waitText(t, ctx, ".notice", "Message deleted")
	if rows := textOf(t, ctx, "#messages"); strings.Contains(rows, junk) || !strings.Contains(rows, id) {
		t.Errorf("quarantine after deleting %s:\n%s", junk, rows)
	}

	do(t, ctx, "search the quarantine",
		chromedp.Navigate(gw.admin+"/quarantine"),
		chromedp.WaitVisible(chromedp.ID("search")),
		fill("#search", "alice@"),
		chromedp.Submit(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/quarantine/`+id+`"]`)),
	)
	screenshot(t, ctx, "quarantine")
	do(t, ctx, "open the message",
		chromedp.Click(chromedp.CSS(`a[href="/quarantine/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.ID("headers")),
	)
	if h := textOf(t, ctx, "#headers"); !strings.Contains(h, "Subject: held by a plugin") {
		t.Errorf("headers shown:\n%s", h)
	}
	screenshot(t, ctx, "message")
	do(t, ctx, "release it",
		chromedp.Click(chromedp.ID("release")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if notice := textOf(t, ctx, ".notice"); !strings.Contains(notice, "released") {
		t.Errorf("quarantine notice = %q", notice)
	}
	delivered := waitMaildir(t, gw, "Subject: held by a plugin")
	if !strings.Contains(delivered, "Delivered-To: alice@example.test") {
		t.Errorf("released message delivered without its recipient:\n%s", delivered)
	}
	if list, _ := gw.Spool().List(spool.AreaQuarantine); len(list) != 0 {
		t.Errorf("quarantine still holds %d messages", len(list))
	}
	if entries, _ := os.ReadDir(filepath.Join(gw.dataDir, "maildir", "new")); len(entries) != 1 {
		t.Errorf("Maildir holds %d messages, want only the released one", len(entries))
	}

	do(t, ctx, "follow the message in the logs",
		chromedp.Navigate(gw.admin+"/logs?queue_id="+id),
		chromedp.WaitVisible(chromedp.ID("log-live")),
	)
	trail := textOf(t, ctx, "#log-live")
	for _, want := range []string{"released from quarantine", "delivered"} {
		if !strings.Contains(trail, want) {
			t.Errorf("log trail of %s lacks %q:\n%s", id, want, trail)
		}
	}
	screenshot(t, ctx, "logs")
}

func TestWebQueueSearchAndDelete(t *testing.T) {
	// Nothing listens on the internal server's port, so mail stays queued.
	gw := startWebGateway(t, webSettings(t, testenv.FreeAddr(t)))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	keep := spoolMessage(t, gw, spool.AreaQueue, "carol@example.test", "stays queued")
	drop := spoolMessage(t, gw, spool.AreaQueue, "dave@example.test", "to be deleted")
	gw.Queue().Kick()

	do(t, ctx, "search the queue by recipient",
		chromedp.Navigate(gw.admin+"/queue?q=dave@"),
		chromedp.WaitVisible(chromedp.ID("messages")),
	)
	rows := textOf(t, ctx, "#messages")
	if !strings.Contains(rows, drop) || strings.Contains(rows, keep) {
		t.Errorf("search for dave@ shows:\n%s", rows)
	}
	do(t, ctx, "search the queue by queue id",
		chromedp.Navigate(gw.admin+"/queue?q="+keep),
		chromedp.WaitVisible(chromedp.ID("messages")),
	)
	if rows := textOf(t, ctx, "#messages"); !strings.Contains(rows, keep) || strings.Contains(rows, drop) {
		t.Errorf("search for %s shows:\n%s", keep, rows)
	}
	do(t, ctx, "list the whole queue",
		chromedp.Navigate(gw.admin+"/queue"),
		chromedp.WaitVisible(chromedp.ID("messages")),
	)
	screenshot(t, ctx, "queue")

	do(t, ctx, "delete one message",
		chromedp.Navigate(gw.admin+"/queue/"+drop),
		chromedp.WaitVisible(chromedp.ID("headers")),
		chromedp.Click(chromedp.ID("delete")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	rows = textOf(t, ctx, "#messages")
	if strings.Contains(rows, drop) {
		t.Errorf("deleted message %s still listed:\n%s", drop, rows)
	}
	if !strings.Contains(rows, keep) {
		t.Errorf("message %s vanished with the deleted one:\n%s", keep, rows)
	}
	do(t, ctx, "retry the rest", chromedp.Click(chromedp.ID("retry-all")))
	waitText(t, ctx, ".notice", "retried")
}

func TestWebDashboardCountsLive(t *testing.T) {
	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	before := textOf(t, ctx, "#charts-hour")

	out, code := testenv.Swaks(t, "--server", gw.settings.Inbound.Listen[0],
		"--from", "sender@example.org", "--to", "erin@example.test")
	if code != 0 {
		t.Fatalf("swaks exit %d:\n%s", code, out)
	}
	testenv.Swaks(t, "--server", gw.settings.Inbound.Listen[0],
		"--from", "sender@example.org", "--to", "someone@elsewhere.example")

	// The page is not reloaded: live.js swaps in fresh counts.
	waitText(t, ctx, "#delivered-total", "1")
	hour := waitText(t, ctx, "#charts-hour", "accepted 1")
	if !strings.Contains(hour, "rejected 1") {
		t.Errorf("hour charts after one rejection:\n%s\n(before: %s)", hour, before)
	}
	waitText(t, ctx, "#reasons", "domain elsewhere.example is not a relay domain 1")
	screenshot(t, ctx, "dashboard")
}

func TestWebRejectsCSRFAndUnauthenticated(t *testing.T) {
	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	client := insecureClient()

	for _, path := range []string{"/", "/queue", "/settings/export"} {
		resp, err := client.Get(gw.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("GET %s without a session: %s to %q, want 303 to /login", path, resp.Status, resp.Header.Get("Location"))
		}
	}
	resp, err := client.PostForm(gw.admin+"/settings", map[string][]string{"hostname": {"evil.example"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /settings without a session: %s, want 401", resp.Status)
	}

	// The browser holds a session; a request without the form's token is
	// still rejected.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/settings", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "hostname=evil.example"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusForbidden {
		t.Errorf("POST without a CSRF token from a logged-in browser: status %d, want 403", status)
	}
	if got := gw.Settings().Hostname; got == "evil.example" {
		t.Error("a request without a CSRF token changed the hostname")
	}

	// Plain HTTP on the admin port redirects to HTTPS but still serves metrics.
	resp, err = client.Get("http://" + gw.settings.Admin.Listen + "/settings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := gw.admin + "/settings"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %s to %q, want 301 to %s", resp.Status, resp.Header.Get("Location"), want)
	}
	resp, err = client.Get("http://" + gw.settings.Admin.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "lambgate_queue_depth") {
		t.Errorf("plain HTTP /metrics: %s\n%s", resp.Status, body)
	}
}

// uploadPlugin posts the upload form with a module and a manifest file.
func uploadPlugin(t *testing.T, ctx context.Context, gw *webGateway, wasmPath, manifestPath string) {
	t.Helper()
	do(t, ctx, "upload a plugin",
		chromedp.Navigate(gw.admin+"/plugins"),
		chromedp.WaitVisible(chromedp.ID("plugin-upload")),
		chromedp.SetUploadFiles(chromedp.ID("module"), []string{wasmPath}),
		chromedp.SetUploadFiles(chromedp.ID("manifest"), []string{manifestPath}),
		chromedp.Click(chromedp.ID("upload")),
	)
}

// swaksTo sends one message to rcpt and returns swaks's exit code.
func swaksTo(t *testing.T, gw *webGateway, rcpt string, args ...string) int {
	t.Helper()
	_, code := testenv.Swaks(t, append([]string{"--server", gw.settings.Inbound.Listen[0],
		"--from", "sender@example.org", "--to", rcpt}, args...)...)
	return code
}

func TestWebPluginLifecycle(t *testing.T) {
	wasm, err := plugintest.BuildOnce(context.Background(), probeDir)
	if err != nil {
		t.Fatalf("build e2eprobe plugin: %v", err)
	}
	files := t.TempDir()
	wasmPath := filepath.Join(files, "e2eprobe.wasm")
	garbagePath := filepath.Join(files, "garbage.wasm")
	manifestPath := filepath.Join(files, "e2eprobe.toml")
	manifest, err := os.ReadFile(filepath.Join(probeDir, "e2eprobe.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{wasmPath: wasm, garbagePath: []byte("\x00asm not really"), manifestPath: manifest} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	pluginsDir := filepath.Join(gw.dataDir, "plugins")

	uploadPlugin(t, ctx, gw, garbagePath, manifestPath)
	waitText(t, ctx, ".error", "The plugin was not installed")
	if entries, _ := filepath.Glob(filepath.Join(pluginsDir, "*.wasm")); len(entries) != 0 {
		t.Fatalf("an invalid module was stored: %v", entries)
	}

	uploadPlugin(t, ctx, gw, wasmPath, manifestPath)
	waitText(t, ctx, ".notice", "installed and live")
	if row := textOf(t, ctx, "#plugin-e2eprobe"); !strings.Contains(row, "enabled") || !strings.Contains(row, "2s") {
		t.Errorf("plugin row after upload: %q", row)
	}
	if code := swaksTo(t, gw, "blocked@example.test"); code != 24 {
		t.Errorf("blocked recipient with the plugin enabled: swaks exit %d, want 24", code)
	}
	if code := swaksTo(t, gw, "alice@example.test"); code != 0 {
		t.Errorf("ordinary recipient: swaks exit %d, want 0", code)
	}

	do(t, ctx, "open the dashboard",
		chromedp.Navigate(gw.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("plugin-stats")),
	)
	stats := waitText(t, ctx, "#plugin-stats", "e2eprobe")
	if !strings.Contains(stats, "reject=1") {
		t.Errorf("dashboard plugin verdicts lack reject=1:\n%s", stats)
	}
	screenshot(t, ctx, "dashboard-plugins")

	do(t, ctx, "disable the plugin",
		chromedp.Navigate(gw.admin+"/plugins"),
		chromedp.WaitVisible(chromedp.ID("disable-e2eprobe")),
		chromedp.Click(chromedp.ID("disable-e2eprobe")),
	)
	waitText(t, ctx, ".notice", "Plugin disabled")
	if code := swaksTo(t, gw, "blocked@example.test"); code != 0 {
		t.Errorf("blocked recipient with the plugin disabled: swaks exit %d, want 0", code)
	}

	do(t, ctx, "enable the plugin", chromedp.Click(chromedp.ID("enable-e2eprobe")))
	waitText(t, ctx, ".notice", "Plugin enabled")
	if code := swaksTo(t, gw, "blocked@example.test"); code != 24 {
		t.Errorf("blocked recipient after enabling again: swaks exit %d, want 24", code)
	}

	do(t, ctx, "set the order",
		chromedp.SetValue(chromedp.CSS(`#plugin-e2eprobe input[name="order"]`), "7"),
		chromedp.Submit(chromedp.CSS(`#plugin-e2eprobe form.order`)),
	)
	waitText(t, ctx, ".notice", "order changed")
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#plugin-e2eprobe input[name="order"]`))); v != "7" {
		t.Errorf("order after the change = %q, want 7", v)
	}

	do(t, ctx, "enter an invalid manifest",
		chromedp.Click(chromedp.ID("edit-e2eprobe")),
		chromedp.WaitVisible(chromedp.ID("manifest-text")),
		fill("#manifest-text", strings.Replace(string(manifest), `time_limit = "2s"`, `time_limit = "forever"`, 1)),
		chromedp.Click(chromedp.ID("save-manifest")),
	)
	waitText(t, ctx, ".error", "The manifest was not applied")
	if code := swaksTo(t, gw, "blocked@example.test"); code != 24 {
		t.Errorf("blocked recipient after a rejected manifest: swaks exit %d, want 24", code)
	}

	do(t, ctx, "change the plugin's settings",
		fill("#manifest-text", strings.Replace(string(manifest), `"blocked@example.test"`, `"other@example.test"`, 1)),
		chromedp.Click(chromedp.ID("save-manifest")),
	)
	waitText(t, ctx, ".notice", "manifest validated and applied")
	if code := swaksTo(t, gw, "blocked@example.test"); code != 0 {
		t.Errorf("formerly blocked recipient after the settings change: swaks exit %d, want 0", code)
	}
	if code := swaksTo(t, gw, "other@example.test"); code != 24 {
		t.Errorf("newly blocked recipient: swaks exit %d, want 24", code)
	}
	screenshot(t, ctx, "plugins")

	do(t, ctx, "remove the plugin", chromedp.Click(chromedp.ID("remove-e2eprobe")))
	waitText(t, ctx, ".notice", "Plugin removed")
	waitText(t, ctx, "#plugins", "No plugins installed")
	if entries, _ := filepath.Glob(filepath.Join(pluginsDir, "e2eprobe.*")); len(entries) != 0 {
		t.Errorf("files left after removal: %v", entries)
	}
	if code := swaksTo(t, gw, "other@example.test"); code != 0 {
		t.Errorf("recipient after removal: swaks exit %d, want 0", code)
	}
}

func TestWebBounceQueuedMessage(t *testing.T) {
	world := newBounceWorld(t)
	// Nothing listens on the internal server's port, so mail stays queued.
	s := webSettings(t, testenv.FreeAddr(t))
	world.configure(t, s)
	gw := startWebGateway(t, s)
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	id := spoolMessageFrom(t, gw, spool.AreaQueue, "alice@sender.test", "pass", "carol@example.test", "undeliverable")
	gw.Queue().Kick()

	do(t, ctx, "bounce the message",
		chromedp.Navigate(gw.admin+"/queue/"+id),
		chromedp.WaitVisible(chromedp.ID("bounce")),
		chromedp.Click(chromedp.ID("bounce")),
	)
	waitText(t, ctx, ".notice", "Message bounced")
	if rows := textOf(t, ctx, "#messages"); strings.Contains(rows, id) {
		t.Errorf("bounced message %s still queued:\n%s", id, rows)
	}

	dsn := world.sink.WaitMessages(t, 1, 30*time.Second)[0]
	if dsn.MailFrom != "" {
		t.Errorf("DSN envelope sender = %q, want the null sender", dsn.MailFrom)
	}
	if len(dsn.Rcpts) != 1 || dsn.Rcpts[0] != "alice@sender.test" {
		t.Errorf("DSN recipients = %v, want [alice@sender.test]", dsn.Rcpts)
	}
	if dsn.ClientAddr != bounceSource {
		t.Errorf("DSN came from %s, want the bounce role's %s", dsn.ClientAddr, bounceSource)
	}
	if dsn.HELO != bounceHELO {
		t.Errorf("DSN HELO = %q, want %q", dsn.HELO, bounceHELO)
	}
	if !strings.Contains(string(dsn.Data), "returned to the sender by the gateway's administrator") {
		t.Errorf("DSN lacks the administrator's reason:\n%s", dsn.Data)
	}
}

func TestWebAdminAddressMoves(t *testing.T) {
	gw := startWebGateway(t, webSettings(t, ""))
	ctx := newBrowser(t, gw)
	completeSetup(t, ctx, gw)
	moved := testenv.FreeAddr(t)

	do(t, ctx, "move the admin listener",
		chromedp.Navigate(gw.admin+"/settings"),
		chromedp.WaitVisible(chromedp.ID("settings-form")),
		fill(field("admin.listen"), moved),
		chromedp.Click(chromedp.ID("save")),
	)
	waitText(t, ctx, ".notice", "Settings saved and applied")
	do(t, ctx, "follow the link to the new address",
		chromedp.Click(chromedp.ID("moved-link")),
		chromedp.WaitVisible(chromedp.ID("settings-form")),
	)
	if loc := location(t, ctx); loc != "https://"+moved+"/settings" {
		t.Errorf("browser is at %s after the move, want https://%s/settings", loc, moved)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(field("admin.listen")))); v != moved {
		t.Errorf("admin.listen on the new address shows %q, want %q", v, moved)
	}

	// The old listener closes once the saving request has finished.
	client := insecureClient()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(gw.admin + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the old admin address %s still answers after the move", gw.admin)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := client.Get("https://" + moved + "/healthz")
	if err != nil {
		t.Fatalf("the new admin address does not answer: %v", err)
	}
	resp.Body.Close()
}
