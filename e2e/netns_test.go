package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/internal/netns"
	"github.com/lambgate/lambgate/internal/testenv"
)

// The three-namespace network of the appliance:
//
//	internet  192.0.2.1 (client, wan gateway); on lo: 203.0.113.53 (DNS),
//	          203.0.113.25 (mx.example.org, the sender's MX)
//	appliance wan 192.0.2.10 (inbound), 192.0.2.20 (bounce); lan 198.51.100.10
//	internal  198.51.100.25 (Postfix, the internal mail server)
const (
	clientAddr   = "192.0.2.1"
	inboundAddr  = "192.0.2.10"
	bounceAddr   = "192.0.2.20"
	lanAddr      = "198.51.100.10"
	postfixAddr  = "198.51.100.25"
	dnsAddr      = "203.0.113.53"
	senderMXAddr = "203.0.113.25"
)

// waitLimit bounds every wait for a delivery the test has caused. It
// measures nothing.
const waitLimit = 30 * time.Second

type threeNamespaces struct {
	internet, appliance, internal *netns.NS
}

func newThreeNamespaces(t *testing.T) *threeNamespaces {
	n := &threeNamespaces{
		internet:  netns.New(t, "inet"),
		appliance: netns.New(t, "app"),
		internal:  netns.New(t, "int"),
	}
	netns.Veth(t, n.appliance, "wan", n.internet, "eth0")
	netns.Veth(t, n.appliance, "lan", n.internal, "eth0")
	n.internet.AddAddr("eth0", clientAddr+"/24")
	n.internet.AddAddr("lo", dnsAddr+"/32", senderMXAddr+"/32")
	n.internal.AddAddr("eth0", postfixAddr+"/24")
	// The peers reach the appliance's wan and lan addresses on-link, so
	// they need no routes of their own.
	return n
}

// applianceSettings is the gateway's whole configuration: wan carries
// inbound and bounce, lan carries internal and admin, and unknown
// recipients of example.test are bounced from the bounce role.
func applianceSettings() *settings.Settings {
	s := settings.Default()
	s.Inbound.Listen = []string{inboundAddr + ":25"}
	s.Admin.Listen = lanAddr + ":8443"
	s.Recipients.Validation = settings.ValidateStatic
	s.Recipients.Static = []string{"user@example.test"}
	s.Recipients.Unknown = settings.UnknownBounce
	s.Internal.Server = postfixAddr + ":25"
	s.Internal.SourceAddress = lanAddr
	s.Bounce.SourceAddress = bounceAddr
	s.Bounce.Interface = "wan"
	s.Bounce.Resolver = dnsAddr + ":53"
	// A first attempt can fail while a fresh namespace still resolves its
	// neighbours; retry within the test's wait instead of in 5 minutes.
	s.Queue.MinBackoff = settings.Duration(time.Second)
	s.Queue.MaxBackoff = settings.Duration(2 * time.Second)
	s.Interfaces = []settings.Interface{
		{
			Name:          "wan",
			Roles:         []string{settings.RoleInbound, settings.RoleBounce},
			Addresses:     []string{inboundAddr + "/24", bounceAddr + "/24"},
			BounceAddress: bounceAddr,
			Gateway:       clientAddr,
		},
		{
			Name:      "lan",
			Roles:     []string{settings.RoleInternal, settings.RoleAdmin},
			Addresses: []string{lanAddr + "/24"},
		},
	}
	return s
}

// startDNSIn serves the records of example.org, the sender's domain, on
// dnsAddr:53 inside ns: its MX, the MX's address, and an SPF record that
// passes the client.
func startDNSIn(t *testing.T, ns *netns.NS) {
	server := testenv.StartDNSListeners(t, ns.ListenPacket("udp", dnsAddr+":53"), ns.Listen("tcp", dnsAddr+":53"))
	server.SetMX("example.org", testenv.MX{Preference: 10, Host: "mx.example.org"})
	server.SetA("mx.example.org", senderMXAddr)
	server.SetTXT("example.org", "v=spf1 ip4:"+clientAddr+" -all")
}

// startGatewayIn starts the gateway on s inside the appliance namespace.
// The gateway applies the interface settings with netcfg itself, so the
// test leaves the appliance's links unconfigured.
func startGatewayIn(t *testing.T, n *threeNamespaces, s *settings.Settings) *testenv.Gateway {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("appliance settings invalid: %v", err)
	}
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	return testenv.StartGatewayExec(t, n.appliance.Exec(), testenv.BuildGateway(t), dataDir, string(data))
}

