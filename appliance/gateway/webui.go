package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/BurntSushi/toml"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/spool"
	"github.com/lambgate/lambgate/appliance/webui"
	"github.com/lambgate/lambgate/netcfg"
	"github.com/lambgate/lambgate/plugins/host"
)

// Settings returns a deep copy of the settings in force, which the caller
// may change and pass to ApplySettings.
func (g *Gateway) Settings() *settings.Settings {
	g.mu.Lock()
	s := g.settings
	g.mu.Unlock()
	data, err := s.Marshal()
	// A zero value, not Default: a list the running settings leave nil must
	// stay nil instead of taking the default's entries.
	c := &settings.Settings{}
	if err == nil {
		_, err = toml.Decode(string(data), c)
	}
	if err != nil {
		// Running settings always encode; this only guards a schema bug.
		g.log.Error("copying the settings failed", "reason", err)
		copied := *s
		return &copied
	}
	return c
}

// ApplySettings validates s, applies it with Reload and then saves it
// atomically in the data directory. Applying first means a setting the
// gateway cannot use (a port in use) changes nothing on disk either.
func (g *Gateway) ApplySettings(s *settings.Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := g.Reload(s); err != nil {
		return fmt.Errorf("settings not applied, nothing changed: %w", err)
	}
	if err := s.Save(g.dataDir); err != nil {
		g.log.Error("settings applied but not saved", "reason", err)
		return fmt.Errorf("settings applied but not saved, so a restart loses them: %w", err)
	}
	g.log.Info("settings saved", "path", g.dataDir+"/"+settings.FileName)
	return nil
}

// ReleaseQuarantined moves a quarantined message to the queue area and
// schedules its delivery at once.
func (g *Gateway) ReleaseQuarantined(queueID string) error {
	if err := g.spool.Move(queueID, spool.AreaQuarantine, spool.AreaQueue); err != nil {
		return err
	}
	msg, err := g.spool.Open(spool.AreaQueue, queueID)
	if err != nil {
		return fmt.Errorf("released %s but could not open it to queue it (it is queued at the next start): %w",
			queueID, err)
	}
	env := msg.Envelope.Clone()
	msg.Close()
	g.queue.Enqueue(env)
	g.log.Info("released from quarantine", "queue_id", queueID, "from", env.From)
	return nil
}

// logRing returns the ring of the web UI's log handler, which the main
// program installs around the gateway's logger.
func (g *Gateway) logRing() *webui.LogRing {
	if h, ok := g.log.Handler().(*webui.LogHandler); ok {
		return h.Ring()
	}
	g.log.Warn("the logger has no web UI ring buffer, so the Logs page and the mail charts stay empty",
		"reason", "wrap the log handler with webui.NewLogHandler")
	return nil
}

func (g *Gateway) logSeries() *webui.Series {
	if h, ok := g.log.Handler().(*webui.LogHandler); ok {
		return h.Ring().Series()
	}
	return nil
}

// webBackend adapts the gateway to webui.Backend.
type webBackend struct{ g *Gateway }

func (b webBackend) Settings() *settings.Settings { return b.g.Settings() }

func (b webBackend) ApplySettings(s *settings.Settings) error { return b.g.ApplySettings(s) }

func (b webBackend) Messages(area spool.Area) ([]*envelope.Envelope, error) {
	return b.g.spool.List(area)
}

// maxHeaderBytes bounds the header section shown for one message.
const maxHeaderBytes = 64 << 10

func (b webBackend) Message(area spool.Area, queueID string) (*envelope.Envelope, []byte, error) {
	msg, err := b.g.spool.Open(area, queueID)
	if err != nil {
		return nil, nil, err
	}
	defer msg.Close()
	var headers bytes.Buffer
	headers.WriteString(msg.Envelope.Prepend)
	r := bufio.NewReader(io.LimitReader(msg.Reader(), maxHeaderBytes))
	for {
		line, err := r.ReadString('\n')
		if line == "\r\n" || line == "\n" {
			break
		}
		headers.WriteString(line)
		if err != nil {
			break
		}
	}
	return msg.Envelope, headers.Bytes(), nil
}

func (b webBackend) RetryNow() { b.g.queue.Kick() }

// Retry makes one queued message due now. A message that is not waiting
// in the schedule is reported as not found. For a message whose attempt
// runs it returns queue.ErrAttemptRunning, so that the page reports it
// instead of confirming a retry that did nothing.
func (b webBackend) Retry(queueID string) error {
	err := b.g.queue.Retry(queueID)
	switch {
	case errors.Is(err, queue.ErrNotQueued):
		return fmt.Errorf("retry %s: %w", queueID, spool.ErrNotFound)
	case err != nil:
		return err
	}
	b.g.log.Info("retry requested by the administrator", "queue_id", queueID)
	return nil
}

