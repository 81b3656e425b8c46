package builder

import (
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

func TestUTCZoneInfoParsesAsUTC(t *testing.T) {
	loc, err := time.LoadLocationFromTZData("UTC", utcZoneInfo())
	if err != nil {
		t.Fatalf("Go's TZif parser rejects the zone file: %v", err)
	}
	name, offset := time.Date(2026, 7, 1, 12, 0, 0, 0, loc).Zone()
	if name != "UTC" {
		t.Errorf("zone abbreviation %q, want UTC", name)
	}
	if offset != 0 {
		t.Errorf("zone offset %d s, want 0", offset)
	}
}

func TestPartitionGUIDsDependOnHostname(t *testing.T) {
	diskA, partsA, sigA := partitionGUIDs("mx1")
	diskB, partsB, sigB := partitionGUIDs("mx1")
	_, partsC, sigC := partitionGUIDs("mx2")
	if diskA != diskB || partsA != partsB || sigA != sigB {
		t.Error("the same hostname gave different GUIDs")
	}
	if partsA[0] == partsC[0] || sigA == sigC {
		t.Error("different hostnames gave the same boot GUID or MBR signature")
	}
	seen := map[string]bool{diskA.String(): true}
	for i, g := range partsA {
		if seen[g.String()] {
			t.Errorf("partition %d reuses GUID %s", i+1, g)
		}
		seen[g.String()] = true
	}
}

func TestDefaultSettingsListenOnPort25(t *testing.T) {
	data, err := DefaultSettings("mx1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := settings.Parse(data)
	if err != nil {
		t.Fatalf("baked-in default settings do not parse: %v", err)
	}
	if len(s.Inbound.Listen) != 1 || s.Inbound.Listen[0] != "0.0.0.0:25" {
		t.Errorf("inbound listen = %q, want [0.0.0.0:25]", s.Inbound.Listen)
	}
	if s.Hostname != "mx1" {
		t.Errorf("hostname = %q, want mx1", s.Hostname)
	}
}

func TestValidateRejectsBadOptions(t *testing.T) {
	good := Options{Output: "x.img", Size: MinSize, Hostname: "mx1", Password: "pw"}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"small size", func(o *Options) { o.Size = MinSize - 512 }, "below the minimum"},
		{"odd size", func(o *Options) { o.Size = MinSize + 1 }, "multiple of 512"},
		{"no output", func(o *Options) { o.Output = "" }, "no output file"},
		{"hostname with space", func(o *Options) { o.Hostname = "mx 1" }, "invalid hostname"},
		{"no password", func(o *Options) { o.Password = "" }, "no password"},
		{"invalid settings", func(o *Options) { o.Settings = []byte("no_such_key = 1\n") }, "baked-in settings"},
	} {
		opts := good
		tc.change(&opts)
		err := validate(&opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: validate = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	opts := good
	if err := validate(&opts); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
