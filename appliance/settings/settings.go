// Package settings owns the gateway's settings file: its schema, defaults,
// validation and atomic writes. It never opens sockets or starts anything;
// the gateway reads a validated Settings value and acts on it.
package settings

import (
	"time"
)

// FileName is the settings file inside the data directory.
const FileName = "lambgate.toml"

// Settings is the whole configuration of one appliance.
type Settings struct {
	// Hostname is the appliance's public name: the SMTP banner, the
	// Received headers and the default HELO of the internal role.
	Hostname string `toml:"hostname"`

	Inbound    Inbound    `toml:"inbound"`
	Domains    Domains    `toml:"domains"`
	Recipients Recipients `toml:"recipients"`
	Internal   Internal   `toml:"internal"`
	Bounce     Bounce     `toml:"bounce"`
	Queue      Queue      `toml:"queue"`
	Admin      Admin      `toml:"admin"`
	Log        Log        `toml:"log"`

	// Interfaces binds network interfaces to their roles (interfaces.go).
	// Empty on a development machine: nothing is configured by netlink.
	Interfaces []Interface `toml:"interface"`
}

// Inbound is the SMTP listener for internet mail and its limits.
type Inbound struct {
	// Listen holds host:port addresses of the inbound role.
	Listen []string `toml:"listen"`
	// TLSCert and TLSKey are PEM files; when both are empty a self-signed
	// certificate is generated in the data directory on first start.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`

	MaxConnections      int `toml:"max_connections"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// MaxMessageBytes is the SIZE limit advertised in EHLO.
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	MaxRecipients   int   `toml:"max_recipients"`
	// MaxLineLength counts the CRLF; RFC 5321 sets 1000 for text lines.
	MaxLineLength int `toml:"max_line_length"`
	// MaxErrors is how many 4xx and 5xx replies a client may provoke before
	// the connection is closed with 421. Replies about the gateway's own
	// state (421, 451, 452) do not count.
	MaxErrors int `toml:"max_errors"`
	// MaxHops is the Received header count at which a message is rejected
	// as a mail loop (554 5.4.6).
	MaxHops int `toml:"max_hops"`
	// CommandTimeout bounds the wait for each command (RFC 5321 section
	// 4.5.3.2 requires at least 5 minutes).
	CommandTimeout Duration `toml:"command_timeout"`
	// DataTimeout bounds the whole DATA or BDAT transfer (RFC 5321
	// 4.5.3.2 gives 3 minutes per block and 10 for the final dot).
	DataTimeout Duration `toml:"data_timeout"`
	// SPF checks the envelope sender at MAIL FROM and records the result,
	// which the bounce sender needs for its safeguard.
	SPF bool `toml:"spf"`
}

// Domains lists the relay domains: the only domains mail is accepted for.
type Domains struct {
	Relay []string `toml:"relay"`
}

// Recipient validation modes.
const (
	ValidateAcceptAll = "accept-all"
	ValidateStatic    = "static"
	ValidateFile      = "file"
	ValidateCallout   = "callout"
)

// Unknown-recipient policies.
const (
	UnknownReject  = "reject"
	UnknownBounce  = "bounce"
	UnknownDiscard = "discard"
)

// Recipients decides which recipients of the relay domains exist.
type Recipients struct {
	// Validation is one of accept-all, static, file or callout.
	Validation string `toml:"validation"`
	// Static holds full addresses, or "@domain" to accept a whole domain.
	Static []string `toml:"static"`
	// File is a file of addresses, one a line, "#" comments; relative
	// paths are inside the data directory. It is read again on change.
	File string `toml:"file"`
	// CalloutPositiveTTL and CalloutNegativeTTL are how long RCPT probe results are cached.
	CalloutPositiveTTL Duration `toml:"callout_positive_ttl"`
	CalloutNegativeTTL Duration `toml:"callout_negative_ttl"`
	// Unknown is the policy for a recipient that fails validation:
	// reject (550 5.1.1 at RCPT), bounce (accept, then a DSN from the
	// bounce role) or discard.
	Unknown string `toml:"unknown"`
}

// Internal is the internal mail server that accepted mail is relayed to.
type Internal struct {
	// Server is host:port; empty delivers to the Maildir under the data
	// directory (the embedded default for trying Lambgate out).
	Server string `toml:"server"`
	// TLS requires STARTTLS to the internal server.
	TLS bool `toml:"tls"`
	// TLSVerify checks the internal server's certificate.
	TLSVerify bool `toml:"tls_verify"`
	// SourceAddress is the internal role's address that relay
	// connections are bound to; empty lets the kernel choose.
	SourceAddress string `toml:"source_address"`
	// HELO defaults to Hostname.
	HELO           string   `toml:"helo"`
	MaxConnections int      `toml:"max_connections"`
	Timeout        Duration `toml:"timeout"`
}

// Bounce is the identity and safeguards of the bounce role.
type Bounce struct {
	// SourceAddress is the address every DSN leaves from.
	SourceAddress string `toml:"source_address"`
	// Interface, when set, binds bounce sockets to that device too
	// (SO_BINDTODEVICE).
	Interface string `toml:"interface"`
	// HELO is the bounce role's own name; its A, PTR and SPF records
	// should point at SourceAddress.
	HELO string `toml:"helo"`
	// Resolver is a host:port DNS server for MX lookups and inbound SPF
	// checks; empty uses the system resolver.
	Resolver string `toml:"resolver"`
	// MXPort is the port DSNs are sent to (25 on the internet).
	MXPort int `toml:"mx_port"`
	// AllowInternalMX lets DSNs go to MX hosts on loopback, private and
	// link-local addresses. Off, a forged sender domain cannot aim DSNs at
	// hosts inside the network; tests on one machine turn it on.
	AllowInternalMX bool `toml:"allow_internal_mx"`
	// RequireSPFPass sends a DSN only if the original sender's SPF passed
	// for the client that sent the message.
	RequireSPFPass bool `toml:"require_spf_pass"`
	// RatePerDomain caps DSNs to one destination domain per hour.
	RatePerDomain int `toml:"rate_per_domain"`
	// Lifetime is how long a DSN is retried before it is logged and
	// dropped (never bounced again).
	Lifetime Duration `toml:"lifetime"`
}

// Queue is the retry schedule of relayed mail.
type Queue struct {
	// MinBackoff is the first retry delay; each retry doubles it up to
	// MaxBackoff.
	MinBackoff Duration `toml:"min_backoff"`
	MaxBackoff Duration `toml:"max_backoff"`
	// Lifetime is how long a message is retried before it expires and
	// its sender gets a DSN.
	Lifetime Duration `toml:"lifetime"`
	// Workers is the number of concurrent deliveries.
	Workers int `toml:"workers"`
}

// Admin is the web setup and metrics listener.
type Admin struct {
	Listen string `toml:"listen"`
}

// Log sets the log level: debug, info, warn or error.
type Log struct {
	Level string `toml:"level"`
}

// Default returns the settings a first start writes: the embedded default
// that accepts mail for example.test on loopback and delivers to a Maildir.
func Default() *Settings {
	return &Settings{
		Hostname: "lambgate.example.test",
		Inbound: Inbound{
			Listen:              []string{"127.0.0.1:2525"},
			MaxConnections:      500,
			MaxConnectionsPerIP: 20,
			MaxMessageBytes:     25 << 20,
			MaxRecipients:       100,
			MaxLineLength:       1000,
			MaxErrors:           10,
			MaxHops:             50,
			CommandTimeout:      Duration(5 * time.Minute),
			DataTimeout:         Duration(10 * time.Minute),
			SPF:                 true,
		},
		Domains: Domains{Relay: []string{"example.test"}},
		Recipients: Recipients{
			Validation:         ValidateAcceptAll,
			CalloutPositiveTTL: Duration(24 * time.Hour),
			CalloutNegativeTTL: Duration(10 * time.Minute),
			Unknown:            UnknownReject,
		},
		Internal: Internal{
			MaxConnections: 10,
			Timeout:        Duration(5 * time.Minute),
		},
		Bounce: Bounce{
			HELO:           "bounce.example.test",
			MXPort:         25,
			RequireSPFPass: true,
			RatePerDomain:  60,
			Lifetime:       Duration(5 * 24 * time.Hour),
		},
		Queue: Queue{
			MinBackoff: Duration(5 * time.Minute),
			MaxBackoff: Duration(4000 * time.Second),
			Lifetime:   Duration(5 * 24 * time.Hour),
			Workers:    20,
		},
		Admin: Admin{Listen: "127.0.0.1:8443"},
		Log:   Log{Level: "info"},
	}
}
