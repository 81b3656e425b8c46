package testenv

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PostfixOptions configures a private Postfix instance.
type PostfixOptions struct {
	// Addr is the host:port of the smtpd service. Empty: a free port on
	// 127.0.0.1. Required with Exec, because the port is inside another
	// network namespace.
	Addr string

	// Exec is a command prefix for every postfix command, such as
	// []string{"ip", "netns", "exec", "internal"}. The master and all its
	// services then run inside that network namespace. Empty: run directly.
	Exec []string

	// Hostname is myhostname: the greeting, the Received headers and the
	// HELO name. Default "mail.internal.test".
	Hostname string

	// Domains are the domains the instance accepts mail for. Default
	// example.test. Mail for other domains gets 554 5.7.1 relay access
	// denied at RCPT.
	Domains []string

	// Users are the full addresses that exist. Other recipients in Domains
	// get 550 5.1.1 at RCPT, as needed for recipient callouts. Empty: every
	// local part of Domains is accepted.
	Users []string

	// RejectRecipients get 550 5.2.1 at RCPT even when they are in Users.
	RejectRecipients []string

	// RejectAfterData are recipients that are accepted at RCPT, after which
	// the whole message gets 550 5.7.1 at the end of DATA: a permanent
	// failure after the gateway committed to the message.
	RejectAfterData []string

	// RelayTo is a host:port to which all mail for Domains is relayed (an
	// smtp-sink for benchmarks) instead of being delivered to Maildirs. The
	// queue stays durable: Postfix syncs each queue file before its 250.
	RelayTo string

	// MainCF holds extra main.cf parameters, applied after the package's
	// own settings, such as {"message_size_limit": "1000000"}.
	MainCF map[string]string
}

// Postfix is a running private Postfix instance.
type Postfix struct {
	t    testing.TB
	opts PostfixOptions

	root      string
	configDir string
	queueDir  string
	mailDir   string
	logPath   string
	addr      string

	mu      sync.Mutex
	running bool
}

// postfixStartAttempts bounds the retries when a port picked by FreeAddr
// was taken by another process before Postfix could bind it.
const postfixStartAttempts = 3

// StartPostfix starts a private Postfix instance with its own config,
// queue and data directories under t.TempDir() and registers its stop as a
// cleanup. When the start fails, the test fails with the output of
// `postfix check` and the maillog.
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	lookBinary(t, "postfix")
	if len(opts.Exec) > 0 && opts.Addr == "" {
		t.Fatalf("PostfixOptions.Addr is empty but Exec is %q: give an address inside that namespace", opts.Exec)
	}
	if len(opts.Domains) == 0 {
		opts.Domains = []string{"example.test"}
	}
	if opts.Hostname == "" {
		opts.Hostname = "mail.internal.test"
	}

	// The folders come first: cleanups run last-in first-out, and the
	// instance must stop before t.TempDir() removes its queue.
	p := &Postfix{t: t, opts: opts, root: sharedTempDir(t)}
	t.Cleanup(p.cleanup)
	for attempt := 1; ; attempt++ {
		p.addr = opts.Addr
		if p.addr == "" {
			p.addr = FreeAddr(t)
		}
		p.configure(t)
		err := p.start()
		if err == nil {
			return p
		}
		if opts.Addr == "" && attempt < postfixStartAttempts && p.portTaken() {
			t.Logf("postfix: %s was taken before the start, trying another port", p.addr)
			continue
		}
		t.Fatalf("%v\n%s", err, p.diagnostics())
	}
}

// Addr returns the host:port of the smtpd service.
func (p *Postfix) Addr() string { return p.addr }

// MailDir returns the folder under which the Maildirs are created.
func (p *Postfix) MailDir() string { return p.mailDir }

// Log returns the instance's maillog so far, for failure messages.
func (p *Postfix) Log() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(maillog %s unreadable: %v)", p.logPath, err)
	}
	return string(data)
}

