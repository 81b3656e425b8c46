package main

import "testing"

func TestParseSizeUnits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"2G", 2 << 30},
		{"1500M", 1500 << 20},
		{"512K", 512 << 10},
		{"1048576", 1 << 20},
	} {
		got, err := parseSize(tc.in)
		if err != nil {
			t.Errorf("parseSize(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseSize(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseSizeRejectsInvalid(t *testing.T) {
	for _, in := range []string{"", "G", "-1G", "2T", "1.5G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted an invalid size", in)
		}
	}
}
