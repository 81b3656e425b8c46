// Package relay delivers accepted mail to the internal mail server over SMTP.
// It owns the client side of that conversation: the bound and pooled
// connections, EHLO and STARTTLS, PIPELINING, the MAIL and RCPT parameters,
// dot-stuffing, and the mapping of replies to per-recipient results. It also
// sends the RCPT probes of recipient callouts.
//
// It never retries, reorders or bounces a message, because the queue decides
// that from the results. It never falls back to another source address, or
// to plaintext when TLS is required. It connects to no host other than the
// configured internal server.
package relay

import (
	"crypto/x509"
	"fmt"
	"net"
	"time"
)

// Defaults applied by New to zero fields of Config.
const (
	DefaultMaxConnections = 10
	DefaultTimeout        = 5 * time.Minute
	DefaultIdleTimeout    = 30 * time.Second
	DefaultMaxMessages    = 100
)

// Timeouts of RFC 5321 section 4.5.3.2 for the DATA phase. They cap
// Config.Timeout, so a stalled transfer is abandoned no later than a
// conforming client would abandon it.
const (
	dataInitTimeout  = 2 * time.Minute  // DATA command to the 354 reply
	dataBlockTimeout = 3 * time.Minute  // each write of message data
	dataTermTimeout  = 10 * time.Minute // final "." to the reply
)

// Config is the connection to the internal mail server. The gateway fills it
// from the [internal] section of the settings.
type Config struct {
	// Server is the internal mail server as host:port.
	Server string
	// HELO is the name sent in EHLO or HELO; the gateway passes the
	// settings' HELO, or the hostname when that is empty.
	HELO string

	// TLS requires STARTTLS: a server that does not offer it is a
	// temporary failure, never a plaintext fallback.
	TLS bool
	// TLSVerify checks the server certificate against RootCAs and the
	// host name of Server.
	TLSVerify bool
	// RootCAs verifies the server certificate when TLSVerify is set;
	// nil uses the system roots.
	RootCAs *x509.CertPool

	// SourceAddress is the local IP address every connection is bound to;
	// empty lets the kernel choose.
	SourceAddress string
	// Device, when set, binds every connection to that network interface
	// too (SO_BINDTODEVICE, Linux only).
	// TODO: settings.Internal has no interface field yet, so the gateway
	// cannot set Device for the internal role from the settings file.
	Device string

	// MaxConnections caps the connections open at once, idle ones
	// included. Deliveries beyond it wait for a free connection until
	// their context ends. Default 10.
	MaxConnections int
	// Timeout bounds every read and write, and the connection setup.
	// Default 5 minutes.
	Timeout time.Duration
	// IdleTimeout closes a pooled connection that was not used for this
	// long. Default 30 seconds.
	IdleTimeout time.Duration
	// MaxMessages is how many transactions one connection carries before
	// it is closed. Default 100.
	MaxMessages int
}

// withDefaults returns c with zero fields set to their defaults, or an error
// naming the invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Server == "" {
		return c, fmt.Errorf("relay: internal server address is empty; " +
			"set internal.server to host:port, or leave it empty to use the Maildir")
	}
	if _, _, err := net.SplitHostPort(c.Server); err != nil {
		return c, fmt.Errorf("relay: invalid internal server address %q: %v; "+
			"use host:port, such as mail.example.test:25", c.Server, err)
	}
	if c.SourceAddress != "" && net.ParseIP(c.SourceAddress) == nil {
		return c, fmt.Errorf("relay: source address %q is not an IP address; "+
			"set it to an address of the internal interface", c.SourceAddress)
	}
	if c.HELO == "" {
		return c, fmt.Errorf("relay: HELO name is empty; set internal.helo or the hostname")
	}

	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	return c, nil
}
