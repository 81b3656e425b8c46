package webui

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"

	"github.com/lambgate/lambgate/appliance/settings"
)

// fieldHelp maps a settings key to its comment in the default settings
// file, so that the web form and lambgate.toml explain a key alike.
var fieldHelp = parseHelp(settings.DefaultFile())

// interfaceHelp explains the interface fields, which the default file only
// shows in a commented-out example.
var interfaceHelp = map[string]string{
	"name":           `Linux device name, such as "eth0".`,
	"roles":          "Roles this interface carries: inbound, bounce, internal, admin.",
	"addresses":      "Prefixes such as 192.0.2.10/24; the first one is the address of every role but bounce.",
	"bounce_address": "The bounce role's own address, one of the addresses above; required when bounce shares the interface.",
	"gateway":        "Next hop: the default route on the inbound interface, the bounce table's route on the bounce interface.",
	"routes":         "Extra destination prefixes reached through the gateway, such as internal networks.",
	"dhcp":           "Leave addresses, routes and DNS of this interface to a DHCP client.",
	"dns":            "Name server addresses for resolv.conf.",
	"bounce_table":   "Routing table of the bounce role's policy routing; 0 uses 200.",
	"mtu":            "MTU in bytes; 0 keeps the device's MTU.",
}

var (
	tableLine = regexp.MustCompile(`^\[([a-z_]+)\]$`)
	keyLine   = regexp.MustCompile(`^([a-z_]+)\s*=`)
)

// parseHelp reads the comment block directly above each key of a settings
// file. The block belongs to the next key only.
func parseHelp(file []byte) map[string]string {
	help := map[string]string{}
	var table string
	var comment []string
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case tableLine.MatchString(line):
			table = tableLine.FindStringSubmatch(line)[1] + "."
			comment = nil
		case keyLine.MatchString(line):
			if len(comment) > 0 {
				help[table+keyLine.FindStringSubmatch(line)[1]] = strings.Join(comment, " ")
			}
			comment = nil
		default:
			comment = nil
		}
	}
	return help
}

// helpFor returns the explanation of key, or "".
func helpFor(key string) string {
	if m := indexedKey.FindStringSubmatch(key); m != nil && m[1] == "interface" {
		return interfaceHelp[key[len(m[0]):]]
	}
	return fieldHelp[key]
}
