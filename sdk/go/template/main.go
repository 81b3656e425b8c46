//go:build wasip1

// Command template is a starting point for a Go plugin: it rejects
// messages whose Subject matches the subject_pattern setting and tags
// those from senders in the watch_senders list. Copy this directory, rename
// template.toml to NAME.toml and set its name, then build with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o NAME.wasm .
package main

import (
	"strings"

	"github.com/lambgate/lambgate/sdk/go/lambgate"
)

// main is empty: the host calls the registered handlers through the
// module's exports.
func main() {}

func init() {
	lambgate.OnMail(checkSender)
	lambgate.OnHeaders(checkSubject)
}

// checkSender runs at MAIL FROM. Transaction state cannot be kept in Go
// variables (another instance may serve the next phase), so it reports
// what it found by tagging in the headers phase instead.
func checkSender() lambgate.Action {
	from, err := lambgate.MailFrom()
	if err != nil {
		return lambgate.Continue
	}
	for _, s := range lambgate.SettingList("watch_senders") {
		if strings.EqualFold(from, s) {
			lambgate.Log(lambgate.LevelInfo, "watched sender "+from)
		}
	}
	return lambgate.Continue
}

func checkSubject() lambgate.Action {
	pattern, ok := lambgate.Setting("subject_pattern")
	if !ok || pattern == "" {
		return lambgate.Continue
	}
	// The host compiles a pattern once per plugin and returns the same
	// handle on later calls, so compiling per message costs a lookup.
	re, err := lambgate.CompileRegexp(pattern)
	if err != nil {
		lambgate.Log(lambgate.LevelError, "invalid subject_pattern: "+pattern)
		return lambgate.Continue
	}
	if re.MatchHeader("Subject") {
		return lambgate.RejectWith(550, "5.7.1", "Message rejected by subject policy")
	}
	from, _ := lambgate.MailFrom()
	for _, s := range lambgate.SettingList("watch_senders") {
		if strings.EqualFold(from, s) {
			lambgate.AddTag("watched-sender")
		}
	}
	return lambgate.Continue
}
