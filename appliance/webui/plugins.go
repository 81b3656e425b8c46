package webui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambgate/lambgate/plugins/host"
)

// Upload limits, which keep a bad upload from filling the appliance's
// memory or SD card.
const (
	MaxPluginModuleBytes   = 32 << 20
	MaxPluginManifestBytes = 64 << 10
	maxPluginUploadBytes   = MaxPluginModuleBytes + MaxPluginManifestBytes + 64<<10
)

// PluginInfo is one installed plugin as the Plugins page shows it.
type PluginInfo struct {
	Manifest host.Manifest
	// Enabled plugins are loaded by the host and called for mail.
	Enabled bool
	// Stats is nil for a disabled plugin.
	Stats *host.PluginStats
}

// PluginBackend manages the gateway's filter plugins. Every change is
// validated by the plugin host before it goes live, and applies without a
// restart.
type PluginBackend interface {
	Plugins() []PluginInfo
	// InstallPlugin validates and installs a module with its manifest,
	// replacing an installed plugin of the same name.
	InstallPlugin(ctx context.Context, wasm, manifest []byte) (*host.Manifest, error)
	SetPluginEnabled(ctx context.Context, name string, enabled bool) error
	// PluginManifest returns the manifest file of an installed plugin.
	PluginManifest(name string) ([]byte, error)
	// UpdatePluginManifest validates manifest with the plugin's module and
	// applies it.
	UpdatePluginManifest(ctx context.Context, name string, manifest []byte) error
	SetPluginOrder(ctx context.Context, name string, order int) error
	RemovePlugin(ctx context.Context, name string) error
}

// msgPluginChangeRejected is the log message of a rejected plugin change.
const msgPluginChangeRejected = "plugin change rejected"

var pluginNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// pluginRow is one plugin on the Plugins page.
type pluginRow struct {
	PluginInfo
	Failures   uint64
	LastErrors []LogEntry
}

type pluginsData struct {
	Plugins []pluginRow
	Edit    string
	Text    string
}

func (s *Server) pluginBackend() (PluginBackend, bool) {
	pb, ok := s.cfg.Backend.(PluginBackend)
	return pb, ok
}

func (s *Server) plugins(w http.ResponseWriter, r *http.Request) {
	s.renderPlugins(w, r, http.StatusOK, "", "")
}

func (s *Server) renderPlugins(w http.ResponseWriter, r *http.Request, status int, errMsg, edit string) {
	v := view{Title: "Plugins", Nav: "plugins", Error: errMsg}
	pb, ok := s.pluginBackend()
	if !ok {
		v.Error = "This gateway runs no plugin host."
		s.render(w, r, status, "plugins", v)
		return
	}
	d := pluginsData{Edit: edit}
	if edit != "" {
		text, err := pb.PluginManifest(edit)
		if err != nil {
			v.Error = err.Error()
		}
		d.Text = string(text)
	}
	for _, p := range pb.Plugins() {
		row := pluginRow{PluginInfo: p, LastErrors: s.pluginErrors(p.Manifest.Name, 5)}
		if p.Stats != nil {
			for _, n := range p.Stats.Failures {
				row.Failures += n
			}
		}
		d.Plugins = append(d.Plugins, row)
	}
	v.Data = d
	s.render(w, r, status, "plugins", v)
}