// Start starts the instance again after Stop, with the same address and
// queue, so that an outage of the internal server can end.
func (p *Postfix) Start() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("%v\n%s", err, p.diagnostics())
	}
}

// Stop stops the instance and waits until the master and its services have
// exited, so that the port refuses connections when Stop returns. Queued
// mail stays in the queue for the next Start. Stop may take a second more
// than usual, because `postfix stop` polls for the master's exit once a
// second.
func (p *Postfix) Stop() {
	p.t.Helper()
	if err := p.stop(); err != nil {
		p.t.Fatalf("%v\n%s", err, p.diagnostics())
	}
}

// configure writes the config directory: a copy of /etc/postfix with
// main.cf and master.cf replaced, and the queue, data and mail folders.
func (p *Postfix) configure(t testing.TB) {
	t.Helper()
	if p.configDir == "" {
		root := p.root
		p.configDir = filepath.Join(root, "config")
		p.queueDir = filepath.Join(root, "queue")
		p.mailDir = filepath.Join(root, "mail")
		p.logPath = filepath.Join(root, "maillog")
		dataDir := filepath.Join(root, "data")

		uid, gid := lookupUser(t, "postfix")
		for _, dir := range []string{p.configDir, p.queueDir, p.mailDir, dataDir} {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatalf("create Postfix folder: %v", err)
			}
		}
		// The master refuses a data directory that postfix does not own, and
		// virtual(8) writes the Maildirs as the postfix user.
		for _, dir := range []string{dataDir, p.mailDir} {
			if err := os.Chown(dir, uid, gid); err != nil {
				t.Fatalf("give %s to the postfix user: %v", dir, err)
			}
		}
		if err := copySystemConfig(p.configDir); err != nil {
			t.Fatalf("copy /etc/postfix: %v", err)
		}
		if err := createQueue(p.queueDir, uid); err != nil {
			t.Fatalf("create the Postfix queue: %v", err)
		}
	}

	mainCF, err := p.mainCF()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"main.cf":   mainCF,
		"master.cf": masterCF(p.addr),
	}
	if len(p.opts.RejectAfterData) > 0 {
		files["header_checks"] = "/^" + rejectHeader + ":/ REJECT 5.7.1 Message rejected after DATA by testenv\n"
	}
	// Postfix 3.7's postfix command pauses for about 2 s, in 0.3 s steps,
	// when main.cf changed within the last seconds (seen with strace). With
	// an mtime in the past, the start takes 0.2 s.
	past := time.Now().Add(-time.Minute)
	for name, content := range files {
		path := filepath.Join(p.configDir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatalf("write Postfix %s: %v", name, err)
		}
		if err := os.Chtimes(path, past, past); err != nil {
			t.Fatalf("set the mtime of %s: %v", path, err)
		}
	}
}

// rejectHeader marks messages for RejectAfterData recipients: smtpd
// prepends it at RCPT and cleanup's header_checks rejects the message at
// the end of DATA. A check_recipient_access rule in
// smtpd_end_of_data_restrictions would see only single-recipient messages.
const rejectHeader = "X-Testenv-Reject-After-Data"

