package smtpd

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

// Config is the server's reloadable configuration. Every limit must be
// set: go-smtp's defaults are unlimited, and an internet-facing listener
// without limits can be held open or filled by any client.
type Config struct {
	// Hostname is the name in the banner and in Received headers.
	Hostname string

	// MaxConnections and MaxConnectionsPerIP cap open connections in
	// total and per client address; a client over a cap gets 421.
	MaxConnections      int
	MaxConnectionsPerIP int
	// MaxMessageBytes is the SIZE limit, in bytes of message content.
	MaxMessageBytes int64
	// MaxRecipients caps RCPT commands per message (452 4.5.3 beyond).
	MaxRecipients int
	// MaxLineLength is the longest command or text line in bytes, CRLF
	// included.
	MaxLineLength int
	// MaxErrors is how many error replies a client may receive before the
	// connection is closed: the reply that reaches it becomes 421 4.7.0.
	// Every 4xx and 5xx reply counts, go-smtp's own included, except 421,
	// 451 and 452, which report the gateway's condition (see
	// countsAsError).
	MaxErrors int
	// MaxHops is the Received header count at which a message is rejected
	// as a mail loop (554 5.4.6).
	MaxHops int
	// CommandTimeout bounds the wait for each command and each reply.
	CommandTimeout time.Duration
	// DataTimeout bounds a whole DATA or BDAT transfer.
	DataTimeout time.Duration
	// SPF checks the envelope sender at MAIL FROM and records the result.
	SPF bool

	// TLS enables STARTTLS; nil disables it. See TLSConfig.
	TLS *tls.Config
	// Postmaster is the address that a bare "RCPT TO:<Postmaster>" (RFC
	// 5321 section 4.1.1.3) is delivered to; it must be in a relay
	// domain. Empty rejects the bare form like any address without a
	// domain.
	Postmaster string
}

// ConfigFrom builds a Config from the settings. tlsConfig comes from
// TLSConfig.
func ConfigFrom(s *settings.Settings, tlsConfig *tls.Config) Config {
	in := s.Inbound
	cfg := Config{
		Hostname:            s.Hostname,
		MaxConnections:      in.MaxConnections,
		MaxConnectionsPerIP: in.MaxConnectionsPerIP,
		MaxMessageBytes:     in.MaxMessageBytes,
		MaxRecipients:       in.MaxRecipients,
		MaxLineLength:       in.MaxLineLength,
		MaxErrors:           in.MaxErrors,
		MaxHops:             in.MaxHops,
		CommandTimeout:      time.Duration(in.CommandTimeout),
		DataTimeout:         time.Duration(in.DataTimeout),
		SPF:                 in.SPF,
		TLS:                 tlsConfig,
	}
	if len(s.Domains.Relay) > 0 {
		cfg.Postmaster = "postmaster@" + s.Domains.Relay[0]
	}
	return cfg
}

// validate reports the first missing limit with the setting to fix.
func (c *Config) validate() error {
	if c.Hostname == "" {
		return fmt.Errorf("smtpd: hostname is empty: set hostname in the settings")
	}
	positive := []struct {
		name  string
		value int64
	}{
		{"max_connections", int64(c.MaxConnections)},
		{"max_connections_per_ip", int64(c.MaxConnectionsPerIP)},
		{"max_message_bytes", c.MaxMessageBytes},
		{"max_recipients", int64(c.MaxRecipients)},
		{"max_errors", int64(c.MaxErrors)},
		{"max_hops", int64(c.MaxHops)},
		{"command_timeout", int64(c.CommandTimeout)},
		{"data_timeout", int64(c.DataTimeout)},
	}
	for _, p := range positive {
		if p.value <= 0 {
			return fmt.Errorf("smtpd: [inbound] %s is %d: set it to a positive value", p.name, p.value)
		}
	}
	// RFC 5321 section 4.5.3.1.6 requires text lines of 1000 octets.
	if c.MaxLineLength < 1000 {
		return fmt.Errorf("smtpd: [inbound] max_line_length is %d: set it to at least 1000 (RFC 5321)",
			c.MaxLineLength)
	}
	if c.MaxMessageBytes > 1<<32-1 {
		// go-smtp v0.26.0 parses SIZE and BDAT sizes as 32-bit values.
		return fmt.Errorf("smtpd: [inbound] max_message_bytes is %d: set it below 4 GiB", c.MaxMessageBytes)
	}
	return nil
}
