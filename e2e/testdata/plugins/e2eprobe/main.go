//go:build wasip1

// Command e2eprobe is a filter plugin for the end-to-end tests: it rejects
// the recipients in block_rcpts at RCPT, quarantines messages whose Subject
// contains "quarantine me", and adds a header to those whose Subject
// contains "tag me", so each verdict can be checked through the gateway.
package main

import (
	"strings"

	"github.com/lambgate/lambgate/sdk/go/lambgate"
)

func main() {}

func init() {
	lambgate.OnRcpt(checkRecipient)
	lambgate.OnHeaders(checkSubject)
}

func checkRecipient() lambgate.Action {
	rcpt, err := lambgate.Rcpt()
	if err != nil {
		return lambgate.Continue
	}
	for _, blocked := range lambgate.SettingList("block_rcpts") {
		if strings.EqualFold(rcpt, blocked) {
			return lambgate.RejectWith(550, "5.7.1", "Recipient blocked by the e2e probe")
		}
	}
	return lambgate.Continue
}

func checkSubject() lambgate.Action {
	subject, _ := lambgate.Header("Subject")
	switch {
	case strings.Contains(subject, "quarantine me"):
		return lambgate.Quarantine
	case strings.Contains(subject, "tag me"):
		lambgate.AddHeader("X-Lambgate-Probe", "tagged")
		lambgate.AddTag("probe-tagged")
	}
	return lambgate.Continue
}