// mainCF returns the main.cf of the instance.
func (p *Postfix) mainCF() (string, error) {
	host, _, err := net.SplitHostPort(p.addr)
	if err != nil {
		return "", fmt.Errorf("PostfixOptions.Addr %q is not host:port: %v", p.addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("PostfixOptions.Addr %q needs an IP address as host: %v", p.addr, err)
	}
	protocol := "ipv4"
	if ip.Is6() && !ip.Is4In6() {
		protocol = "ipv6"
	}
	uid, gid := lookupUser(p.t, "postfix")
	for _, list := range [][]string{p.opts.Domains, p.opts.Users, p.opts.RejectRecipients, p.opts.RejectAfterData} {
		for _, word := range list {
			if word == "" || strings.ContainsAny(word, " \t\r\n,={}/") {
				return "", fmt.Errorf("PostfixOptions: %q is not a plain domain or address", word)
			}
		}
	}
	root := p.root

	params := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + p.queueDir,
		"data_directory = " + filepath.Join(root, "data"),
		"maillog_file = " + p.logPath,
		"maillog_file_prefixes = " + root,
		"myhostname = " + p.opts.Hostname,
		"inet_interfaces = " + host,
		"inet_protocols = " + protocol,
		"mynetworks = 127.0.0.0/8",
		// Nothing is delivered locally: every domain is virtual or relayed.
		"mydestination =",
		"local_recipient_maps =",
		"local_transport = error:5.1.1 local delivery is disabled",
		"alias_maps =",
		"alias_database =",
		"biff = no",
		// Never an open relay, not even for 127.0.0.1, where the gateway runs.
		"smtpd_relay_restrictions = reject_unauth_destination",
		"smtpd_tls_security_level = none",
		"smtp_tls_security_level = none",
		"smtp_dns_support_level = disabled",
		"smtp_host_lookup = native",
		// Speed: no reverse lookups, no sleep after a rejected command, no
		// delay of clients while the queue is busy.
		"smtpd_peername_lookup = no",
		"smtpd_error_sleep_time = 0",
		"in_flow_delay = 0",
		// Keep the message as the client sent it: no added Date or
		// Message-ID, no rewritten header addresses.
		"local_header_rewrite_clients =",
		"delay_warning_time = 0",
	}

	var recipientRules []string
	var accessEntries []string
	for _, rcpt := range p.opts.RejectRecipients {
		accessEntries = append(accessEntries, "{"+rcpt+" = 550 5.2.1 Mailbox unavailable (testenv RejectRecipients)}")
	}
	for _, rcpt := range p.opts.RejectAfterData {
		accessEntries = append(accessEntries, "{"+rcpt+" = PREPEND "+rejectHeader+": "+rcpt+"}")
	}
	if len(accessEntries) > 0 {
		recipientRules = append(recipientRules, "check_recipient_access inline:{"+strings.Join(accessEntries, ", ")+"}")
		params = append(params, "header_checks = regexp:"+filepath.Join(p.configDir, "header_checks"))
	}
	params = append(params, "smtpd_recipient_restrictions = "+strings.Join(append(recipientRules, "permit"), ", "))

	domains := strings.Join(p.opts.Domains, " ")
	if p.opts.RelayTo != "" {
		relayHost, relayPort, err := net.SplitHostPort(p.opts.RelayTo)
		if err != nil {
			return "", fmt.Errorf("PostfixOptions.RelayTo %q is not host:port: %v", p.opts.RelayTo, err)
		}
		var transports []string
		for _, d := range p.opts.Domains {
			transports = append(transports, fmt.Sprintf("%s=relay:[%s]:%s", d, relayHost, relayPort))
		}
		params = append(params,
			"relay_domains = "+domains,
			"transport_maps = inline:{"+strings.Join(transports, ", ")+"}",
			"relay_recipient_maps = "+userMap(p.opts.Users, "OK"),
		)
	} else {
		params = append(params,
			"relay_domains =",
			"virtual_mailbox_domains = "+domains,
			"virtual_mailbox_base = "+p.mailDir,
			"virtual_mailbox_maps = "+userMap(p.opts.Users, ""),
			"virtual_uid_maps = static:"+strconv.Itoa(uid),
			"virtual_gid_maps = static:"+strconv.Itoa(gid),
			"virtual_minimum_uid = "+strconv.Itoa(uid),
		)
	}
	for name, value := range p.opts.MainCF {
		params = append(params, name+" = "+value)
	}
	return strings.Join(params, "\n") + "\n", nil
}

// catchAllMaildir is the Maildir, relative to the mail folder, that
// receives all mail when PostfixOptions.Users is empty.
const catchAllMaildir = "catch-all/"

