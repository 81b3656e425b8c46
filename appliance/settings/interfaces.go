package settings

// Interface is one network interface and the roles it carries.
// TODO: addresses, routes, DHCP and the bounce role's policy routing.
type Interface struct {
	Name  string   `toml:"name"`
	Roles []string `toml:"roles"`
}

func (s *Settings) validateInterfaces() Errors { return nil }