// Delete removes a message without a DSN. A queued message is first
// withdrawn from the delivery schedule, so no attempt can start while it
// is removed. A message whose attempt is running is rejected until the
// attempt ends.
func (b webBackend) Delete(area spool.Area, queueID string) error {
	if area == spool.AreaQueue {
		if _, err := b.g.queue.Withdraw(queueID); err != nil && !errors.Is(err, queue.ErrNotQueued) {
			return err
		}
	}
	if err := b.g.spool.Remove(area, queueID); err != nil {
		if area == spool.AreaQueue {
			b.g.requeue(queueID)
		}
		return err
	}
	b.g.log.Info("deleted by the administrator", "queue_id", queueID, "area", string(area))
	return nil
}

// requeue puts a withdrawn message back into the delivery schedule after
// an administrator's action failed half-way.
func (g *Gateway) requeue(queueID string) {
	msg, err := g.spool.Open(spool.AreaQueue, queueID)
	if err != nil {
		g.log.Error("withdrawn message not requeued; it is queued again at the next start",
			"queue_id", queueID, "reason", err)
		return
	}
	env := msg.Envelope.Clone()
	msg.Close()
	g.queue.Enqueue(env)
}

// errBounceOfBounce is returned for a DSN: a bounce is never bounced.
var errBounceOfBounce = errors.New("the message is a DSN, and a DSN is never bounced: delete it instead")

// Bounce reports a queued inbound message's pending recipients to its
// sender through the bounce sender, whose backscatter safeguards still
// apply, then removes the message. Like Delete, it withdraws the message
// from the delivery schedule first.
func (b webBackend) Bounce(ctx context.Context, queueID string) error {
	msg, err := b.g.spool.Open(spool.AreaQueue, queueID)
	if err != nil {
		return err
	}
	defer msg.Close()
	env := msg.Envelope.Clone()
	if env.Kind == envelope.KindBounce {
		return errBounceOfBounce
	}
	if _, err := b.g.queue.Withdraw(queueID); err != nil && !errors.Is(err, queue.ErrNotQueued) {
		return err
	}
	bounced := false
	defer func() {
		if !bounced {
			b.g.requeue(queueID)
		}
	}()

	var failed []envelope.Recipient
	for i := range env.Recipients {
		r := &env.Recipients[i]
		if r.State != envelope.StatePending {
			continue
		}
		r.State = envelope.StateFailed
		r.LastError = "5.0.0 returned to the sender by the gateway's administrator"
		failed = append(failed, *r)
	}
	if len(failed) == 0 {
		return fmt.Errorf("message %s has no pending recipient to bounce", queueID)
	}

	if err := b.g.bouncer.Bounce(ctx, env, msg, failed); err != nil {
		return fmt.Errorf("bounce of %s failed, the message stays queued: %w", queueID, err)
	}
	bounced = true
	if err := b.g.spool.Remove(spool.AreaQueue, queueID); err != nil {
		return fmt.Errorf("bounced %s but could not remove it, so it is delivered at the next start: %w", queueID, err)
	}
	b.g.log.Info("bounced by the administrator", "queue_id", queueID, "from", env.From,
		"rcpt_count", len(failed))
	return nil
}

func (b webBackend) Release(queueID string) error { return b.g.ReleaseQuarantined(queueID) }

func (b webBackend) QueueStats() queue.Stats { return b.g.queue.Stats() }

func (b webBackend) InterfaceStatus() ([]netcfg.InterfaceStatus, error) {
	return b.g.InterfaceStatus()
}

// disabledPluginsDir keeps the files of disabled plugins, outside the
// directory the plugin host loads.
func (g *Gateway) disabledPluginsDir() string { return filepath.Join(g.dataDir, "plugins-disabled") }

func (g *Gateway) pluginsDir() string { return filepath.Join(g.dataDir, "plugins") }