func TestNamespacesRelayAndBounceByRole(t *testing.T) {
	n := newThreeNamespaces(t)
	startDNSIn(t, n.internet)
	mx := testenv.StartSinkWith(t, testenv.SinkOptions{
		Addr: senderMXAddr + ":25", Exec: n.internet.Exec(), Hostname: "mx.example.org",
	})
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		Addr:    postfixAddr + ":25",
		Exec:    n.internal.Exec(),
		Domains: []string{"example.test"},
		Users:   []string{"user@example.test"},
	})
	gw := startGatewayIn(t, n, applianceSettings())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s\npostfix log:\n%s", gw.Log(), pf.Log())
		}
	})

	wan := n.appliance.Capture("wan", "tcp")
	lan := n.appliance.Capture("lan", "tcp")

	// Mail for a known recipient is relayed over the lan from the internal
	// role's address.
	out, code := testenv.SwaksExec(t, n.internet.Exec(), "--server", inboundAddr+":25",
		"--from", "sender@example.org", "--to", "user@example.test", "--helo", "client.example.org")
	if code != 0 {
		t.Fatalf("swaks to a known recipient: exit code %d:\n%s", code, out)
	}
	msgs := pf.WaitMessages(t, "user@example.test", 1, waitLimit)
	if got := msgs[0].Header.Get("Received"); !strings.Contains(got, "["+lanAddr+"]") {
		t.Errorf("Postfix received the message from elsewhere than %s: Received: %s", lanAddr, got)
	}

	// Mail for an unknown recipient is accepted under the bounce policy,
	// and its DSN leaves from the bounce role towards the sender's MX.
	out, code = testenv.SwaksExec(t, n.internet.Exec(), "--server", inboundAddr+":25",
		"--from", "sender@example.org", "--to", "nobody@example.test", "--helo", "client.example.org")
	if code != 0 {
		t.Fatalf("swaks to an unknown recipient: exit code %d:\n%s", code, out)
	}
	dsn := mx.WaitMessages(t, 1, waitLimit)[0]
	if dsn.ClientAddr != bounceAddr {
		t.Errorf("DSN came from %s, want the bounce address %s", dsn.ClientAddr, bounceAddr)
	}
	if dsn.HELO != "bounce.example.test" {
		t.Errorf("DSN HELO = %q, want bounce.example.test", dsn.HELO)
	}
	if dsn.MailFrom != "" {
		t.Errorf("DSN envelope sender = %q, want the null sender", dsn.MailFrom)
	}
	if len(dsn.Rcpts) != 1 || dsn.Rcpts[0] != "sender@example.org" {
		t.Errorf("DSN recipients = %q, want [sender@example.org]", dsn.Rcpts)
	}
	for _, want := range []string{"report-type=delivery-status", "Final-Recipient: rfc822; nobody@example.test"} {
		if !strings.Contains(string(dsn.Data), want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn.Data)
		}
	}

	if _, ok := wan.WaitFor(waitLimit, "IP "+bounceAddr+".", "> "+senderMXAddr+".25: Flags [S]"); !ok {
		t.Errorf("no SYN from the bounce address to the sender's MX on wan")
	}
	for _, l := range wan.Stop() {
		if strings.Contains(l, lanAddr) {
			t.Errorf("lan address on wan: %s", l)
		}
	}
	for _, l := range lan.Stop() {
		if strings.Contains(l, bounceAddr) || strings.Contains(l, inboundAddr) {
			t.Errorf("wan address on lan: %s", l)
		}
	}
}

// The bounce-alone layout adds a bnc link to a router namespace, the bounce
// role's own provider, which forwards to the internet:
//
//	appliance bnc 203.0.113.150/26  <->  router 203.0.113.129/26
//	router        203.0.113.193/26  <->  internet 203.0.113.194/26
const (
	bounceAloneAddr = "203.0.113.150"
	routerBncAddr   = "203.0.113.129"
	routerInetAddr  = "203.0.113.193"
	internetISPAddr = "203.0.113.194"
)

