package plugintest

import (
	"fmt"
	"io"
	"strings"

	"github.com/lambgate/lambgate/appliance/filter"
)

// Print writes one line per callback and a summary, for people reading a
// terminal.
func Print(w io.Writer, r *Result) {
	for _, s := range r.Steps {
		line := fmt.Sprintf("%-8s %-10s %-10s %8.3f ms", s.Phase, s.Plugin, s.Action, float64(s.Duration.Microseconds())/1000)
		if s.Failure != nil {
			line = fmt.Sprintf("%-8s %-10s %-10s %8.3f ms  failed: %v -> %s", s.Phase, s.Plugin, "failure",
				float64(s.Duration.Microseconds())/1000, s.Failure, s.Verdict.Action)
		}
		if s.Reply.Code != 0 {
			line += "  reply: " + reply(s.Reply)
		}
		for _, h := range s.Headers {
			line += fmt.Sprintf("  +header %s: %s", h.Name, h.Value)
		}
		if len(s.Tags) > 0 {
			line += "  tags: " + strings.Join(s.Tags, ",")
		}
		fmt.Fprintln(w, line)
	}

	if r.StoppedAt == "" {
		fmt.Fprintln(w, "verdict: continue (every phase continued)")
	} else {
		fmt.Fprintf(w, "verdict: %s at %s", r.Verdict.Action, r.StoppedAt)
		if r.Verdict.Code != 0 {
			fmt.Fprintf(w, " (%s)", reply(r.Verdict))
		}
		fmt.Fprintln(w)
	}
	for _, h := range r.Edits.AddHeaders {
		fmt.Fprintf(w, "add header: %s: %s\n", h.Name, h.Value)
	}
	if len(r.Edits.Tags) > 0 {
		fmt.Fprintf(w, "tags: %s\n", strings.Join(r.Edits.Tags, ","))
	}
}

func reply(v filter.Verdict) string {
	s := fmt.Sprint(v.Code)
	if v.Enhanced != [3]int{} {
		s += fmt.Sprintf(" %d.%d.%d", v.Enhanced[0], v.Enhanced[1], v.Enhanced[2])
	}
	return s + " " + v.Text
}
