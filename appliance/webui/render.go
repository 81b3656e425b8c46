package webui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// view is the data of every page template.
type view struct {
	Title    string
	Nav      string
	CSRF     string
	LoggedIn bool
	Notice   string
	Error    string
	Data     any
}

type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"since": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String()
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"join": strings.Join,
}

// parsePages parses each page template together with the layout.
func parsePages() (*pages, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		p.byName[base] = t
	}
	return p, nil
}

// render executes page into a buffer first, so a template error never
// sends half a page with a 200 status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	v.CSRF = s.csrfToken(w, r)
	v.LoggedIn = sessionFrom(r.Context()) != nil
	if v.Notice == "" {
		v.Notice = notices[r.URL.Query().Get("done")]
	}
	t := s.pages.byName[page]
	var buf bytes.Buffer
	name := "layout.html"
	if r.URL.Query().Get("partial") != "" {
		name = "content"
	}
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		s.log.Error("page rendering failed", "page", page, "reason", err)
		http.Error(w, "Internal error: the page could not be rendered; the log has the details.",
			http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// notices are the fixed confirmations a redirect can ask for with ?done=,
// so that no request can put its own text on a page.
var notices = map[string]string{
	"saved":            "Settings saved and applied.",
	"imported":         "Settings imported and applied.",
	"retried":          "Every waiting message is being retried now.",
	"retried-one":      "The message is being retried now.",
	"attempt-running":  "A delivery attempt of the message is running already, so it was not started again.",
	"deleted":          "Message deleted.",
	"bounced":          "Message bounced to its sender (unless a backscatter safeguard stopped the DSN).",
	"released":         "Message released to the delivery queue.",
	"setup":            "Setup complete. The gateway runs with the new settings.",
	"loggedout":        "Logged out.",
	"password":         "Admin password changed. Every other session has ended.",
	"plugin-installed": "Plugin validated, installed and live.",
	"plugin-enable":    "Plugin enabled.",
	"plugin-disable":   "Plugin disabled: it is no longer called, and its files are kept.",
	"plugin-order":     "Plugin order changed.",
	"plugin-manifest":  "Plugin manifest validated and applied.",
	"plugin-remove":    "Plugin removed.",
}
