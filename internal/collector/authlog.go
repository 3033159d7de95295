package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// AuthServices are the services whose authentication failures are counted;
// failures of any other PAM service count as "other".
var AuthServices = [...]string{"login", "other", "sshd", "su", "sudo"}

// DefaultAuthLogs are the auth logs of Debian-like and Red Hat-like systems.
// The first one that exists is read.
var DefaultAuthLogs = []string{"/var/log/auth.log", "/var/log/secure"}

// parseAuthLine classifies one syslog line of an auth log. It returns the
// service whose authentication failed, or "" when the line is not a failure.
//
// Counted: sshd's "Failed <method> for <user>" (once per attempt) and
// "Invalid user" (once per connection; the "Failed ... for invalid user"
// lines that may follow are not counted again), and PAM's "authentication
// failure" for every other service. sshd's own PAM line is skipped, since
// sshd logs the same attempt itself.
func parseAuthLine(line string) string {
	prog, msg, ok := splitSyslog(line)
	if !ok {
		return ""
	}
	return classifyAuth(prog, msg)
}

// authFailures is parseAuthLine that also unwraps rsyslog's repeated-message
// reduction ("message repeated 3 times: [ Failed password for ...]", on by
// default on Ubuntu), returning how many failures the line stands for.
func authFailures(line string) (string, int) {
	prog, msg, ok := splitSyslog(line)
	if !ok {
		return "", 0
	}
	n := 1
	if rest, ok := strings.CutPrefix(msg, "message repeated "); ok {
		count, inner, ok := strings.Cut(rest, " times: [")
		v, err := strconv.Atoi(count)
		if !ok || err != nil || v < 1 {
			return "", 0
		}
		n, msg = v, strings.TrimSuffix(strings.TrimPrefix(inner, " "), "]")
	}
	svc := classifyAuth(prog, msg)
	if svc == "" {
		return "", 0
	}
	return svc, n
}

func classifyAuth(prog, msg string) string {
	if prog == "sshd" || prog == "sshd-session" {
		switch {
		case strings.HasPrefix(msg, "Failed ") && strings.Contains(msg, " for ") && !strings.Contains(msg, " for invalid user "):
			return "sshd"
		case strings.HasPrefix(msg, "Invalid user "):
			return "sshd"
		}
		return ""
	}
	// pam_unix(sudo:auth): authentication failure; logname=...
	i := strings.Index(msg, ":auth): authentication failure")
	if i < 0 {
		return ""
	}
	open := strings.LastIndexByte(msg[:i], '(')
	if open < 0 {
		return ""
	}
	switch svc := msg[open+1 : i]; svc {
	case "sshd":
		return ""
	case "sudo", "login":
		return svc
	case "su", "su-l":
		return "su"
	default:
		return "other"
	}
}

// splitSyslog splits a syslog line into the program name and the message,
// after an RFC 3164 ("Nov 23 19:16:51 host prog[pid]: msg") or RFC 3339
// ("2026-11-23T19:16:51.123+00:00 host prog[pid]: msg") header. A line whose
// header is not one of these (no timestamp, no host, no program name, a pid
// that is not a number) is not split: its failures are not counted.
func splitSyslog(line string) (prog, msg string, ok bool) {
	rest, ok := cutSyslogTime(line)
	if !ok {
		return "", "", false
	}
	rest = strings.TrimLeft(rest, " ")
	i := strings.IndexByte(rest, ' ')
	if i < 0 {
		return "", "", false // no host, or nothing after it
	}
	rest = strings.TrimLeft(rest[i:], " ")
	tag, msg, ok := strings.Cut(rest, ": ")
	if !ok || tag == "" || strings.ContainsRune(tag, ' ') {
		return "", "", false
	}
	prog, pid, hasPID := strings.Cut(tag, "[")
	if prog == "" {
		return "", "", false
	}
	if hasPID {
		if pid, ok := strings.CutSuffix(pid, "]"); !ok || !isDecimal(pid) {
			return "", "", false
		}
	}
	return prog, msg, true
}

// cutSyslogTime returns what follows a syslog line's timestamp and the
// space after it: RFC 3164's "Nov 23 19:16:51" (the day padded with a space
// below 10) or an RFC 3339 time, as rsyslog's high-precision format writes.
func cutSyslogTime(line string) (string, bool) {
	if len(line) > 0 && line[0] >= 'A' && line[0] <= 'Z' {
		n := len(time.Stamp)
		if len(line) <= n || line[n] != ' ' {
			return "", false
		}
		if _, err := time.Parse(time.Stamp, line[:n]); err != nil {
			return "", false
		}
		return line[n+1:], true
	}
	ts, rest, ok := strings.Cut(line, " ")
	if !ok {
		return "", false
	}
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return "", false
	}
	return rest, true
}

