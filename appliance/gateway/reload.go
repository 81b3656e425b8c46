package gateway

import (
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"

	"github.com/lambgate/lambgate/appliance/bounce"
	"github.com/lambgate/lambgate/appliance/policy"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/smtpd"
)

// Reload applies new settings without dropping accepted mail: spooled
// messages stay queued, open SMTP sessions finish under the settings they
// started with, and delivery targets are swapped between attempts. New
// listeners are opened before old ones close, so a failed bind leaves the
// gateway running as it was.
func (g *Gateway) Reload(written *settings.Settings) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.settings.Bound()
	s := written.Bound()

	tlsConfig, err := smtpd.TLSConfig(s.Inbound.TLSCert, s.Inbound.TLSKey, g.dataDir, s.Hostname)
	if err != nil {
		return fmt.Errorf("inbound TLS: %w", err)
	}

	if !reflect.DeepEqual(old.Interfaces, s.Interfaces) {
		g.applyNetwork(s)
	}

	if s.Admin.Listen != "" && old.Admin.Listen != s.Admin.Listen {
		// Checked before anything changes: a web setup that cannot bind
		// its new address would leave the appliance without a way in.
		l, err := net.Listen("tcp", s.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin listener %s: %w", s.Admin.Listen, err)
		}
		l.Close()
	}

	var newListeners []net.Listener
	if !slices.Equal(old.Inbound.Listen, s.Inbound.Listen) {
		for _, addr := range s.Inbound.Listen {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				for _, nl := range newListeners {
					nl.Close()
				}
				return fmt.Errorf("inbound listener %s: %w", addr, err)
			}
			newListeners = append(newListeners, l)
		}
	}

	if err := g.policy.SetConfig(policy.ConfigFrom(s, g.dataDir)); err != nil {
		closeAll(newListeners)
		return fmt.Errorf("recipient policy: %w", err)
	}
	if err := g.smtp.SetConfig(smtpd.ConfigFrom(s, tlsConfig)); err != nil {
		closeAll(newListeners)
		return fmt.Errorf("inbound SMTP: %w", err)
	}
	g.queue.SetConfig(g.queueConfig(s))

	if !reflect.DeepEqual(old.Internal, s.Internal) {
		target, err := g.newInboundDeliverer(s)
		if err != nil {
			closeAll(newListeners)
			return err
		}
		g.inbound.swap(target)
		g.log.Info("delivery target changed", "server", s.Internal.Server)
	}
	if !reflect.DeepEqual(old.Bounce, s.Bounce) || old.Hostname != s.Hostname {
		bcfg := bounce.ConfigFromSettings(s)
		mx, err := bounce.NewMXDeliverer(bcfg, g.log)
		if err != nil {
			closeAll(newListeners)
			return fmt.Errorf("bounce sender: %w", err)
		}
		b, err := bounce.NewBouncer(bcfg, g.submitBounce, g.log)
		if err != nil {
			closeAll(newListeners)
			return fmt.Errorf("bounce sender: %w", err)
		}
		g.mx.swap(mx)
		g.bouncer.swap(b)
	}

	if newListeners != nil {
		g.closeListeners()
		g.listeners = newListeners
		for _, l := range newListeners {
			go g.serve(l)
		}
	}
	if old.Admin.Listen != s.Admin.Listen {
		g.restartAdmin(s)
	}

	g.settings = written
	if g.level != nil {
		var l slog.Level
		if err := l.UnmarshalText([]byte(s.Log.Level)); err == nil {
			g.level.Set(l)
		}
	}
	// Mail deferred under the old settings may be deliverable now.
	g.queue.Kick()
	g.logReady(s)
	return nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}
