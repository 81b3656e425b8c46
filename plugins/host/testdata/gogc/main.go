//go:build wasip1

// Command gogc allocates 64 KiB of garbage per call, to check that the Go
// SDK keeps the guest's garbage collector running between export calls.
package main

import "github.com/lambgate/lambgate/sdk/go/lambgate"

func main() {}

var sink []byte

func init() {
	lambgate.OnConnect(func() lambgate.Action {
		for range 16 {
			sink = make([]byte, 4096)
		}
		return lambgate.Continue
	})
}