// Plugins lists the running plugins in call order, then the disabled ones.
func (b webBackend) Plugins() []webui.PluginInfo {
	stats := map[string]*host.PluginStats{}
	for _, st := range b.g.plugins.Stats() {
		stats[st.Name] = &st
	}
	var out []webui.PluginInfo
	for _, m := range b.g.plugins.Plugins() {
		out = append(out, webui.PluginInfo{Manifest: m, Enabled: true, Stats: stats[m.Name]})
	}
	files, _ := filepath.Glob(filepath.Join(b.g.disabledPluginsDir(), "*.toml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		m, err := host.ParseManifest(data)
		if err != nil {
			b.g.log.Warn("disabled plugin has an invalid manifest", "file", f, "reason", err)
			continue
		}
		out = append(out, webui.PluginInfo{Manifest: *m})
	}
	return out
}

func (b webBackend) InstallPlugin(ctx context.Context, wasm, manifest []byte) (*host.Manifest, error) {
	return b.g.plugins.Install(ctx, wasm, manifest)
}

// SetPluginEnabled moves a plugin's files out of the host's directory and
// back. The host has no switch of its own, so disabling keeps a copy of
// both files and removes the plugin, and enabling installs that copy again,
// validated like an upload.
func (b webBackend) SetPluginEnabled(ctx context.Context, name string, enabled bool) error {
	from, to := b.g.pluginsDir(), b.g.disabledPluginsDir()
	if enabled {
		from, to = to, from
	}
	wasm, manifest, err := readPluginFiles(from, name)
	if err != nil {
		return err
	}
	if enabled {
		if _, err := b.g.plugins.Install(ctx, wasm, manifest); err != nil {
			return err
		}
		return removePluginFiles(from, name)
	}

	if err := os.MkdirAll(to, 0o750); err != nil {
		return err
	}
	// The copy is complete and durable before the host removes the plugin.
	if err := settings.WriteFileAtomic(filepath.Join(to, name+".wasm"), wasm, 0o640); err != nil {
		return err
	}
	if err := settings.WriteFileAtomic(filepath.Join(to, name+".toml"), manifest, 0o640); err != nil {
		return err
	}
	return b.g.plugins.Remove(ctx, name)
}

func (b webBackend) PluginManifest(name string) ([]byte, error) {
	_, manifest, err := readPluginFiles(b.g.pluginsDir(), name)
	return manifest, err
}

// UpdatePluginManifest installs the plugin's module again with manifest, so
// the host validates both before the new manifest replaces the old one.
func (b webBackend) UpdatePluginManifest(ctx context.Context, name string, manifest []byte) error {
	wasm, _, err := readPluginFiles(b.g.pluginsDir(), name)
	if err != nil {
		return err
	}
	m, err := host.ParseManifest(manifest)
	if err != nil {
		return err
	}
	if m.Name != name {
		return fmt.Errorf("the manifest names plugin %q, not %q: upload a renamed plugin instead", m.Name, name)
	}
	_, err = b.g.plugins.Install(ctx, wasm, manifest)
	return err
}

// orderLine matches an order key of a manifest, and tableLine the start of
// a table, after which a key is no longer top-level.
var (
	orderLine = regexp.MustCompile(`(?m)^order\s*=.*$`)
	tableLine = regexp.MustCompile(`(?m)^\s*\[`)
)

// SetPluginOrder rewrites the order key of a plugin's manifest, keeping its
// comments, and applies it like an edited manifest.
func (b webBackend) SetPluginOrder(ctx context.Context, name string, order int) error {
	_, manifest, err := readPluginFiles(b.g.pluginsDir(), name)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("order = %d", order)
	if loc := orderLine.FindIndex(manifest); loc != nil && !tableLine.Match(manifest[:loc[0]]) {
		manifest = append(append(append([]byte(nil), manifest[:loc[0]]...), line...), manifest[loc[1]:]...)
	} else {
		// Top-level keys must precede every table, so a new key goes first.
		manifest = append([]byte(line+"\n"), manifest...)
	}
	return b.UpdatePluginManifest(ctx, name, manifest)
}

func (b webBackend) RemovePlugin(ctx context.Context, name string) error {
	if _, _, err := readPluginFiles(b.g.disabledPluginsDir(), name); err == nil {
		return removePluginFiles(b.g.disabledPluginsDir(), name)
	}
	return b.g.plugins.Remove(ctx, name)
}

func readPluginFiles(dir, name string) (wasm, manifest []byte, err error) {
	wasm, err = os.ReadFile(filepath.Join(dir, name+".wasm"))
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %s not found in %s: %w", name, dir, err)
	}
	manifest, err = os.ReadFile(filepath.Join(dir, name+".toml"))
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %s has no manifest in %s: %w", name, dir, err)
	}
	return wasm, manifest, nil
}

func removePluginFiles(dir, name string) error {
	for _, ext := range []string{".toml", ".wasm"} {
		if err := os.Remove(filepath.Join(dir, name+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
