package settings

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written as "5m" or "120h" in the settings file.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, such as 30s, 5m or 120h", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the value in Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}
