package settings

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultFileMatchesDefault(t *testing.T) {
	s, err := Parse(DefaultFile())
	if err != nil {
		t.Fatalf("default file does not parse: %v", err)
	}
	// Decoding an empty TOML array gives a non-nil empty slice.
	s.Recipients.Static = nil
	if !reflect.DeepEqual(s, Default()) {
		t.Errorf("default file and Default() differ:\nfile:    %+v\ndefault: %+v", s, Default())
	}
}

func TestLoadWritesDefaultOnFirstRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, created, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false on an empty directory")
	}
	if s.Domains.Relay[0] != "example.test" {
		t.Errorf("relay domains = %v", s.Domains.Relay)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Errorf("settings file not written: %v", err)
	}
	_, created, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second load rewrote the file")
	}
}

func TestParseNamesBadKey(t *testing.T) {
	cases := []struct {
		name, file, key string
	}{
		{"unknown policy", "[recipients]\nunknown = \"bounce-all\"\n", "recipients.unknown"},
		{"bad listen", "[inbound]\nlisten = [\"nowhere\"]\n", "inbound.listen"},
		{"no relay domain", "[domains]\nrelay = []\n", "domains.relay"},
		{"bad domain", "[domains]\nrelay = [\"exa mple.test\"]\n", "domains.relay"},
		{"callout without server", "[recipients]\nvalidation = \"callout\"\n", "recipients.validation"},
		{"bad duration", "[queue]\nmin_backoff = \"soon\"\n", ""},
		{"backoff order", "[queue]\nmin_backoff = \"2h\"\nmax_backoff = \"1h\"\n", "queue.max_backoff"},
		{"bad source", "[bounce]\nsource_address = \"bounce-host\"\n", "bounce.source_address"},
		{"zero limit", "[inbound]\nmax_recipients = 0\n", "inbound.max_recipients"},
		{"short line", "[inbound]\nmax_line_length = 80\n", "inbound.max_line_length"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.file))
			if err == nil {
				t.Fatal("accepted")
			}
			if c.key == "" {
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not a validation error", err)
			}
			if errs[0].Key != c.key {
				t.Errorf("key = %q, want %q (%v)", errs[0].Key, c.key, err)
			}
		})
	}
}

func TestParseNamesKeyOfBadDuration(t *testing.T) {
	_, err := Parse([]byte("[inbound]\ncommand_timeout = \"3 seconds\"\n"))
	if err == nil || !strings.Contains(err.Error(), "inbound.command_timeout") {
		t.Errorf("error = %v, want one naming inbound.command_timeout", err)
	}
}

func TestParseRejectsUnknownKey(t *testing.T) {
	_, err := Parse([]byte("[inbound]\nmax_conections = 5\n"))
	if err == nil || !strings.Contains(err.Error(), "inbound.max_conections") {
		t.Errorf("error = %v, want one naming inbound.max_conections", err)
	}
}

func TestSaveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := Default()
	s.Domains.Relay = []string{"example.org", "example.net"}
	s.Recipients.Unknown = UnknownBounce
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Domains.Relay, s.Domains.Relay) {
		t.Errorf("relay = %v", got.Domains.Relay)
	}
	if got.Recipients.Unknown != UnknownBounce {
		t.Errorf("unknown = %q", got.Recipients.Unknown)
	}
}

func TestParseOverKeepsUnnamedKeys(t *testing.T) {
	base := Default()
	base.Internal.Server = "127.0.0.1:2600"
	base.Inbound.SPF = false
	base.Bounce.RequireSPFPass = false

	got, err := ParseOver(base, []byte("[domains]\nrelay = [\"example.org\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Domains.Relay, []string{"example.org"}) {
		t.Errorf("relay = %v, want the imported [example.org]", got.Domains.Relay)
	}
	if got.Internal.Server != "127.0.0.1:2600" {
		t.Errorf("internal.server = %q, want the current value kept", got.Internal.Server)
	}
	if got.Inbound.SPF {
		t.Error("inbound.spf went back to its default")
	}
	if base.Domains.Relay[0] != "example.test" {
		t.Errorf("ParseOver changed its base: %v", base.Domains.Relay)
	}
}

func TestParseOverRejectsEmptyFile(t *testing.T) {
	if _, err := ParseOver(Default(), []byte("  \n")); err == nil {
		t.Error("an empty import was accepted")
	}
}
