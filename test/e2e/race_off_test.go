//go:build !race

package e2e_test

// raceEnabled says the tests run with -race, so the children are built
// with it too.
const raceEnabled = false