// authPosition is where the tail stopped, kept across restarts.
type authPosition struct {
	Path   string `json:"path"`
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

// Authlog counts authentication failures by service by tailing the system
// auth log. It follows rotation (rename: the rest of the old file is read
// through the open descriptor, then the new file from its start; copy and
// truncate: the file is read again from its start), reads at most MaxRead
// bytes a scrape, and keeps its position in StateFile so that a restart
// neither counts old lines again nor skips new ones. With no saved position
// it starts at the end of the log.
type Authlog struct {
	Paths     Paths
	Files     []string // candidates; the first that exists is tailed
	StateFile string
	MaxRead   int64

	f          *os.File
	pos        authPosition
	loaded     bool
	partial    []byte // the unfinished last line, cut at 64 KiB
	partialLen int64  // its full length
	counts     map[string]float64
}

// Update implements Collector.
func (c *Authlog) Update(_ context.Context, w *Writer) error {
	if c.counts == nil {
		c.counts = make(map[string]float64, len(AuthServices))
		for _, s := range AuthServices {
			c.counts[s] = 0
		}
	}
	err := c.tail()
	w.Family("deus_auth_failures_total", Counter, "Authentication failures read from the auth log, by service.")
	for _, s := range AuthServices {
		w.Sample("deus_auth_failures_total", c.counts[s], "service", s)
	}
	return err
}

func (c *Authlog) tail() (err error) {
	path := ""
	var st os.FileInfo
	for _, p := range c.Files {
		if s, err := os.Stat(c.Paths.rootPath(p)); err == nil {
			path, st = c.Paths.rootPath(p), s
			break
		}
	}
	if path == "" {
		if c.f != nil {
			// The log is gone (rotated, not yet recreated): drain the old
			// file, and save how far, or a restart would count it again.
			if _, err := c.read(); err != nil {
				return err
			}
			return c.save()
		}
		return fmt.Errorf("none of %s: %w", strings.Join(c.Files, ", "), ErrNoData)
	}
	inode := inodeOf(st)

	if !c.loaded {
		c.loaded = true
		var saved authPosition
		if c.StateFile != "" {
			if lerr := loadState(c.StateFile, &saved); lerr != nil {
				// A position that cannot be read is no position: start at
				// the end as on a first run (the state is rewritten below)
				// rather than at offset 0 of the log on the next scrape.
				saved = authPosition{}
				defer func() { err = errors.Join(lerr, err) }()
			}
		}
		switch {
		case saved.Path == path && saved.Inode == inode && saved.Offset <= st.Size():
			c.pos = saved
		case saved.Path == path && saved.Inode != 0:
			// Rotated while we were down: finish the old file if it is the
			// usual ".1", as after a rename seen while running (below), then
			// start the new one from the top.
			c.pos = authPosition{Path: path, Inode: inode}
			if old := openRotated(path+".1", saved); old != nil {
				c.f, c.pos = old, saved
			}
		default:
			c.pos = authPosition{Path: path, Inode: inode, Offset: st.Size()}
		}
	}

	if c.f != nil && c.pos.Inode != inode {
		// Renamed away: what was appended before the rename is still ours.
		eof, err := c.read()
		if err != nil {
			return err
		}
		if !eof {
			// MaxRead reached: finish the old file on the next scrape
			// before moving on, or its rest would be lost.
			return c.save()
		}
		c.f.Close()
		c.f = nil
		c.pos = authPosition{Path: path, Inode: inode}
		c.partial, c.partialLen = c.partial[:0], 0
	}
	if c.f == nil {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		c.f = f
		s, err := f.Stat()
		if err != nil {
			return err
		}
		if inodeOf(s) != c.pos.Inode {
			c.pos = authPosition{Path: path, Inode: inodeOf(s)}
		}
		if _, err := f.Seek(c.pos.Offset, io.SeekStart); err != nil {
			return err
		}
	}
	if st.Size() < c.pos.Offset {
		// Truncated in place (copytruncate): start over.
		c.pos.Offset = 0
		c.partial, c.partialLen = c.partial[:0], 0
		if _, err := c.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	if _, err := c.read(); err != nil {
		return err
	}
	return c.save()
}

// save keeps the position in StateFile, if there is one.
func (c *Authlog) save() error {
	if c.StateFile == "" {
		return nil
	}
	return saveState(c.StateFile, c.pos)
}

// openRotated opens a rotated log at the saved position, if the file at path
// is the one the position belongs to. It returns nil when it is not.
func openRotated(path string, saved authPosition) *os.File {
	old, err := os.Open(path)
	if err != nil {
		return nil // rotated away further, or compressed: nothing to recover
	}
	s, err := old.Stat()
	if err != nil || inodeOf(s) != saved.Inode {
		old.Close()
		return nil
	}
	if _, err := old.Seek(saved.Offset, io.SeekStart); err != nil {
		old.Close()
		return nil
	}
	return old
}

// read consumes complete lines from the open file, up to MaxRead bytes. It
// reports whether it reached the end of the file.
func (c *Authlog) read() (eof bool, err error) {
	limit := c.MaxRead
	if limit <= 0 {
		limit = 64 << 20
	}
	buf := make([]byte, 64*1024)
	var total int64
	for total < limit {
		n, err := c.f.Read(buf)
		if n > 0 {
			total += int64(n)
			c.consume(buf[:n])
		}
		if errors.Is(err, io.EOF) || n == 0 {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// consume counts the complete lines in b and keeps an unfinished last line
// for the next read. The saved offset points past complete lines only.
func (c *Authlog) consume(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if room := 64*1024 - len(c.partial); room > 0 { // a longer line is cut, not hoarded
				c.partial = append(c.partial, b[:min(room, len(b))]...)
			}
			c.partialLen += int64(len(b))
			return
		}
		line := b[:i]
		if len(c.partial) > 0 {
			line = append(c.partial, line...)
		}
		if svc, n := authFailures(string(line)); svc != "" {
			c.counts[svc] += float64(n)
		}
		c.pos.Offset += c.partialLen + int64(i) + 1
		c.partial, c.partialLen = c.partial[:0], 0
		b = b[i+1:]
	}
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
