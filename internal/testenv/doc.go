// Package testenv runs real mail components for the gateway's end-to-end
// tests, benchmarks and network-namespace tests. It provides a private
// Postfix instance as the internal mail server, an in-process DNS server,
// Debian's smtp-sink as a sender's MX, the swaks and smtp-source clients,
// and the lambgate binary itself.
//
// Every Start function takes a testing.TB, keeps its state in t.TempDir()
// folders, picks free loopback ports unless it is given an address, and
// registers a cleanup that stops what it started even when the test fails.
// A missing binary fails the test with the install script to run; it never
// skips, so a machine without the components cannot pass the suite.
//
// A typical end-to-end test:
//
//	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Users: []string{"alice@example.test"}})
//	gw := testenv.StartGateway(t, testenv.BuildGateway(t), t.TempDir(), settingsTOML)
//	out, code := testenv.Swaks(t, "--server", gw.Addr(), "--to", "alice@example.test")
//	msgs := pf.WaitMessages(t, "alice@example.test", 1, 10*time.Second)
//
// where settingsTOML names a FreeAddr as the inbound listen address and
// pf.Addr() as the internal server.
//
// Postfix and smtp-sink need root: the tests run as root on the build
// machines and in CI. The package never touches /etc/postfix beyond reading
// it, and never starts the system's Postfix instance.
package testenv
