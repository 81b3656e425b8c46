//go:build wasip1

// Command attachments is the bundled attachment policy plugin. It blocks
// messages with a MIME entity whose file name has a blocked extension or
// whose declared type is blocked, looking through nested multiparts and
// attached messages (the host walks the MIME tree). Names are normalised
// first, so "invoice.pdf.exe", "INVOICE.EXE." and "invoice.exe   " all
// count as ".exe"; with block_any_extension, "report.exe.pdf" is blocked
// too, because some mail clients hide the last extension.
package main

import (
	"strings"

	"github.com/lambgate/lambgate/sdk/go/lambgate"
)

func main() {}

func init() { lambgate.OnBody(checkParts) }

func checkParts() lambgate.Action {
	parts, err := lambgate.Parts()
	if err != nil {
		lambgate.Log(lambgate.LevelError, "reading MIME parts failed: "+err.Error())
		return lambgate.Continue
	}
	if cached == nil {
		p := loadPolicy()
		cached = &p
	}
	p := *cached
	for _, part := range parts {
		reason := p.check(part)
		if reason == "" {
			continue
		}
		lambgate.Log(lambgate.LevelInfo, "blocked part "+part.Path+": "+reason)
		switch p.action {
		case "quarantine":
			lambgate.AddTag("attachment-blocked")
			return lambgate.Quarantine
		case "discard":
			return lambgate.Discard
		default:
			return lambgate.RejectWith(550, "5.7.1", p.rejectText+" ("+reason+")")
		}
	}
	return lambgate.Continue
}

type policy struct {
	extensions map[string]bool
	types      map[string]bool
	anyExt     bool
	action     string
	rejectText string
}

// cached is the policy read from the settings at an instance's first
// call. Settings are configuration, fixed for the instance's lifetime (a
// changed manifest loads a new plugin), so any instance may keep them.
var cached *policy

func loadPolicy() policy {
	p := policy{extensions: map[string]bool{}, types: map[string]bool{}}
	for _, e := range lambgate.SettingList("block_extensions") {
		p.extensions[strings.TrimPrefix(strings.ToLower(e), ".")] = true
	}
	for _, t := range lambgate.SettingList("block_types") {
		p.types[strings.ToLower(t)] = true
	}
	anyExt, _ := lambgate.Setting("block_any_extension")
	p.anyExt = anyExt == "true"
	p.action, _ = lambgate.Setting("action")
	p.rejectText, _ = lambgate.Setting("reject_text")
	if p.rejectText == "" {
		p.rejectText = "Attachment type not accepted"
	}
	return p
}

// check returns why a part is blocked, or "".
func (p policy) check(part lambgate.Part) string {
	if p.types[part.ContentType] {
		return "type " + part.ContentType
	}
	exts := extensions(part.FileName)
	if len(exts) == 0 {
		return ""
	}
	if last := exts[len(exts)-1]; p.extensions[last] {
		return "file name extension ." + last
	}
	if p.anyExt {
		for _, e := range exts[:len(exts)-1] {
			if p.extensions[e] {
				return "hidden file name extension ." + e
			}
		}
	}
	return ""
}

// extensions returns a file name's dot-separated extensions in order,
// lower case, after dropping a path, trailing dots and white space, and
// characters that do not display (such as U+202E, which reverses text).
func extensions(name string) []string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x200b && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) ||
			(r >= 0x2066 && r <= 0x2069) || r == 0xfeff {
			return -1
		}
		return r
	}, name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToLower(strings.TrimRight(name, ". \t"))
	fields := strings.Split(name, ".")
	if len(fields) < 2 {
		return nil
	}
	var exts []string
	for _, f := range fields[1:] {
		if f = strings.TrimSpace(f); f != "" {
			exts = append(exts, f)
		}
	}
	return exts
}
