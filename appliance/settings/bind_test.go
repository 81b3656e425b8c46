package settings

import (
	"errors"
	"testing"
)

func applianceSettings() *Settings {
	s := Default()
	s.Inbound.Listen = []string{"0.0.0.0:25"}
	s.Admin.Listen = ":8443"
	s.Interfaces = []Interface{
		{
			Name:          "wan",
			Roles:         []string{RoleInbound, RoleBounce},
			Addresses:     []string{"192.0.2.10/24", "192.0.2.20/24"},
			BounceAddress: "192.0.2.20",
			Gateway:       "192.0.2.1",
		},
		{
			Name:      "lan",
			Roles:     []string{RoleInternal, RoleAdmin},
			Addresses: []string{"198.51.100.10/24"},
		},
	}
	return s
}

func TestBoundFillsRoleAddresses(t *testing.T) {
	s := applianceSettings()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	b := s.Bound()
	if got := b.Inbound.Listen[0]; got != "192.0.2.10:25" {
		t.Errorf("inbound listen = %q, want 192.0.2.10:25", got)
	}
	if got := b.Admin.Listen; got != "198.51.100.10:8443" {
		t.Errorf("admin listen = %q, want 198.51.100.10:8443", got)
	}
	if got := b.Bounce.SourceAddress; got != "192.0.2.20" {
		t.Errorf("bounce source = %q, want 192.0.2.20", got)
	}
	if got := b.Bounce.Interface; got != "wan" {
		t.Errorf("bounce interface = %q, want wan", got)
	}
	if got := b.Internal.SourceAddress; got != "198.51.100.10" {
		t.Errorf("internal source = %q, want 198.51.100.10", got)
	}
	if s.Inbound.Listen[0] != "0.0.0.0:25" {
		t.Errorf("Bound changed the original: %q", s.Inbound.Listen[0])
	}
}

func TestBoundWithoutInterfacesKeepsValues(t *testing.T) {
	s := Default()
	b := s.Bound()
	if b.Inbound.Listen[0] != s.Inbound.Listen[0] || b.Bounce.SourceAddress != "" {
		t.Errorf("Bound changed a development setup: %+v", b.Inbound)
	}
}

func TestListenOnOtherRoleRejected(t *testing.T) {
	s := applianceSettings()
	// The web setup on the internet-facing address.
	s.Admin.Listen = "192.0.2.10:8443"
	var errs Errors
	if err := s.Validate(); !errors.As(err, &errs) || errs[0].Key != "admin.listen" {
		t.Errorf("admin on the inbound address: err = %v, want an admin.listen error", err)
	}

	s = applianceSettings()
	s.Inbound.Listen = []string{"198.51.100.10:25"}
	if err := s.Validate(); !errors.As(err, &errs) || errs[0].Key != "inbound.listen" {
		t.Errorf("inbound on the lan address: err = %v, want an inbound.listen error", err)
	}
}

func TestParseOverKeepsInterfaces(t *testing.T) {
	base := applianceSettings()
	got, err := ParseOver(base, []byte("[log]\nlevel = \"debug\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Interfaces) != 2 || got.Interfaces[0].Name != "wan" {
		t.Errorf("interfaces = %+v, want the two current ones", got.Interfaces)
	}

	got, err = ParseOver(base, []byte("[[interface]]\nname = \"eth0\"\nroles = [\"inbound\", \"bounce\", \"internal\", \"admin\"]\naddresses = [\"192.0.2.10/24\", \"192.0.2.20/24\"]\nbounce_address = \"192.0.2.20\"\ngateway = \"192.0.2.1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Interfaces) != 1 || got.Interfaces[0].Name != "eth0" {
		t.Errorf("interfaces = %+v, want only the imported eth0", got.Interfaces)
	}
}