// userMap returns the lookup table of existing recipients. Each listed
// user maps to the Maildir named after the address, relative to
// virtual_mailbox_base (the trailing slash selects the Maildir format), or
// to value for relay_recipient_maps. With no users, a static: table
// accepts everyone into one Maildir, and Messages separates the recipients
// by their Delivered-To header.
func userMap(users []string, value string) string {
	if len(users) == 0 {
		if value != "" {
			return ""
		}
		return "static:" + catchAllMaildir
	}
	entries := make([]string, len(users))
	for i, u := range users {
		v := value
		if v == "" {
			v = strings.ToLower(u) + "/"
		}
		entries[i] = u + "=" + v
	}
	return "inline:{" + strings.Join(entries, ", ") + "}"
}

// masterCF returns a master.cf with an smtpd service on addr in place of
// the default smtp/inet service, and every service outside a chroot, so
// that nothing needs copies of system files in the queue folder.
func masterCF(addr string) string {
	return addr + ` inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
`
}

// copySystemConfig copies the regular files of /etc/postfix and its .d
// folders (the dynamic map registry among them) into dir. Symbolic links
// are left out: postfix check warns about links that leave the folder.
func copySystemConfig(dir string) error {
	return copyRegularFiles("/etc/postfix", dir, true)
}

func copyRegularFiles(from, to string, descend bool) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src := filepath.Join(from, e.Name())
		dst := filepath.Join(to, e.Name())
		switch {
		case e.Type().IsRegular():
			data, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				return err
			}
		case e.IsDir() && descend && strings.HasSuffix(e.Name(), ".d"):
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
			if err := copyRegularFiles(src, dst, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// queueFolders lists the queue subdirectories with the owner and mode
// that `postfix check` gives them (post-install create-missing, Postfix
// 3.7 as packaged by Debian 12).
var queueFolders = []struct {
	name     string
	postdrop bool // group postdrop instead of root
	mode     os.FileMode
}{
	{"active", false, 0o700}, {"bounce", false, 0o700}, {"corrupt", false, 0o700},
	{"defer", false, 0o700}, {"deferred", false, 0o700}, {"flush", false, 0o700},
	{"hold", false, 0o700}, {"incoming", false, 0o700}, {"private", false, 0o700},
	{"saved", false, 0o700}, {"trace", false, 0o700},
	{"maildrop", true, 0o730}, {"public", true, 0o710},
}

// createQueue creates the queue subdirectories, owned by the postfix user,
// and the root-owned pid folder, so that the start can skip the checks that
// would create them.
func createQueue(queueDir string, postfixUID int) error {
	postdrop, err := user.LookupGroup("postdrop")
	if err != nil {
		return fmt.Errorf("look up group postdrop: %v: %s", err, installHint)
	}
	postdropGID, err := strconv.Atoi(postdrop.Gid)
	if err != nil {
		return fmt.Errorf("group postdrop has a non-numeric gid %q", postdrop.Gid)
	}
	if err := os.Mkdir(filepath.Join(queueDir, "pid"), 0o755); err != nil {
		return err
	}
	for _, f := range queueFolders {
		path := filepath.Join(queueDir, f.name)
		gid := 0
		if f.postdrop {
			gid = postdropGID
		}
		if err := os.Mkdir(path, f.mode); err != nil {
			return err
		}
		// Chmod after Mkdir, because Mkdir applies the umask.
		if err := os.Chmod(path, f.mode); err != nil {
			return err
		}
		if err := os.Chown(path, postfixUID, gid); err != nil {
			return err
		}
	}
	return nil
}

// postfixCommand runs `postfix -c DIR verb` under the Exec prefix. The
// output goes to a file, not a pipe: the master started by `postfix start`
// and its services inherit the output and would keep a pipe open for
// seconds after the command returned.
func (p *Postfix) postfixCommand(verb string) (string, error) {
	argv := commandLine(p.opts.Exec, lookBinary(p.t, "postfix"), "-c", p.configDir, verb)
	output, err := os.CreateTemp(filepath.Dir(p.configDir), "postfix-"+verb+"-*.out")
	if err != nil {
		return "", fmt.Errorf("create output file for postfix %s: %v", verb, err)
	}
	defer os.Remove(output.Name())
	defer output.Close()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = output
	cmd.Stderr = output
	runErr := cmd.Run()
	out, _ := os.ReadFile(output.Name())
	if runErr != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), runErr, out)
	}
	return string(out), nil
}