// pluginErrors returns the newest warnings and errors that the log ring
// holds for plugin name, leaving out the administrator's rejected changes.
func (s *Server) pluginErrors(name string, limit int) []LogEntry {
	var out []LogEntry
	for _, e := range s.cfg.Ring.Entries("", "", 2000) {
		if e.Message == msgPluginChangeRejected {
			continue
		}
		if e.Level >= slog.LevelWarn && e.attr("plugin") == name {
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// pluginUpload installs a module and its manifest from a multipart form.
func (s *Server) pluginUpload(w http.ResponseWriter, r *http.Request) {
	pb, ok := s.pluginBackend()
	if !ok {
		http.Error(w, "Not found: this gateway runs no plugin host.", http.StatusNotFound)
		return
	}
	wasm, err := formFileBytes(r, "module", MaxPluginModuleBytes)
	if err == nil {
		var manifest []byte
		manifest, err = formFileBytes(r, "manifest", MaxPluginManifestBytes)
		if err == nil {
			ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
			var man *host.Manifest
			man, err = pb.InstallPlugin(ctx, wasm, manifest)
			cancel()
			if err == nil {
				s.log.Info("plugin installed by the administrator", "plugin", man.Name,
					"version", man.Version, "remote", clientIP(r))
				http.Redirect(w, r, "/plugins?done=plugin-installed", http.StatusSeeOther)
				return
			}
		}
	}
	s.log.Warn("plugin upload rejected", "remote", clientIP(r), "reason", err)
	s.renderPlugins(w, r, http.StatusUnprocessableEntity, "The plugin was not installed: "+err.Error(), "")
}

// formFileBytes reads an uploaded file of at most limit bytes.
func formFileBytes(r *http.Request, name string, limit int64) ([]byte, error) {
	f, hdr, err := r.FormFile(name)
	if err != nil {
		return nil, fmt.Errorf("choose a %s file", name)
	}
	defer f.Close()
	if hdr.Size > limit {
		return nil, fmt.Errorf("the %s file %s has %d bytes, more than the limit of %d", name, hdr.Filename, hdr.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read the %s file: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("the %s file %s is larger than the limit of %d bytes", name, hdr.Filename, limit)
	}
	return data, nil
}

// pluginAction runs enable, disable, order, manifest and remove on one
// plugin.
func (s *Server) pluginAction(w http.ResponseWriter, r *http.Request) {
	pb, ok := s.pluginBackend()
	if !ok {
		http.Error(w, "Not found: this gateway runs no plugin host.", http.StatusNotFound)
		return
	}
	name, action := r.PathValue("name"), r.PathValue("action")
	if !pluginNamePattern.MatchString(name) {
		http.Error(w, "Not found: invalid plugin name "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()

	var err error
	switch action {
	case "enable", "disable":
		err = pb.SetPluginEnabled(ctx, name, action == "enable")
	case "order":
		order, perr := strconv.Atoi(strings.TrimSpace(r.PostFormValue("order")))
		if perr != nil {
			err = fmt.Errorf("order %q is not a whole number", r.PostFormValue("order"))
		} else {
			err = pb.SetPluginOrder(ctx, name, order)
		}
	case "manifest":
		text := strings.ReplaceAll(r.PostFormValue("manifest"), "\r\n", "\n")
		if len(text) > MaxPluginManifestBytes {
			err = fmt.Errorf("the manifest has %d bytes, more than the limit of %d", len(text), MaxPluginManifestBytes)
		} else {
			err = pb.UpdatePluginManifest(ctx, name, []byte(text))
		}
		if err != nil {
			s.log.Warn(msgPluginChangeRejected, "plugin", name, "action", action, "reason", err)
			s.renderPluginEdit(w, r, name, text, err)
			return
		}
	case "remove":
		err = pb.RemovePlugin(ctx, name)
	default:
		http.Error(w, "Not found: no plugin action "+action, http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.Warn(msgPluginChangeRejected, "plugin", name, "action", action, "reason", err)
		s.renderPlugins(w, r, http.StatusUnprocessableEntity, fmt.Sprintf("%s of %s failed, nothing changed: %v", action, name, err), "")
		return
	}
	s.log.Info("plugin changed by the administrator", "plugin", name, "action", action, "remote", clientIP(r))
	http.Redirect(w, r, "/plugins?done=plugin-"+action, http.StatusSeeOther)
}

// pluginEdit shows the manifest editor of one plugin.
func (s *Server) pluginEdit(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// The name becomes a file name in the backend: only plugin names pass.
	if !pluginNamePattern.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	s.renderPlugins(w, r, http.StatusOK, "", name)
}

// renderPluginEdit shows the editor again with the rejected text.
func (s *Server) renderPluginEdit(w http.ResponseWriter, r *http.Request, name, text string, err error) {
	pb, _ := s.pluginBackend()
	d := pluginsData{Edit: name, Text: text}
	for _, p := range pb.Plugins() {
		d.Plugins = append(d.Plugins, pluginRow{PluginInfo: p, LastErrors: s.pluginErrors(p.Manifest.Name, 5)})
	}
	s.render(w, r, http.StatusUnprocessableEntity, "plugins", view{Title: "Plugins", Nav: "plugins",
		Error: "The manifest was not applied, the plugin runs as before: " + err.Error(), Data: d})
}

// pluginSummary is one plugin's line on the dashboard.
type pluginSummary struct {
	Name     string
	Calls    uint64
	Verdicts string
	Time     time.Duration
	Failures uint64
}

func (s *Server) pluginSummaries() []pluginSummary {
	pb, ok := s.pluginBackend()
	if !ok {
		return nil
	}
	var out []pluginSummary
	for _, p := range pb.Plugins() {
		if p.Stats == nil {
			continue
		}
		ps := pluginSummary{Name: p.Manifest.Name}
		for _, n := range p.Stats.Calls {
			ps.Calls += n
		}
		for _, d := range p.Stats.Time {
			ps.Time += d
		}
		for _, n := range p.Stats.Failures {
			ps.Failures += n
		}
		ps.Verdicts = formatCounts(p.Stats.Verdicts)
		out = append(out, ps)
	}
	return out
}

// formatCounts renders a count map as "a=1 b=2", sorted by key.
func formatCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
