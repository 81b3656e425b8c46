package bounce

import (
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

// Defaults for the timeouts that the settings file does not expose.
const (
	// DefaultConnectTimeout bounds one TCP connect to one MX address.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultCommandTimeout bounds the wait for each SMTP reply. RFC 5321
	// section 4.5.3.2 recommends at least 5 minutes.
	DefaultCommandTimeout = 5 * time.Minute
	// DefaultDNSTimeout bounds one DNS exchange with the configured resolver.
	DefaultDNSTimeout = 10 * time.Second
	// MaxHeaderBytes caps the original header section quoted in a DSN.
	MaxHeaderBytes = 64 << 10
)

// Config is the identity and safeguards of the bounce role.
type Config struct {
	// Hostname is the appliance's public name, used in the DSN text and as
	// the HELO name when HELO is empty.
	Hostname string
	// HELO is the bounce role's name: the EHLO argument, the Reporting-MTA,
	// and the domain of the DSN's From and Message-ID.
	HELO string
	// SourceAddress is the IP address every DSN connection is bound to;
	// empty lets the kernel choose, which is only right on a test machine.
	SourceAddress string
	// Interface, when set, binds DSN sockets to that network device
	// (SO_BINDTODEVICE, Linux only) as well as to SourceAddress.
	Interface string
	// Resolver is a host:port DNS server for MX, A and AAAA lookups; empty
	// uses the system resolver.
	Resolver string
	// MXPort is the TCP port DSNs are sent to, 25 on the internet.
	MXPort int
	// AllowInternalMX lets DSNs go to MX addresses in loopback, private
	// (RFC 1918, RFC 4193), link-local and unspecified ranges. It is off
	// on the appliance, so that a sender domain cannot point DSNs at hosts
	// inside the network; tests on loopback turn it on.
	AllowInternalMX bool
	// RequireSPFPass sends a DSN only when the original sender's SPF result
	// for the connecting client was "pass".
	RequireSPFPass bool
	// RatePerDomain is the maximum number of DSNs per hour to one sender
	// domain; it must be positive.
	RatePerDomain int

	// ConnectTimeout, CommandTimeout and DNSTimeout default to the
	// constants above when zero.
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	DNSTimeout     time.Duration
}

// ConfigFromSettings returns the bounce role's configuration from the
// settings. The lifetime of queued DSNs (settings.Bounce.Lifetime) is
// enforced by the queue, not here.
func ConfigFromSettings(s *settings.Settings) Config {
	b := s.Bounce
	return Config{
		Hostname:        s.Hostname,
		HELO:            b.HELO,
		SourceAddress:   b.SourceAddress,
		Interface:       b.Interface,
		Resolver:        b.Resolver,
		MXPort:          b.MXPort,
		AllowInternalMX: b.AllowInternalMX,
		RequireSPFPass:  b.RequireSPFPass,
		RatePerDomain:   b.RatePerDomain,
	}
}

func (c Config) helo() string {
	if c.HELO != "" {
		return c.HELO
	}
	return c.Hostname
}

func (c Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	return DefaultConnectTimeout
}

func (c Config) commandTimeout() time.Duration {
	if c.CommandTimeout > 0 {
		return c.CommandTimeout
	}
	return DefaultCommandTimeout
}

func (c Config) dnsTimeout() time.Duration {
	if c.DNSTimeout > 0 {
		return c.DNSTimeout
	}
	return DefaultDNSTimeout
}
