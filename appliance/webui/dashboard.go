package webui

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/settings"
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
	d.Ifaces = interfaceStates(s.cfg.Backend.Settings())
	d.Plugins = s.pluginSummaries()
	s.render(w, r, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "dashboard", Data: d})
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
