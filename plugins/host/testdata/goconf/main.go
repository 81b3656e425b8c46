//go:build wasip1

// Command goconf is the Go SDK's ABI conformance plugin: at each phase it
// calls the host and reports what it got, in the reply text (connect to
// rcpt) or in an added header (headers, body, done). The AssemblyScript
// SDK's conformance plugin reports the same way, so one test checks both.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lambgate/lambgate/sdk/go/lambgate"
)

func main() {}

func name(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, lambgate.ErrNotFound):
		return "not_found"
	case errors.Is(err, lambgate.ErrBadArgument):
		return "bad_argument"
	case errors.Is(err, lambgate.ErrWrongPhase):
		return "wrong_phase"
	case errors.Is(err, lambgate.ErrLimit):
		return "limit"
	case errors.Is(err, lambgate.ErrTempFailure):
		return "temp_failure"
	case errors.Is(err, lambgate.ErrNotSupported):
		return "not_supported"
	}
	return err.Error()
}

func valueOr(s string, err error) string {
	if err != nil {
		return name(err)
	}
	return s
}

func init() {
	lambgate.OnConnect(func() lambgate.Action {
		_, herr := lambgate.HELO()
		greeting, _ := lambgate.Setting("greeting")
		_, missing := lambgate.Setting("missing")
		return lambgate.RejectWith(550, "5.7.1", fmt.Sprintf(
			"addr=%s port=%d helo=%s plugin=%s greeting=%s list=%s missing=%v",
			lambgate.ClientAddr(), lambgate.ClientPort(), name(herr), lambgate.PluginName(),
			greeting, strings.Join(lambgate.SettingList("list"), ","), missing))
	})
	lambgate.OnHelo(func() lambgate.Action {
		tls := "0"
		if lambgate.TLS() {
			tls = "1"
		}
		return lambgate.RejectWith(550, "5.7.1", fmt.Sprintf("helo=%s tls=%s from=%s",
			valueOr(lambgate.HELO()), tls, valueOr(lambgate.MailFrom())))
	})
	lambgate.OnMail(func() lambgate.Action {
		return lambgate.RejectWith(550, "5.7.1", fmt.Sprintf("from=%s rcpts=%s queue=%s spf=%s rcpt=%s",
			valueOr(lambgate.MailFrom()), strings.Join(lambgate.Recipients(), ","), lambgate.QueueID(),
			lambgate.SPF(), valueOr(lambgate.Rcpt())))
	})
	lambgate.OnRcpt(func() lambgate.Action {
		_, herr := lambgate.HeaderAt("Subject", 0)
		badCode := lambgate.SetReply(250, "", "ok")
		badEnh := lambgate.SetReply(451, "5.7.1", "mismatch")
		return lambgate.TempfailWith(451, "4.7.1", fmt.Sprintf("rcpt=%s first=%s hdr=%s badcode=%s badenh=%s",
			valueOr(lambgate.Rcpt()), lambgate.Recipients()[0], name(herr), name(badCode), name(badEnh)))
	})
	lambgate.OnHeaders(func() lambgate.Action {
		subject, _ := lambgate.Header("Subject")
		second, _ := lambgate.HeaderAt("Received", 1)
		block, _ := lambgate.HeaderBlock()
		_, berr := lambgate.BodySize()
		re := lambgate.MustCompileRegexp(`^Gr.*e$`)
		_, reErr := lambgate.CompileRegexp(`(`)
		lambgate.AddHeader("X-Conf-Headers", fmt.Sprintf(
			"subject=%s count=%d second=%s block=%d body=%s search=%d re=%t hre=%t rebad=%s badname=%s",
			subject, lambgate.HeaderCount("received"), second, len(block), name(berr),
			lambgate.SearchHeaders("SUBJECT:", true), re.MatchHeader("Subject"),
			lambgate.MustCompileRegexp(`(?m)^Received: by b`).MatchHeaders(),
			name(reErr), name(lambgate.AddHeader("Bad Name", "x"))))
		lambgate.AddTag("conf:headers")
		return lambgate.Continue
	})
	lambgate.OnBody(func() lambgate.Action {
		size, _ := lambgate.BodySize()
		first := make([]byte, 4)
		n, _ := lambgate.ReadBody(first, 0)
		parts, _ := lambgate.Parts()
		var ps []string
		for _, p := range parts {
			ps = append(ps, fmt.Sprintf("%s:%s:%s:%s:%d", p.Path, p.ContentType, p.FileName, p.Disposition, p.Size))
		}
		sum, _ := lambgate.Hash(lambgate.SHA256, []byte("abc"))
		bodySum, _ := lambgate.HashBody(lambgate.MD5)
		mimeErr, _ := lambgate.MIMEError()
		lambgate.AddHeader("X-Conf-Body", fmt.Sprintf(
			"mimeerr=%s size=%d first=%s parts=%s search=%d nosearch=%d re=%t sha=%s bodymd5=%s",
			mimeErr, size, first[:n], strings.Join(ps, ","), lambgate.SearchBody("NEEDLE", true),
			lambgate.SearchBody("absent", false), lambgate.MustCompileRegexp(`nee+dle`).MatchBody(),
			hex.EncodeToString(sum)[:8], hex.EncodeToString(bodySum)))
		return lambgate.Continue
	})
	lambgate.OnDone(func() lambgate.Action {
		a, aerr := lambgate.Lookup(lambgate.TypeA, "host.example")
		txt, _ := lambgate.Lookup(lambgate.TypeTXT, "host.example")
		mx, _ := lambgate.Lookup(lambgate.TypeMX, "host.example")
		_, nx := lambgate.Lookup(lambgate.TypeA, "nx.example")
		_, tf := lambgate.Lookup(lambgate.TypeA, "servfail.example")
		one, _ := lambgate.KVIncr("counter", 1, time.Minute)
		two, _ := lambgate.KVIncr("counter", 1, time.Minute)
		lambgate.KVSet("key", []byte("stored"), 0)
		stored, _ := lambgate.KVGet("key")
		_, kvMissing := lambgate.KVGet("absent")
		lambgate.Log(lambgate.LevelInfo, "conformance done")
		aaaa, _ := lambgate.Lookup(lambgate.TypeAAAA, "host.example")
		re := lambgate.MustCompileRegexp(`^ab+c$`)
		lambgate.AddHeader("X-Conf-Done", fmt.Sprintf(
			"a=%s/%s aaaa=%s phase=%s restr=%t,%t txt=%s mx=%s nx=%s tf=%s now=%d incr=%d,%d kv=%s kvmissing=%t",
			strings.Join(a, ","), name(aerr), strings.Join(aaaa, ","), lambgate.Phase(),
			re.MatchString("abbc"), re.MatchString("ac"), strings.Join(txt, "|"), strings.Join(mx, "|"),
			name(nx), name(tf), lambgate.Now().UnixMilli(), one, two, stored, kvMissing))
		return lambgate.Quarantine
	})
}
