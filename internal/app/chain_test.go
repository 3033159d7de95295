package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// A new database beside a log that has records is how a cut would be
// hidden (delete the database, cut the log): it does not pass.
func TestANewDatabaseBesideAnOldLogDoesNotPass(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logDir := filepath.Join(dir, "audit")
	alog, err := audit.Open(logDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := alog.Append(t.Context(), audit.Record{Kind: audit.KindReceived}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		if err := alog.Close(); err != nil {
			t.Error(err)
		}
	})
	err = checkAuditChain(t.Context(), st, logDir, nil, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "holds no audit head but the log holds 3 records") {
		t.Fatalf("a new database beside a log of 3 records: got %v, want it refused", err)
	}
	// An empty log beside a new database is a new healer: it passes.
	empty := filepath.Join(dir, "audit-empty")
	if err := os.MkdirAll(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkAuditChain(t.Context(), st, empty, nil, testenv.Logger(t)); err != nil {
		t.Errorf("a new healer: %v", err)
	}
}