func TestNamespacesBounceAloneUsesOwnProvider(t *testing.T) {
	n := newThreeNamespaces(t)
	router := netns.New(t, "isp")
	netns.Veth(t, n.appliance, "bnc", router, "eth0")
	netns.Veth(t, router, "eth1", n.internet, "eth1")
	router.AddAddr("eth0", routerBncAddr+"/26")
	router.AddAddr("eth1", routerInetAddr+"/26")
	router.SetSysctl("net.ipv4.ip_forward", "1")
	router.Run("ip", "route", "add", "default", "via", internetISPAddr)
	n.internet.AddAddr("eth1", internetISPAddr+"/26")
	n.internet.Run("ip", "route", "add", "203.0.113.128/26", "via", routerInetAddr)

	startDNSIn(t, n.internet)
	mx := testenv.StartSinkWith(t, testenv.SinkOptions{
		Addr: senderMXAddr + ":25", Exec: n.internet.Exec(), Hostname: "mx.example.org",
	})
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		Addr:    postfixAddr + ":25",
		Exec:    n.internal.Exec(),
		Domains: []string{"example.test"},
		Users:   []string{"user@example.test"},
	})

	s := applianceSettings()
	s.Interfaces[0].Roles = []string{settings.RoleInbound}
	s.Interfaces[0].Addresses = []string{inboundAddr + "/24"}
	s.Interfaces[0].BounceAddress = ""
	s.Interfaces = append(s.Interfaces, settings.Interface{
		Name:      "bnc",
		Roles:     []string{settings.RoleBounce},
		Addresses: []string{bounceAloneAddr + "/26"},
		Gateway:   routerBncAddr,
	})
	s.Bounce.SourceAddress = bounceAloneAddr
	s.Bounce.Interface = "bnc"
	gw := startGatewayIn(t, n, s)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s\npostfix log:\n%s", gw.Log(), pf.Log())
		}
	})

	wan := n.appliance.Capture("wan", "tcp")
	bnc := n.appliance.Capture("bnc", "tcp")
	out, code := testenv.SwaksExec(t, n.internet.Exec(), "--server", inboundAddr+":25",
		"--from", "sender@example.org", "--to", "nobody@example.test", "--helo", "client.example.org")
	if code != 0 {
		t.Fatalf("swaks to an unknown recipient: exit code %d:\n%s", code, out)
	}

	dsn := mx.WaitMessages(t, 1, waitLimit)[0]
	if dsn.ClientAddr != bounceAloneAddr {
		t.Errorf("DSN came from %s, want the bounce address %s", dsn.ClientAddr, bounceAloneAddr)
	}
	if _, ok := bnc.WaitFor(waitLimit, "IP "+bounceAloneAddr+".", "> "+senderMXAddr+".25: Flags [S]"); !ok {
		t.Errorf("no SYN from the bounce address to the sender's MX on bnc")
	}
	bnc.Stop()
	for _, l := range wan.Stop() {
		if strings.Contains(l, bounceAloneAddr) {
			t.Errorf("bounce traffic left through wan instead of the bounce provider: %s", l)
		}
	}
}

func TestNamespacesMissingBounceAddressSendsNothing(t *testing.T) {
	n := newThreeNamespaces(t)
	startDNSIn(t, n.internet)
	mx := testenv.StartSinkWith(t, testenv.SinkOptions{
		Addr: senderMXAddr + ":25", Exec: n.internet.Exec(), Hostname: "mx.example.org",
	})
	testenv.StartPostfix(t, testenv.PostfixOptions{
		Addr:    postfixAddr + ":25",
		Exec:    n.internal.Exec(),
		Domains: []string{"example.test"},
		Users:   []string{"user@example.test"},
	})
	gw := startGatewayIn(t, n, applianceSettings())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", gw.Log())
		}
	})

	// The bounce address disappears while the gateway runs.
	n.appliance.Run("ip", "addr", "del", bounceAddr+"/24", "dev", "wan")
	wan := n.appliance.Capture("wan", "tcp port 25")
	lan := n.appliance.Capture("lan", "tcp port 25")

	out, code := testenv.SwaksExec(t, n.internet.Exec(), "--server", inboundAddr+":25",
		"--from", "sender@example.org", "--to", "nobody@example.test", "--helo", "client.example.org")
	if code != 0 {
		t.Fatalf("swaks to an unknown recipient: exit code %d:\n%s", code, out)
	}

	// The DSN attempt must fail on its bind, naming the address, and be
	// deferred rather than sent from the inbound or lan address.
	waitFor := func(want string) {
		deadline := time.Now().Add(waitLimit)
		for !strings.Contains(gw.Log(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("gateway log never showed %q", want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("kind=bounce")
	waitFor(bounceAddr)
	waitFor("status=deferred")

	for _, l := range append(wan.Stop(), lan.Stop()...) {
		if strings.Contains(l, senderMXAddr+".25") {
			t.Errorf("a connection to the sender's MX left the appliance: %s", l)
		}
	}
	if got := len(mx.Messages()); got != 0 {
		t.Errorf("the sender's MX received %d messages without a bounce address", got)
	}
}
