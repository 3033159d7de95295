package collector

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuthOffenders(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	since := now.Add(-15 * time.Minute)
	tests := []struct {
		name    string
		service string
		log     string
		want    map[netip.Addr]int
	}{
		{
			name:    "sshd failures are counted by the address they came from",
			service: "sshd",
			log: "Mar  1 11:58:01 web1 sshd[101]: Failed password for root from 203.0.113.9 port 51000 ssh2\n" +
				"Mar  1 11:58:02 web1 sshd[101]: Failed password for root from 203.0.113.9 port 51000 ssh2\n" +
				"Mar  1 11:58:03 web1 sshd[102]: Invalid user admin from 198.51.100.4 port 40000\n" +
				"Mar  1 11:58:04 web1 sshd[102]: Failed password for invalid user admin from 198.51.100.4 port 40000 ssh2\n" +
				"Mar  1 11:58:05 web1 sshd[103]: Accepted publickey for alice from 192.0.2.1 port 22 ssh2\n",
			want: map[netip.Addr]int{netip.MustParseAddr("203.0.113.9"): 2, netip.MustParseAddr("198.51.100.4"): 1},
		},
		{
			name:    "a user name that says from another address does not move the failure there",
			service: "sshd",
			log:     "Mar  1 11:58:01 web1 sshd[101]: Invalid user x from 10.0.0.1 port 1 from 203.0.113.9 port 51000\n",
			want:    map[netip.Addr]int{netip.MustParseAddr("203.0.113.9"): 1},
		},
		{
			name:    "a repeated message counts as many failures as it stands for",
			service: "sshd",
			log:     "2026-03-01T11:59:00.5+00:00 web1 sshd[7]: message repeated 4 times: [ Failed password for root from 2001:db8::7 port 2222 ssh2]\n",
			want:    map[netip.Addr]int{netip.MustParseAddr("2001:db8::7"): 4},
		},
		{
			name:    "lines before the window are not counted",
			service: "sshd",
			log: "Mar  1 11:30:00 web1 sshd[101]: Failed password for root from 203.0.113.9 port 51000 ssh2\n" +
				"2026-03-01T11:44:59Z web1 sshd[101]: Failed password for root from 203.0.113.9 port 51000 ssh2\n" +
				"Feb 28 11:59:00 web1 sshd[101]: Failed password for root from 203.0.113.9 port 51000 ssh2\n",
			want: map[netip.Addr]int{},
		},
		{
			name:    "PAM failures are counted by their rhost, and those without one are not",
			service: "login",
			log: "Mar  1 11:58:01 web1 login[9]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=pts/1 ruser= rhost=192.0.2.77  user=root\n" +
				"Mar  1 11:58:02 web1 login[9]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=tty1 ruser= rhost=  user=root\n" +
				"Mar  1 11:58:03 web1 login[9]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=pts/1 ruser= rhost=host.example  user=root\n",
			want: map[netip.Addr]int{netip.MustParseAddr("192.0.2.77"): 1},
		},
		{
			name:    "another service's failures are not counted",
			service: "sudo",
			log:     "Mar  1 11:58:01 web1 sshd[101]: Failed password for root from 203.0.113.9 port 51000 ssh2\n",
			want:    map[netip.Addr]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := AuthOffenders(strings.NewReader(tt.log), tt.service, since, now)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("offenders (-want +got):\n%s", d)
			}
		})
	}
}

func TestSyslogTimeDatesAYearlessLineInTheYearNearestNow(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 1, 1, 0, 5, 0, 0, time.UTC)
	for line, want := range map[string]time.Time{
		"Dec 31 23:59:00 web1 sshd[1]: x": time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC),
		"Jan  1 00:04:00 web1 sshd[1]: x": time.Date(2027, 1, 1, 0, 4, 0, 0, time.UTC),
		"Jan  2 00:04:00 web1 sshd[1]: x": time.Date(2027, 1, 2, 0, 4, 0, 0, time.UTC),
	} {
		got, ok := syslogTime(line, now)
		if !ok || !got.Equal(want) {
			t.Errorf("syslogTime(%q) = %v, %v; want %v", line, got, ok, want)
		}
	}
}

func TestInboundConnectionsCountsOnlyInboundNonLoopbackPeers(t *testing.T) {
	t.Parallel()
	// Port 22 (0016) listens; 203.0.113.9 (097100CB) holds two connections
	// to it and one being set up, whose source may be forged and so is not
	// counted; 127.0.0.1 holds one; this host's own outbound connection to
	// 203.0.113.9:443 (01BB) is not inbound.
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0
   1: 0100000A:0016 097100CB:C350 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0 100 0 0 10 0
   2: 0100000A:0016 097100CB:C351 01 00000000:00000000 00:00000000 00000000     0        0 102 1 0 100 0 0 10 0
   3: 0100000A:0016 097100CB:C352 03 00000000:00000000 00:00000000 00000000     0        0 0 1 0 100 0 0 10 0
   4: 0100007F:0016 0100007F:C353 01 00000000:00000000 00:00000000 00000000     0        0 103 1 0 100 0 0 10 0
   5: 0100000A:D000 097100CB:01BB 01 00000000:00000000 00:00000000 00000000     0        0 104 1 0 100 0 0 10 0
`
	got := map[netip.Addr]int{}
	if err := InboundConnections(strings.NewReader(table), got); err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]int{netip.MustParseAddr("203.0.113.9"): 2}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("inbound connections (-want +got):\n%s", d)
	}
}
