package audit

import (
	"bytes"
	"fmt"
	"os"
)

// MinKeyBytes is the shortest key ReadKeyFile accepts: as many bytes as
// the HMAC-SHA256 it keys.
const MinKeyBytes = 32

// ReadKeyFile reads the key of a keyed chain (Options.Key) from path: the
// file's bytes, surrounding whitespace (a final newline) trimmed. It
// refuses a key shorter than MinKeyBytes and a file that anyone but its
// owner and group may read or write. Errors never hold the key.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("audit key file %s has mode %04o: others may read or write it; want at most 0640", path, perm)
	}
	b := make([]byte, 0, 128)
	buf := bytes.NewBuffer(b)
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("audit key file %s: %w", path, err)
	}
	key := bytes.TrimSpace(buf.Bytes())
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("audit key file %s holds %d bytes; want at least %d (e.g. head -c 32 /dev/urandom | base64)", path, len(key), MinKeyBytes)
	}
	return key, nil
}
