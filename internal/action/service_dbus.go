package action

import (
	"context"
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
)

const (
	systemdDest    = "org.freedesktop.systemd1"
	systemdPath    = dbus.ObjectPath("/org/freedesktop/systemd1")
	systemdManager = "org.freedesktop.systemd1.Manager"
)

// errNoBus is wrapped when the system bus cannot be reached: nothing was
// asked of systemd.
var errNoBus = errors.New("system bus unavailable")

// restartViaDBus asks systemd to restart unit (mode "replace") and waits
// for the job to finish. It listens for JobRemoved before it asks, so the
// job cannot finish unseen.
func restartViaDBus(ctx context.Context, unit string) error {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: %w", errNoBus, err)
	}
	defer conn.Close()
	err = conn.AddMatchSignalContext(ctx,
		dbus.WithMatchObjectPath(systemdPath),
		dbus.WithMatchInterface(systemdManager),
		dbus.WithMatchMember("JobRemoved"))
	if err != nil {
		return retryable(fmt.Errorf("subscribe to systemd jobs: %w", err))
	}
	ch := make(chan *dbus.Signal, 64)
	conn.Signal(ch)
	defer conn.RemoveSignal(ch)
	obj := conn.Object(systemdDest, systemdPath)
	// systemd sends job signals only to clients that subscribed.
	if err := obj.CallWithContext(ctx, systemdManager+".Subscribe", 0).Err; err != nil {
		return retryable(fmt.Errorf("subscribe to systemd: %w", err))
	}
	var job dbus.ObjectPath
	if err := obj.CallWithContext(ctx, systemdManager+".RestartUnit", 0, unit, "replace").Store(&job); err != nil {
		var derr dbus.Error
		if errors.As(err, &derr) {
			// systemd answered with an error: no job was queued.
			return retryable(fmt.Errorf("restart %s: %w", unit, err))
		}
		return final(fmt.Errorf("restart %s: %w", unit, err))
	}
	return waitJob(ctx, ch, job)
}

// waitJob waits for the JobRemoved signal of job and returns an error
// unless its result is "done".
func waitJob(ctx context.Context, ch <-chan *dbus.Signal, job dbus.ObjectPath) error {
	for {
		select {
		case <-ctx.Done():
			return final(fmt.Errorf("wait for systemd job %s: %w", job, ctx.Err()))
		case s, ok := <-ch:
			if !ok {
				return final(fmt.Errorf("wait for systemd job %s: bus connection closed", job))
			}
			if s == nil || s.Name != systemdManager+".JobRemoved" || len(s.Body) < 4 {
				continue
			}
			// JobRemoved(u id, o job, s unit, s result)
			if path, _ := s.Body[1].(dbus.ObjectPath); path != job {
				continue
			}
			unit, _ := s.Body[2].(string)
			result, _ := s.Body[3].(string)
			if result != "done" {
				return final(fmt.Errorf("systemd job %s for %s finished with result %q", job, unit, result))
			}
			return nil
		}
	}
}
