//go:build wasip1

// Command spf is the bundled SPF plugin (RFC 7208). At MAIL FROM it
// checks the envelope sender's domain (the HELO name for the null sender)
// for the client address, or takes the gateway's own result when the
// gateway checked already. It acts on the result as the settings specify.
// In the headers phase it adds a Received-SPF header. Results are cached
// in the key-value store, so the second phase costs no lookups.
package main

import (
	"net/netip"
	"strings"
	"time"

	"github.com/lambgate/lambgate/sdk/go/lambgate"
)

func main() {}

func init() {
	lambgate.OnMail(onMail)
	lambgate.OnHeaders(onHeaders)
}

// identity returns the checked identity (RFC 7208 section 2.4) and its
// domain, or "" when there is nothing to check.
func identity() (string, string) {
	sender, _ := lambgate.MailFrom()
	if sender == "" {
		helo, _ := lambgate.HELO()
		sender = "postmaster@" + helo
	}
	at := strings.LastIndexByte(sender, '@')
	if at < 0 || at == len(sender)-1 {
		return sender, ""
	}
	return sender, strings.ToLower(strings.TrimSuffix(sender[at+1:], "."))
}

// result returns the SPF result for this client and sender, from the
// gateway, the cache, or a fresh check.
func result() string {
	if r := lambgate.SPF(); r != "" {
		return r
	}
	sender, domain := identity()
	if domain == "" {
		return resultNone
	}
	addr := lambgate.ClientAddr()
	key := "spf:" + addr + ":" + strings.ToLower(sender)
	if cached, ok := lambgate.KVGet(key); ok {
		return string(cached)
	}

	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return resultNone
	}
	helo, _ := lambgate.HELO()
	e := &evaluation{ip: ip, sender: sender, helo: helo}
	r := e.checkHost(domain)
	ttl := time.Duration(lambgate.SettingInt("cache_seconds", 600)) * time.Second
	if r == resultTemperror {
		ttl = time.Minute // retry soon: the sender's DNS may recover
	}
	lambgate.KVSet(key, []byte(r), ttl)
	return r
}

// actionFor returns the configured action for a result: reject,
// tempfail, quarantine, tag or continue.
func actionFor(r string) string {
	defaults := map[string]string{resultFail: "reject", resultTemperror: "tempfail", resultSoftfail: "tag"}
	if a, ok := lambgate.Setting(r + "_action"); ok {
		return a
	}
	if a, ok := defaults[r]; ok {
		return a
	}
	return "continue"
}

func onMail() lambgate.Action {
	r := result()
	_, domain := identity()
	switch actionFor(r) {
	case "reject":
		code := "5.7.23" // RFC 7372: SPF validation failed
		if r == resultPermerror {
			code = "5.7.24"
		}
		return lambgate.RejectWith(550, code, "SPF check "+r+" for "+domain+" from "+lambgate.ClientAddr())
	case "tempfail":
		return lambgate.TempfailWith(451, "4.7.24", "SPF check "+r+" for "+domain+", try again later")
	}
	return lambgate.Continue
}

func onHeaders() lambgate.Action {
	r := result()
	sender, _ := identity()
	helo, _ := lambgate.HELO()
	lambgate.AddHeader("Received-SPF", r+" client-ip="+lambgate.ClientAddr()+"; envelope-from=\""+
		sender+"\"; helo="+helo+";")
	switch actionFor(r) {
	case "tag":
		lambgate.AddTag("spf-" + r)
	case "quarantine":
		lambgate.AddTag("spf-" + r)
		return lambgate.Quarantine
	}
	return lambgate.Continue
}
