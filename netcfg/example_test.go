package netcfg_test

import (
	"fmt"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/netcfg"
)

// The default layout: wan carries inbound and bounce with a second address
// for bounces, lan carries internal and admin.
func ExampleNewPlan() {
	ifaces := []settings.Interface{
		{
			Name:          "wan",
			Roles:         []string{"inbound", "bounce"},
			Addresses:     []string{"192.0.2.10/24", "192.0.2.20/24"},
			BounceAddress: "192.0.2.20",
			Gateway:       "192.0.2.1",
		},
		{
			Name:      "lan",
			Roles:     []string{"internal", "admin"},
			Addresses: []string{"198.51.100.10/24"},
		},
	}
	p, err := netcfg.NewPlan(ifaces, []string{"lo", "wan", "lan"}, "/tmp/resolv.conf")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range p.Routes {
		fmt.Println("route", r)
	}
	for _, r := range p.Rules {
		fmt.Println("rule", r)
	}

	ifaces[0].BounceAddress = "192.0.2.10"
	_, err = netcfg.NewPlan(ifaces, []string{"lo", "wan", "lan"}, "/tmp/resolv.conf")
	fmt.Println(err)
	// Output:
	// route default via 192.0.2.1 dev wan src 192.0.2.10
	// route 192.0.2.0/24 dev wan src 192.0.2.20 table 200
	// route default via 192.0.2.1 dev wan src 192.0.2.20 table 200
	// rule from 192.0.2.20/32 lookup 200 priority 1000
	// interface[0].bounce_address: wan: 192.0.2.10 is the first address, which inbound uses: bounces need a separate address
}
