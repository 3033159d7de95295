package action

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// pfKthread is PF_KTHREAD in /proc/<pid>/stat's flags: a kernel thread.
const pfKthread = 0x00200000

// procStat is what the actions read of /proc/<pid>/stat.
type procStat struct {
	PID       int
	Comm      string
	State     byte
	PPID      int
	PGrp      int
	Flags     uint64
	StartTime uint64
}

// readStat reads <procRoot>/<pid>/stat. A missing process is an error
// wrapping os.ErrNotExist.
func readStat(procRoot string, pid int) (procStat, error) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseStat(pid, b)
}

// parseStat parses a /proc/<pid>/stat line. The command name sits between
// the first '(' and the last ')' and may hold spaces and parentheses.
func parseStat(pid int, b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("stat of pid %d: no command name", pid)
	}
	// The kernel writes "PID (comm) ...": the file must be this process's.
	if want := strconv.Itoa(pid) + " "; open != len(want) || string(b[:open]) != want {
		return procStat{}, fmt.Errorf("stat of pid %d: it does not start with the pid", pid)
	}
	fields := bytes.Fields(b[end+1:])
	// After the name: state(3) ppid(4) pgrp session tty tpgid flags(9) ...
	// starttime(22); fields[0] is field 3.
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("stat of pid %d: %d fields after the name, want at least 20", pid, len(fields))
	}
	s := procStat{PID: pid, Comm: string(b[open+1 : end]), State: fields[0][0]}
	var err1, err2, err3, err4 error
	s.PPID, err1 = strconv.Atoi(string(fields[1]))
	s.PGrp, err4 = strconv.Atoi(string(fields[2]))
	s.Flags, err2 = strconv.ParseUint(string(fields[6]), 10, 64)
	s.StartTime, err3 = strconv.ParseUint(string(fields[19]), 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return procStat{}, fmt.Errorf("stat of pid %d: %w", pid, err)
	}
	return s, nil
}

// signalProcess sends sig to pid through a pidfd, after checking with
// same that the process the pidfd holds is the one the caller vetted (its
// start time), so that a pid reused in between is not signalled. A process
// that is gone is an error wrapping os.ErrProcessDone.
func signalProcess(pid int, sig unix.Signal, same func() error) error {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
	case errors.Is(err, unix.ENOSYS):
		// Linux before 5.3: check and signal as close together as we
		// can.
		if err := same(); err != nil {
			return err
		}
		if err := unix.Kill(pid, sig); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
			}
			return fmt.Errorf("signal pid %d: %w", pid, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer func() { _ = unix.Close(fd) }()
	if err := same(); err != nil {
		return err
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
		}
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	return nil
}