// start runs `postfix start`, which returns once the master has bound its
// listeners (Postfix 3.x starts the master with -w), then waits for the
// greeting, or with Exec for the master's listening socket.
func (p *Postfix) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return fmt.Errorf("postfix %s: Start called while it is running", p.addr)
	}
	// postfix-script skips its integrity checks (about 30 postconf runs)
	// once when this file exists. createQueue made what they
	// would create, and a failed start runs them in diagnostics.
	quickStart := filepath.Join(p.queueDir, "quick-start")
	if err := os.WriteFile(quickStart, nil, 0o644); err != nil {
		return fmt.Errorf("create %s: %v", quickStart, err)
	}
	if _, err := p.postfixCommand("start"); err != nil {
		return err
	}
	p.running = true
	if len(p.opts.Exec) > 0 {
		// The address is inside the namespace: check that the master
		// owns the listening socket instead of dialling it.
		_, port, _ := net.SplitHostPort(p.addr)
		pids := p.processes()
		if len(pids) == 0 {
			return fmt.Errorf("postfix %s started but wrote no master.pid", p.addr)
		}
		return waitListening(pids[0], port, 10*time.Second, nil)
	}
	return waitBanner(p.addr, 10*time.Second, nil)
}

// stop runs `postfix stop` and waits for the master and the services it
// had started, because they hold the listening socket until they exit.
func (p *Postfix) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return nil
	}
	pids := p.processes()
	if _, err := p.postfixCommand("stop"); err != nil {
		return err
	}
	p.running = false
	return waitGone(pids, 10*time.Second)
}

// processes returns the PIDs of the master and its children.
// PIDs returns the master's process ID and those of its running services,
// so that benchmarks can read their CPU time and memory.
func (p *Postfix) PIDs() []int { return p.processes() }

func (p *Postfix) processes() []int {
	data, err := os.ReadFile(filepath.Join(p.queueDir, "pid", "master.pid"))
	if err != nil {
		return nil
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil
	}
	return append([]int{master}, childPIDs(master)...)
}

// cleanup stops the instance at the end of the test. When the graceful
// stop fails, it signals the remaining processes itself.
func (p *Postfix) cleanup() {
	pids := p.processes()
	if err := p.stop(); err != nil {
		p.t.Errorf("stop postfix %s: %v", p.addr, err)
		for _, pid := range pids {
			if processAlive(pid) {
				syscallKill(pid)
			}
		}
	}
}

// portTaken reports whether the last start failed because the address was
// in use.
func (p *Postfix) portTaken() bool {
	return strings.Contains(p.Log(), "Address already in use")
}

// diagnostics returns the output of `postfix check` and the maillog.
func (p *Postfix) diagnostics() string {
	check := "postfix check: ok"
	if _, err := p.postfixCommand("check"); err != nil {
		check = err.Error()
	}
	return check + "\nmaillog " + p.logPath + ":\n" + p.Log()
}

// Flush makes Postfix retry deferred mail now (`postfix flush`), rather
// than after its backoff of at least 300 s (minimal_backoff_time).
func (p *Postfix) Flush() {
	p.t.Helper()
	if _, err := p.postfixCommand("flush"); err != nil {
		p.t.Fatalf("%v\n%s", err, p.diagnostics())
	}
}

// Queued returns the number of messages in Postfix's queue that are not
// yet delivered: the incoming, active, deferred and hold queues.
func (p *Postfix) Queued() int {
	p.t.Helper()
	count := 0
	for _, queue := range []string{"incoming", "active", "deferred", "hold"} {
		err := filepath.WalkDir(filepath.Join(p.queueDir, queue), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				count++
			}
			return nil
		})
		if err != nil {
			p.t.Fatalf("count the %s queue of postfix %s: %v", queue, p.addr, err)
		}
	}
	return count
}
