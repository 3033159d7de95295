//go:build race

package healer_test

// raceEnabled says the tests run with -race, so the healer is built with it
// too.
const raceEnabled = true
