//go:build race

package testenv

// race says the tests run with -race, so the binaries they build are
// built with it too.
const race = true
