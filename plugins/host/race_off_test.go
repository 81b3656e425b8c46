//go:build !race

package host

// raceEnabled is set when the tests run under the race detector, whose
// shadow memory makes resident memory figures meaningless.
const raceEnabled = false
