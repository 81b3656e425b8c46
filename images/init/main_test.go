package main

import (
	"reflect"
	"testing"

	"github.com/lambgate/lambgate/appliance/settings"
)

func TestDHCPInterfacesFollowSettings(t *testing.T) {
	withInterfaces := settings.Default()
	withInterfaces.Interfaces = []settings.Interface{
		{Name: "wan", DHCP: true},
		{Name: "lan", Addresses: []string{"192.0.2.10/24"}},
		{Name: "bounce", DHCP: true},
	}
	for _, tc := range []struct {
		name string
		s    *settings.Settings
		want []string
	}{
		{"unreadable settings", nil, []string{"eth0"}},
		{"no interfaces", settings.Default(), []string{"eth0"}},
		{"dhcp interfaces only", withInterfaces, []string{"wan", "bounce"}},
	} {
		if got := dhcpInterfaces(tc.s); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: dhcpInterfaces = %q, want %q", tc.name, got, tc.want)
		}
	}
}
