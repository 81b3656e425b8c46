package webui

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/netcfg"
)

// chart is one bar chart, laid out in Go so the template only draws rects
// and the page needs no script to show it.
type chart struct {
	Title string
	Total uint64
	Max   uint64
	Bars  []bar
}

type bar struct {
	X, Y, W, H float64
	Label      string
}

const chartW, chartH = 300.0, 60.0

func makeChart(title string, points []uint64, label func(i int) string) chart {
	c := chart{Title: title}
	for _, p := range points {
		c.Total += p
		c.Max = max(c.Max, p)
	}
	w := chartW / float64(len(points))
	for i, p := range points {
		h := 0.0
		if c.Max > 0 {
			h = chartH * float64(p) / float64(c.Max)
		}
		c.Bars = append(c.Bars, bar{X: float64(i) * w, Y: chartH - h, W: max(w-1, 1), H: h,
			Label: fmt.Sprintf("%s: %d", label(i), p)})
	}
	return c
}

type interfaceStatus struct {
	Name, Roles, State, Addresses string
	// Traffic is the kernel's byte and error counters, when known.
	Traffic string
}

// InterfaceReporter is implemented by a Backend that reads the live state
// of the configured interfaces. It returns nil without an interface
// section.
type InterfaceReporter interface {
	InterfaceStatus() ([]netcfg.InterfaceStatus, error)
}

type dashboardData struct {
	Hour, Day []chart
	Reasons   []ReasonCount
	Queue     queue.Stats
	Ifaces    []interfaceStatus
	Plugins   []pluginSummary
	Updated   time.Time
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	d := dashboardData{Queue: s.cfg.Backend.QueueStats(), Updated: now,
		Reasons: s.cfg.Series.Reasons(now, 24*60)}
	names := append(append([]string(nil), ChartCounters...), GaugeQueueDepth)
	for _, n := range names {
		d.Hour = append(d.Hour, makeChart(n, s.cfg.Series.Points(n, now, 60, 1), func(i int) string {
			return fmt.Sprintf("%d min ago", 59-i)
		}))
		d.Day = append(d.Day, makeChart(n, s.cfg.Series.Points(n, now, 24, 60), func(i int) string {
			return fmt.Sprintf("%d h ago", 23-i)
		}))
	}
	d.Ifaces = s.interfaces()
	d.Plugins = s.pluginSummaries()
	s.render(w, r, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "dashboard", Data: d})
}

// interfaces returns the configured interfaces' live state from the
// backend, or the machine's interfaces when there is no interface section.
func (s *Server) interfaces() []interfaceStatus {
	ir, ok := s.cfg.Backend.(InterfaceReporter)
	if !ok {
		return interfaceStates(s.cfg.Backend.Settings())
	}
	live, err := ir.InterfaceStatus()
	if err != nil {
		s.log.Warn("reading interface status failed", "reason", err)
	}
	if len(live) == 0 {
		return interfaceStates(s.cfg.Backend.Settings())
	}
	var out []interfaceStatus
	for _, st := range live {
		is := interfaceStatus{Name: st.Name, Roles: strings.Join(st.Roles, ", "), State: "missing"}
		if st.Found {
			is.State = "down"
			if st.Up && st.Carrier {
				is.State = "up"
			} else if st.Up {
				is.State = "no-carrier"
			}
			is.Addresses = strings.Join(st.Addresses, ", ")
			is.Traffic = fmt.Sprintf("rx %d B, tx %d B, errors %d/%d", st.RxBytes, st.TxBytes, st.RxErrors, st.TxErrors)
		}
		out = append(out, is)
	}
	return out
}

// interfaceStates returns the configured interfaces with the link state and
// addresses that the kernel reports. With no interface section (a
// development machine) it lists the machine's interfaces without roles.
func interfaceStates(st *settings.Settings) []interfaceStatus {
	var out []interfaceStatus
	describe := func(name, roles string) {
		is := interfaceStatus{Name: name, Roles: roles, State: "missing"}
		if ni, err := net.InterfaceByName(name); err == nil {
			is.State = "down"
			if ni.Flags&net.FlagUp != 0 {
				is.State = "up"
			}
			addrs, _ := ni.Addrs()
			for i, a := range addrs {
				if i > 0 {
					is.Addresses += ", "
				}
				is.Addresses += a.String()
			}
		}
		out = append(out, is)
	}
	if len(st.Interfaces) > 0 {
		for _, iface := range st.Interfaces {
			roles := fmt.Sprint(iface.Roles)
			describe(iface.Name, roles[1:len(roles)-1])
		}
		return out
	}
	all, _ := net.Interfaces()
	for _, ni := range all {
		describe(ni.Name, "")
	}
	return out
}
