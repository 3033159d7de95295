package store

import "sync/atomic"

// ops counts the store's round trips, so that a benchmark can say what a
// run costs: reads are the queries it ran for a caller (a method that
// runs two queries counts two), writes the write transactions it was asked
// for (each job handed to the writer, whose commits may share several, and
// Prune's delete of runs).
type ops struct {
	reads, writes atomic.Uint64
}

// Ops returns how many queries the store ran for its callers and how many
// write transactions they asked for since Open.
func (s *Store) Ops() (reads, writes uint64) {
	return s.ops.reads.Load(), s.ops.writes.Load()
}

// read counts n queries.
func (s *Store) read(n uint64) { s.ops.reads.Add(n) }
