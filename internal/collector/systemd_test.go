package collector

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// fakeManager answers org.freedesktop.systemd1.Manager.GetUnit like systemd:
// an object path for a loaded unit, NoSuchUnit for any other.
type fakeManager struct{ units map[string]dbus.ObjectPath }

func (m fakeManager) GetUnit(name string) (dbus.ObjectPath, *dbus.Error) {
	if p, ok := m.units[name]; ok {
		return p, nil
	}
	return "", dbus.NewError(errNoSuchUnit, []any{"Unit " + name + " not loaded."})
}

// startBus runs a private dbus-daemon and returns its address.
func startBus(t *testing.T) string {
	t.Helper()
	bin := testenv.Binary(t, "dbus-daemon")
	sock := filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command(bin, "--session", "--nofork", "--print-address=1", "--address=unix:path="+sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n') // printed once the bus listens
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// fakeSystemd serves systemd's manager and unit objects on the bus.
func fakeSystemd(t *testing.T, addr string, states map[string]string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	m := fakeManager{units: map[string]dbus.ObjectPath{}}
	for unit, state := range states {
		path := dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + strings.NewReplacer(".", "_2e", "-", "_2d").Replace(unit))
		m.units[unit] = path
		if _, err := prop.Export(conn, path, prop.Map{systemdUnit: {"ActiveState": {Value: state}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Export(m, systemdPath, systemdManager); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(systemdDest, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName(%s) = %v, %v", systemdDest, reply, err)
	}
}

func TestSystemdCheckerAsksSystemdOverDBus(t *testing.T) {
	t.Parallel()
	addr := startBus(t)
	fakeSystemd(t, addr, map[string]string{
		"nginx.service":     "active",
		"postgres.service":  "failed",
		"haproxy.service":   "reloading",
		"cron.service":      "inactive",
		"docker.socket":     "active",
		"sshd-keys.service": "activating",
	})
	c := &SystemdChecker{Address: addr}
	names := []string{"nginx", "postgres.service", "haproxy", "cron", "docker.socket", "sshd-keys", "absent"}
	up, err := c.Up(t.Context(), names)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"nginx": true, "postgres.service": false, "haproxy": true, "cron": false,
		"docker.socket": true, "sshd-keys": false, "absent": false,
	}
	for _, n := range names {
		if up[n] != want[n] {
			t.Errorf("Up(%q) = %v; want %v", n, up[n], want[n])
		}
	}
}

func TestSystemdCheckerReportsALostBus(t *testing.T) {
	t.Parallel()
	c := &SystemdChecker{Address: "unix:path=" + filepath.Join(t.TempDir(), "no-bus")}
	if _, err := c.Up(t.Context(), []string{"nginx"}); err == nil {
		t.Error("Up on a bus that does not exist returned no error")
	}
}
