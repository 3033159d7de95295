package collector

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Samples of the files the parsers read, copied from a Linux 6.18 host (the
// intr line shortened) unless a case says otherwise. The fuzz tests seed
// their corpora with them too.
const (
	procStatSample = `cpu  12919 0 5471 116804 259 0 71 29 0 0
cpu0 6171 0 2483 59018 43 0 14 13 0 0
cpu1 6747 0 2987 57785 215 0 56 16 0 0
intr 481197 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 15 0 0 0 0 135 46 0 23 1 46730 0 7033 6549 0 1793 3439 1
ctxt 815201
btime 1795461374
processes 11006
procs_running 6
procs_blocked 0
softirq 197933 0 25800 6 13037 55593 0 926 39711 0 62860
`
	meminfoSample = `MemTotal:       24684092 kB
MemFree:        22948844 kB
Active(anon):       1540 kB
Inactive(file):   574064 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
DirectMap1G:    25165824 kB
`
	loadavgSample   = "2.05 0.69 0.27 5/111 11008\n"
	mountinfoSample = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
36 35 98:0 /mnt1 /mnt/My\040Disk rw,noatime master:1 shared:7 - ext3 /dev/sdb\0401 rw,errors=continue
`
	diskstatsSample = `   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 58431 8073 2105418 29913 10488 61386 5084360 16991 0 7000 47663 9957 49 1565120 737 474 20
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
`
	netDevSample = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   99707      90    0    0    0     0          0         0    99707      90    0    0    0     0       0          0
  eth0: 161666272    9280    0    0    0     0          0         0   836502    7999    0    0    0     0       0          0
`
	pressureSample = `some avg10=0.20 avg60=0.12 avg300=0.12 total=2441786
full avg10=0.01 avg60=0.04 avg300=0.06 total=2030857
`
	netTCPSample = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1664 1 00000000f5e9b011 100 0 0 10 0
   1: 0100007F:4AA6 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10943 2 00000000762851fa 100 0 0 10 0
   2: 0200000A:0016 0700710C:CBB0 01 00000000:00000000 02:00097B2A 00000000     0        0 22845 4 0000000063d9ac2c 20 4 31 10 -1
`
	netTCP6Sample = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21327 1 00000000d1a0a6c5 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18102 1 000000005d2c2c3a 100 0 0 10 0
   2: 0000000000000000FFFF00000200000A:0016 0000000000000000FFFF00000700710C:CBB2 01 00000000:00000000 02:00097B2A 00000000     0        0 22911 2 0000000063d9ac2c 20 4 31 10 -1
   3: B80D0120000000000000000001000000:01BB B80D0120000000000000000002000000:D431 06 00000000:00000000 03:000016A4 00000000     0        0 0 3 00000000a4f6c1d3
`
	pidStatSample = "11018 (cat) R 11001 11001 9220 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 68108 3133440 380 18446744073709551615 93986515140608 93986515160489 140730535763232 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 93986515176496 93986515178112 93986896994304 140730535766526 140730535766546 140730535766546 140730535768043 0\n"
)

// authLogSamples are auth log lines of Debian (RFC 3164 headers, OpenSSH
// before 9.8) and newer systems (RFC 3339 headers, sshd-session).
var authLogSamples = []string{
	"Nov 23 19:16:50 web1 sshd[2211]: Invalid user admin from 203.0.113.7 port 52144",
	"Nov 23 19:16:51 web1 sshd[2211]: Failed password for root from 203.0.113.7 port 52144 ssh2",
	"Nov 23 19:16:52 web1 sshd[2211]: Failed password for invalid user admin from 203.0.113.7 port 52144 ssh2",
	"Nov 23 19:16:53 web1 sshd[2211]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
	"2026-11-23T19:16:51.123456+00:00 web1 sshd-session[4242]: Failed publickey for alice from 198.51.100.4 port 40022 ssh2: ED25519 SHA256:Zm9vYmFy",
	"Nov  3 09:05:01 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice",
	"2026-11-23T19:20:00+01:00 web1 su[9911]: pam_unix(su-l:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/0 ruser=alice rhost=  user=root",
	"Nov 23 19:21:00 web1 login[812]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=/dev/tty1 ruser= rhost=  user=root",
	"Nov 23 19:22:00 web1 CRON[1200]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(procStat{}, cpuTimes{})
	tests := []struct {
		name  string
		input string
		want  procStat
	}{
		{
			name:  "a real file yields per-CPU times in seconds and the kernel counters",
			input: procStatSample,
			want: procStat{
				cpus: []cpuTimes{
					{cpu: "0", user: 61.71, system: 24.83, idle: 590.18, iowait: 0.43, softirq: 0.14, steal: 0.13},
					{cpu: "1", user: 67.47, system: 29.87, idle: 577.85, iowait: 2.15, softirq: 0.56, steal: 0.16},
				},
				bootTime: 1795461374, contextSwitches: 815201, forks: 11006, intr: 481197,
				procsRunning: 6, procsBlocked: 0,
				hasBootTime: true, hasContextSwitches: true, hasIntr: true,
			},
		},
		{
			name:  "a file without btime, ctxt and intr leaves their flags false",
			input: "cpu  1 2 3 4\ncpu0 1 2 3 4\nprocesses 7\n",
			want: procStat{
				cpus:  []cpuTimes{{cpu: "0", user: 0.01, nice: 0.02, system: 0.03, idle: 0.04}},
				forks: 7,
			},
		},
		{
			name:  "lines it does not know are skipped",
			input: "page 5741 1808\nswap 1 0\ncpu12 100 0 0 100\n",
			want:  procStat{cpus: []cpuTimes{{cpu: "12", user: 1, idle: 1}}},
		},
		{
			name:  "an empty file is no CPUs and no counters",
			input: "",
			want:  procStat{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcStat(strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("parseProcStat(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parseProcStat(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestParseProcStatRejectsMalformedLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
	}{
		{"a per-CPU line with a word for a time", "cpu0 1 2 x 4\n"},
		{"a per-CPU line with a negative time", "cpu0 1 -2 3 4\n"},
		{"a per-CPU line with three times", "cpu0 1 2 3\n"},
		{"a per-CPU line whose number is not a number", "cpuX 1 2 3 4\n"},
		{"a per-CPU line whose number has a sign", "cpu+1 1 2 3 4\n"},
		{"a per-CPU line whose number has a leading zero", "cpu01 1 2 3 4\n"},
		{"a btime of NaN", "btime NaN\n"},
		{"a negative ctxt", "ctxt -5\n"},
		{"a fractional procs_blocked", "procs_blocked 0.5\n"},
		{"an intr total in hex", "intr 0x10 0 0\n"},
		{"an intr total of Inf", "intr Inf 0 0\n"},
		{"a per-CPU line separated by tabs", "cpu0\t1 2 3 4\n"},
		{"an intr line with no total", "intr\n"},
		{"an intr line with a word for a total", "intr many 0 0\n"},
		{"a ctxt line with no value", "ctxt\n"},
		{"a btime line with a word", "btime yesterday\n"},
		{"a procs_running line with two values", "procs_running 1 2\n"},
		{"a line of megabytes", "intr 1" + strings.Repeat(" 0", 3<<20) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcStat(strings.NewReader(tt.input))
			if err == nil {
				t.Errorf("parseProcStat(%.80q) = %d CPUs, nil; want an error", tt.input, len(got.cpus))
			}
		})
	}
}

func TestParseCPULine(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(cpuTimes{})
	tests := []struct {
		name     string
		id, rest string
		want     cpuTimes
		wantErr  bool
	}{
		{
			name: "ten fields of a kernel since 2.6.33 fill every mode",
			id:   "3", rest: "100 200 300 400 500 600 700 800 900 1000",
			want: cpuTimes{cpu: "3", user: 1, nice: 2, system: 3, idle: 4, iowait: 5, irq: 6, softirq: 7, steal: 8, guest: 9, guestNice: 10},
		},
		{
			name: "four fields of a 2.4 kernel leave the newer modes zero",
			id:   "0", rest: "100 200 300 400",
			want: cpuTimes{cpu: "0", user: 1, nice: 2, system: 3, idle: 4},
		},
		{
			name: "fields beyond the ten known ones are ignored",
			id:   "0", rest: "1 1 1 1 1 1 1 1 1 1 99 99",
			want: cpuTimes{cpu: "0", user: 0.01, nice: 0.01, system: 0.01, idle: 0.01, iowait: 0.01, irq: 0.01, softirq: 0.01, steal: 0.01, guest: 0.01, guestNice: 0.01},
		},
		{
			name: "leading and repeated spaces are skipped",
			id:   "1", rest: "  5   0 0 7 ",
			want: cpuTimes{cpu: "1", user: 0.05, idle: 0.07},
		},
		{name: "three fields are an error", id: "0", rest: "1 2 3", wantErr: true},
		{name: "no fields are an error", id: "0", rest: "", wantErr: true},
		{name: "an empty CPU number is an error", id: "", rest: "1 2 3 4", wantErr: true},
		{name: "a CPU number with letters is an error", id: "0a", rest: "1 2 3 4", wantErr: true},
		{name: "a signed CPU number is an error", id: "-1", rest: "1 2 3 4", wantErr: true},
		{name: "a CPU number with a leading zero is an error", id: "07", rest: "1 2 3 4", wantErr: true},
		{name: "CPU 10 is a CPU number", id: "10", rest: "0 0 0 100", want: cpuTimes{cpu: "10", idle: 1}},
		{name: "a fraction is an error", id: "0", rest: "1 2.5 3 4", wantErr: true},
		{name: "a value above 64 bits is an error", id: "0", rest: "18446744073709551616 0 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseCPULine(tt.id, tt.rest)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseCPULine(%q, %q) = %+v, nil; want an error", tt.id, tt.rest, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCPULine(%q, %q) error: %v", tt.id, tt.rest, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parseCPULine(%q, %q) mismatch (-want +got):\n%s", tt.id, tt.rest, diff)
			}
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(memField{})
	tests := []struct {
		name    string
		input   string
		want    []memField
		wantErr bool
	}{
		{
			name:  "a real file names fields as node_exporter does and converts kB to bytes",
			input: meminfoSample,
			want: []memField{
				{"MemTotal_bytes", 24684092 * 1024},
				{"MemFree_bytes", 22948844 * 1024},
				{"Active_anon_bytes", 1540 * 1024},
				{"Inactive_file_bytes", 574064 * 1024},
				{"HugePages_Total", 0},
				{"HugePages_Free", 0},
				{"Hugepagesize_bytes", 2048 * 1024},
				{"DirectMap1G_bytes", 25165824 * 1024},
			},
		},
		{
			name:  "a line without a colon is skipped",
			input: "garbage\nMemFree: 1 kB\n",
			want:  []memField{{"MemFree_bytes", 1024}},
		},
		{
			name:  "an empty file is no fields",
			input: "",
			want:  nil,
		},
		{name: "a key with no value is an error", input: "MemTotal:\n", wantErr: true},
		{name: "a value with two units is an error", input: "MemTotal: 1 kB kB\n", wantErr: true},
		{name: "a unit other than kB is an error", input: "MemTotal: 1 MB\n", wantErr: true},
		{name: "a word for a value is an error", input: "MemTotal: lots kB\n", wantErr: true},
		{name: "a key with a space is an error", input: "Mem Total: 1 kB\n", wantErr: true},
		{name: "a key with a dot is an error", input: "Mem.Total: 1 kB\n", wantErr: true},
		{name: "an empty key is an error", input: ": 1 kB\n", wantErr: true},
		{name: "a NaN value is an error", input: "MemTotal: NaN kB\n", wantErr: true},
		{name: "a negative value is an error", input: "Committed_AS: -4 kB\n", wantErr: true},
		{name: "a fractional value is an error", input: "MemFree: 1.5 kB\n", wantErr: true},
		{name: "a value in exponent form is an error", input: "MemFree: 1e3 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseMeminfo(strings.NewReader(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseMeminfo(%q) = %v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMeminfo(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parseMeminfo(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestParseLoadavg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		want    [3]float64
		wantErr bool
	}{
		{name: "a real file yields the three averages", input: loadavgSample, want: [3]float64{2.05, 0.69, 0.27}},
		{name: "exactly three fields are enough", input: "0.00 0.01 0.05", want: [3]float64{0, 0.01, 0.05}},
		{name: "surrounding spaces are ignored", input: "  1.5\t2.5 3.5  \n", want: [3]float64{1.5, 2.5, 3.5}},
		{name: "two fields are an error", input: "0.00 0.01", wantErr: true},
		{name: "an empty file is an error", input: "", wantErr: true},
		{name: "a word for a load is an error", input: "0.00 high 0.05 1/2 3", wantErr: true},
		{name: "the running/total field in third place is an error", input: "0.00 0.01 5/111 11008", wantErr: true},
		{name: "NaN and Inf are an error", input: "NaN Inf -Inf 1/2 3", wantErr: true},
		{name: "a negative load is an error", input: "-0.50 0.01 0.05 1/2 3", wantErr: true},
		{name: "a load in exponent form is an error", input: "1e2 0.01 0.05 1/2 3", wantErr: true},
		{name: "a load in hex is an error", input: "0x1p-2 0.01 0.05 1/2 3", wantErr: true},
		{name: "a load with a dot and no decimals is an error", input: "1. 0.01 0.05 1/2 3", wantErr: true},
		{name: "a load of a bare fraction is an error", input: ".5 0.01 0.05 1/2 3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseLoadavg(tt.input)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseLoadavg(%q) = %v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLoadavg(%q) error: %v", tt.input, err)
			}
			if got != tt.want {
				t.Errorf("parseLoadavg(%q) = %v; want %v", tt.input, got, tt.want)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(mount{})
	tests := []struct {
		name    string
		input   string
		want    []mount
		wantErr bool
	}{
		{
			name:  "a real file yields mount point, type, device and read-only flag",
			input: mountinfoSample,
			want: []mount{
				{device: "proc", mountPoint: "/proc", fsType: "proc"},
				{device: "/dev/vda", mountPoint: "/", fsType: "ext4"},
				{device: "model_tools_unavailable", mountPoint: "/mnt/sandboxing/model_tools_env/v1/python", fsType: "tmpfs", readOnly: true},
				{device: "/dev/sdb 1", mountPoint: "/mnt/My Disk", fsType: "ext3"},
			},
		},
		{
			name:  "read-only is taken from the mount options, not the super options",
			input: "40 27 8:1 / /boot rw,relatime - vfat /dev/sda1 ro,fmask=0077\n41 27 8:2 / /srv ro,relatime shared:3 - xfs /dev/sda2 rw\n",
			want: []mount{
				{device: "/dev/sda1", mountPoint: "/boot", fsType: "vfat"},
				{device: "/dev/sda2", mountPoint: "/srv", fsType: "xfs", readOnly: true},
			},
		},
		{
			name:  "a tab, a newline and a backslash in a mount point are unescaped",
			input: `50 27 0:40 / /mnt/a\011b\012c\134d rw - tmpfs tmpfs rw` + "\n",
			want:  []mount{{device: "tmpfs", mountPoint: "/mnt/a\tb\nc\\d", fsType: "tmpfs"}},
		},
		{
			name:  "an optional field that looks like an option does not end the optional fields",
			input: "60 27 0:41 / /data rw shared:12 master:3 propagate_from:2 unbindable - nfs4 server:/export rw,vers=4.2\n",
			want:  []mount{{device: "server:/export", mountPoint: "/data", fsType: "nfs4"}},
		},
		{
			// The kernel escapes only space, tab, newline and backslash
			// (fs/proc_namespace.c), so any other byte, such as the UTF-8 of
			// U+00A0, is part of the path.
			name:  "a mount point with a non-breaking space is one field",
			input: "70 27 8:17 / /media/usb\u00a0stick rw,nosuid - vfat /dev/sdb1 rw\n",
			want:  []mount{{device: "/dev/sdb1", mountPoint: "/media/usb\u00a0stick", fsType: "vfat"}},
		},
		{
			// Written by this host's kernel (6.18) for
			// mount -t tmpfs $'dev\u00a0x' $'/tmp/tmp.3Hb8t0c0q4/usb\u00a0stick\rx'.
			name:  "a mount point and a device with a non-breaking space and a carriage return are one field each",
			input: "42 27 0:39 / /tmp/tmp.3Hb8t0c0q4/usb\u00a0stick\rx rw,relatime - tmpfs dev\u00a0x rw\n",
			want:  []mount{{device: "dev\u00a0x", mountPoint: "/tmp/tmp.3Hb8t0c0q4/usb\u00a0stick\rx", fsType: "tmpfs"}},
		},
		{
			name:  "empty lines are skipped",
			input: "\n22 27 0:21 / /proc rw,relatime - proc proc rw\n\n",
			want:  []mount{{device: "proc", mountPoint: "/proc", fsType: "proc"}},
		},
		{
			// mount -t tmpfs "" /mnt/tmpfs; see util-linux#619.
			name:  "an empty source, which mount(2) accepts, is kept empty",
			input: "74 25 0:59 / /mnt/tmpfs rw,relatime shared:38 - tmpfs  rw\n",
			want:  []mount{{device: "", mountPoint: "/mnt/tmpfs", fsType: "tmpfs"}},
		},
		{
			name:  "a namespace file's root is not a path",
			input: "612 27 0:4 net:[4026532281] /run/netns/blue rw shared:280 - nsfs nsfs rw\n",
			want:  []mount{{device: "nsfs", mountPoint: "/run/netns/blue", fsType: "nsfs"}},
		},
		{name: "spaces, a separator and a type (a fuzzer's find) are an error", input: "      - 0 \n", wantErr: true},
		{name: "a mount ID that is not a number is an error", input: "x 27 0:21 / /proc rw - proc proc rw\n", wantErr: true},
		{name: "a signed parent ID is an error", input: "22 +27 0:21 / /proc rw - proc proc rw\n", wantErr: true},
		{name: "a device number without a colon is an error", input: "22 27 21 / /proc rw - proc proc rw\n", wantErr: true},
		{name: "a device number without a minor is an error", input: "22 27 0: / /proc rw - proc proc rw\n", wantErr: true},
		{name: "an empty root is an error", input: "22 27 0:21  /proc rw - proc proc rw\n", wantErr: true},
		{name: "a relative mount point is an error", input: "22 27 0:21 / proc rw - proc proc rw\n", wantErr: true},
		{name: "empty mount options are an error", input: "22 27 0:21 / /proc  - proc proc rw\n", wantErr: true},
		{name: "an empty optional field is an error", input: "22 27 0:21 / /proc rw  shared:1 - proc proc rw\n", wantErr: true},
		{name: "an empty type is an error", input: "22 27 0:21 / /proc rw -  proc rw\n", wantErr: true},
		{name: "a line without super options is an error", input: "22 27 0:21 / /proc rw - proc proc\n", wantErr: true},
		{name: "empty super options are an error", input: "22 27 0:21 / /proc rw - proc proc \n", wantErr: true},
		{name: "a line without the separator is an error", input: "22 27 0:21 / /proc rw,relatime proc proc rw\n", wantErr: true},
		{name: "a line with only the type after the separator is an error", input: "22 27 0:21 / /proc rw,relatime - proc\n", wantErr: true},
		{name: "a line with nothing after the separator is an error", input: "22 27 0:21 / /proc rw -\n", wantErr: true},
		{name: "a line of five fields is an error", input: "22 27 0:21 / /proc\n", wantErr: true},
		{name: "a separator in the mount options' place is an error", input: "22 27 0:21 / - proc proc rw\n", wantErr: true},
		{name: "a line of megabytes is an error", input: "1 2 3:4 / /" + strings.Repeat("a", 5<<20) + " rw - tmpfs tmpfs rw\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseMountinfo(strings.NewReader(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseMountinfo(%.80q) = %d mounts, nil; want an error", tt.input, len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMountinfo(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parseMountinfo(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestUnescapeMount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input, want string
	}{
		{"a path without a backslash is returned as is", "/mnt/data", "/mnt/data"},
		{"an escaped space is a space", `/mnt/My\040Disk`, "/mnt/My Disk"},
		{"an escaped tab and newline are a tab and newline", `/a\011b\012c`, "/a\tb\nc"},
		{"an escaped backslash is one backslash", `/a\134b`, `/a\b`},
		{"an escaped backslash before digits does not start another escape", `/a\134040`, `/a\040`},
		{"escapes at both ends are unescaped", `\040a\040`, " a "},
		{"a backslash before a non-octal digit stays", `/a\9bc`, `/a\9bc`},
		{"a backslash before a letter stays", `/a\xyz`, `/a\xyz`},
		{"an escape above 255 stays", `/a\777`, `/a\777`},
		{"a short escape at the end stays", `/a\04`, `/a\04`},
		{"a trailing backslash stays", `/a\`, `/a\`},
		{"an empty string stays empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := unescapeMount(tt.input); got != tt.want {
				t.Errorf("unescapeMount(%q) = %q; want %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestParseDiskstats(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(diskStats{})
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i + 1)
		}
		return v
	}
	tests := []struct {
		name    string
		input   string
		want    []diskStats
		wantErr bool
	}{
		{
			name:  "a real file of kernel 6.18 has 17 values a device",
			input: diskstatsSample,
			want: []diskStats{
				{device: "loop0", values: make([]float64, 17)},
				{device: "vda", values: []float64{58431, 8073, 2105418, 29913, 10488, 61386, 5084360, 16991, 0, 7000, 47663, 9957, 49, 1565120, 737, 474, 20}},
				{device: "zram0", values: make([]float64, 17)},
			},
		},
		{
			name:  "a kernel before 4.18 has 11 values",
			input: "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
			want:  []diskStats{{device: "sda", values: seq(11)}},
		},
		{
			name:  "a kernel from 4.18 to 5.4 has 15 values",
			input: "   8      16 sdb 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n",
			want:  []diskStats{{device: "sdb", values: seq(15)}},
		},
		{
			name:  "an NVMe namespace and its partition are both listed",
			input: " 259       0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n 259       1 nvme0n1p1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
			want:  []diskStats{{device: "nvme0n1", values: seq(17)}, {device: "nvme0n1p1", values: seq(17)}},
		},
		{
			name:  "a counter at the top of 64 bits is kept",
			input: "8 0 sda 18446744073709551615 0 0 0 0 0 0 0 0 0 0\n",
			want:  []diskStats{{device: "sda", values: []float64{18446744073709551615, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}},
		},
		{
			name:  "empty lines are skipped",
			input: "\n   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n\n",
			want:  []diskStats{{device: "sda", values: seq(11)}},
		},
		{name: "ten values are an error", input: "8 0 sda 1 2 3 4 5 6 7 8 9 10\n", wantErr: true},
		{name: "a word for a value is an error", input: "8 0 sda 1 2 3 4 5 six 7 8 9 10 11\n", wantErr: true},
		{name: "a negative value is an error", input: "8 0 sda 1 2 3 4 5 -6 7 8 9 10 11\n", wantErr: true},
		{name: "a value above 64 bits is an error", input: "8 0 sda 18446744073709551616 2 3 4 5 6 7 8 9 10 11\n", wantErr: true},
		{name: "a line without major and minor is an error", input: "sda 1 2 3 4 5 6 7 8 9 10 11 12 13\n", wantErr: true},
		{name: "a major that is a word is an error", input: "sd 0 sda 1 2 3 4 5 6 7 8 9 10 11\n", wantErr: true},
		{name: "a negative minor is an error", input: "8 -1 sda 1 2 3 4 5 6 7 8 9 10 11\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseDiskstats(strings.NewReader(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseDiskstats(%q) = %+v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDiskstats(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parseDiskstats(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestParseNetDev(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(netDev{})
	const header = "Inter-|   Receive\n face |bytes\n"
	tests := []struct {
		name    string
		input   string
		want    []netDev
		wantErr bool
	}{
		{
			name:  "a real file yields the sixteen counters of each device",
			input: netDevSample,
			want: []netDev{
				{device: "lo", values: [16]float64{99707, 90, 0, 0, 0, 0, 0, 0, 99707, 90}},
				{device: "eth0", values: [16]float64{161666272, 9280, 0, 0, 0, 0, 0, 0, 836502, 7999}},
			},
		},
		{
			name:  "a byte count that fills its column touches the colon",
			input: header + "  eth1:12345678901 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			want:  []netDev{{device: "eth1", values: [16]float64{12345678901, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}},
		},
		{
			name:  "fields beyond sixteen are ignored",
			input: header + "wg0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
			want:  []netDev{{device: "wg0", values: [16]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}},
		},
		{
			name:  "the header alone is no devices",
			input: header,
			want:  nil,
		},
		{
			name:  "whatever the two header lines hold is skipped",
			input: "garbage\nmore garbage\n",
			want:  nil,
		},
		{name: "a line without a colon is an error", input: header + "eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", wantErr: true},
		{name: "a line without a device name is an error", input: header + "   : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", wantErr: true},
		{name: "fifteen fields are an error", input: header + "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n", wantErr: true},
		{name: "a word for a counter is an error", input: header + "eth0: 1 2 3 4 5 6 7 8 nine 10 11 12 13 14 15 16\n", wantErr: true},
		{name: "an empty line after the header is an error", input: header + "\n", wantErr: true},
		{name: "a device name with a space is an error", input: header + "eth 0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", wantErr: true},
		{name: "a device name with a slash is an error", input: header + "eth/0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", wantErr: true},
		{name: "a device named dot-dot is an error", input: header + "..: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseNetDev(strings.NewReader(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseNetDev(%q) = %+v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseNetDev(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parseNetDev(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestParsePressure(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(psi{})
	tests := []struct {
		name    string
		input   string
		want    psi
		wantErr bool
	}{
		{
			name:  "a real io file yields both totals in seconds",
			input: pressureSample,
			want:  psi{some: 2.441786, full: 2.030857, hasSome: true, hasFull: true},
		},
		{
			name:  "a cpu file of a kernel before 5.13 has only the some line",
			input: "some avg10=56.51 avg60=27.91 avg300=9.46 total=43508692\n",
			want:  psi{some: 43.508692, hasSome: true},
		},
		{
			name:  "the total may come anywhere after the kind",
			input: "full total=5000000 avg10=0.00\n",
			want:  psi{full: 5, hasFull: true},
		},
		{
			name:  "empty lines and an empty file are nothing",
			input: "\n\n",
			want:  psi{},
		},
		{name: "a line without a total is an error", input: "some avg10=0.00 avg60=0.00 avg300=0.00\n", wantErr: true},
		{name: "an empty total is an error", input: "some avg10=0.00 total=\n", wantErr: true},
		{name: "a negative total is an error", input: "some total=-1\n", wantErr: true},
		{name: "a fractional total is an error", input: "some total=1.5\n", wantErr: true},
		{name: "an unknown kind is an error", input: "most avg10=0.00 total=1\n", wantErr: true},
		{name: "a total as the kind is an error", input: "total=1\n", wantErr: true},
		{name: "an unknown field is an error", input: "some avg10=0.00 load=3 total=1\n", wantErr: true},
		{name: "a bare word among the fields is an error", input: "some avg10=0.00 total=1 x\n", wantErr: true},
		{name: "a repeated total is an error", input: "some total=1 total=2\n", wantErr: true},
		{name: "a repeated kind is an error", input: "some total=1\nsome total=2\n", wantErr: true},
		{name: "an average without its value is an error (a fuzzer's find)", input: "full avg10 total=0\n", wantErr: true},
		{name: "an empty average is an error", input: "some avg10= total=1\n", wantErr: true},
		{name: "a negative average is an error", input: "some avg10=-1.00 total=1\n", wantErr: true},
		{name: "an average of NaN is an error", input: "some avg60=NaN total=1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePressure(strings.NewReader(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parsePressure(%q) = %+v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePressure(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parsePressure(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

// equalAddrPort lets cmp compare netip.AddrPort, whose fields are unexported.
var equalAddrPort = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func TestParseNetSockets(t *testing.T) {
	t.Parallel()
	opts := cmp.Options{cmp.AllowUnexported(netSocket{}), equalAddrPort}
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		input   string
		want    []netSocket
		wantErr bool
	}{
		{
			name:  "a real tcp file yields addresses, state and inode",
			input: netTCPSample,
			want: []netSocket{
				{local: ap("0.0.0.0:2024"), remote: ap("0.0.0.0:0"), state: tcpListen, inode: 1664},
				{local: ap("127.0.0.1:19110"), remote: ap("0.0.0.0:0"), state: tcpListen, inode: 10943},
				{local: ap("10.0.0.2:22"), remote: ap("12.113.0.7:52144"), state: tcpEstablished, inode: 22845},
			},
		},
		{
			name:  "a tcp6 file unmaps IPv4-mapped addresses and keeps real IPv6 ones",
			input: netTCP6Sample,
			want: []netSocket{
				{local: ap("[::]:22"), remote: ap("[::]:0"), state: tcpListen, inode: 21327},
				{local: ap("[::1]:631"), remote: ap("[::]:0"), state: tcpListen, inode: 18102},
				{local: ap("10.0.0.2:22"), remote: ap("12.113.0.7:52146"), state: tcpEstablished, inode: 22911},
				{local: ap("[2001:db8::1]:443"), remote: ap("[2001:db8::2]:54321"), state: 6, inode: 0},
			},
		},
		{
			name: "a udp file has the same columns",
			input: "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
				" 1003: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 17426 2 0000000011c0a2f5 0\n",
			want: []netSocket{{local: ap("127.0.0.53:53"), remote: ap("0.0.0.0:0"), state: tcpClose, inode: 17426}},
		},
		{
			name:  "a state above the known ones is kept for the caller to judge",
			input: "header\n 0: 0100007F:0016 00000000:0000 FF 0 0 0 0 0 99\n",
			want:  []netSocket{{local: ap("127.0.0.1:22"), remote: ap("0.0.0.0:0"), state: 255, inode: 99}},
		},
		{
			name:  "the header alone is no sockets",
			input: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
			want:  nil,
		},
		{
			name:  "empty lines are skipped",
			input: "header\n\n 0: 0100007F:0016 00000000:0000 0A 0 0 0 0 0 7\n\n",
			want:  []netSocket{{local: ap("127.0.0.1:22"), remote: ap("0.0.0.0:0"), state: tcpListen, inode: 7}},
		},
		{name: "nine fields are an error", input: "header\n 0: 0100007F:0016 00000000:0000 0A 0 0 0 0 0\n", wantErr: true},
		{name: "a local address without a port is an error", input: "header\n 0: 0100007F 00000000:0000 0A 0 0 0 0 0 7\n", wantErr: true},
		{name: "a remote address of six hex digits is an error", input: "header\n 0: 0100007F:0016 000000:0000 0A 0 0 0 0 0 7\n", wantErr: true},
		{name: "a state above 255 is an error", input: "header\n 0: 0100007F:0016 00000000:0000 100 0 0 0 0 0 7\n", wantErr: true},
		{name: "a state that is not hex is an error", input: "header\n 0: 0100007F:0016 00000000:0000 LISTEN 0 0 0 0 0 7\n", wantErr: true},
		{name: "an inode that is not decimal is an error", input: "header\n 0: 0100007F:0016 00000000:0000 0A 0 0 0 0 0 7f\n", wantErr: true},
		{name: "a line without its slot number is an error", input: "header\n 0100007F:0016 00000000:0000 0A 0 0 0 0 0 7 1\n", wantErr: true},
		{name: "a slot number without its colon is an error", input: "header\n 0 0100007F:0016 00000000:0000 0A 0 0 0 0 0 7\n", wantErr: true},
		{name: "a slot that is not a number is an error", input: "header\n x: 0100007F:0016 00000000:0000 0A 0 0 0 0 0 7\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseNetSockets(strings.NewReader(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseNetSockets(%q) = %+v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseNetSockets(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("parseNetSockets(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestParseHexAddrPort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		want    string
		wantErr bool
	}{
		{name: "IPv4 loopback is little-endian, the port big-endian", input: "0100007F:0CEA", want: "127.0.0.1:3306"},
		{name: "the IPv4 wildcard address with port zero", input: "00000000:0000", want: "0.0.0.0:0"},
		{name: "lower-case hex digits are accepted", input: "0100a8c0:01bb", want: "192.168.0.1:443"},
		{name: "the highest port", input: "0100007F:FFFF", want: "127.0.0.1:65535"},
		{name: "IPv6 loopback is four little-endian words", input: "00000000000000000000000001000000:0277", want: "[::1]:631"},
		{name: "an IPv6 global address keeps its word order", input: "B80D0120000000000000000001000000:01BB", want: "[2001:db8::1]:443"},
		{name: "an IPv4-mapped IPv6 address is returned as IPv4", input: "0000000000000000FFFF00000100007F:0016", want: "127.0.0.1:22"},
		{name: "a link-local IPv6 address", input: "000080FE00000000FF4A5502FEBD26A0:0016", want: "[fe80::255:4aff:a026:bdfe]:22"},
		{name: "no colon is an error", input: "0100007F", wantErr: true},
		{name: "an empty string is an error", input: "", wantErr: true},
		{name: "an empty port is an error", input: "0100007F:", wantErr: true},
		{name: "a port above 16 bits is an error", input: "0100007F:10000", wantErr: true},
		{name: "a second colon is an error", input: "0100007F:0016:0016", wantErr: true},
		{name: "an odd number of hex digits is an error", input: "100007F:0016", wantErr: true},
		{name: "twelve hex digits are an error", input: "0100007F0000:0016", wantErr: true},
		{name: "a non-hex digit in the address is an error", input: "0100007G:0016", wantErr: true},
		{name: "an empty address is an error", input: ":0016", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseHexAddrPort(tt.input)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseHexAddrPort(%q) = %v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHexAddrPort(%q) error: %v", tt.input, err)
			}
			if got.String() != tt.want {
				t.Errorf("parseHexAddrPort(%q) = %v; want %v", tt.input, got, tt.want)
			}
		})
	}
}

func TestParsePIDStat(t *testing.T) {
	t.Parallel()
	allow := cmp.AllowUnexported(pidStat{})
	// tail is what follows the state in a real line of a sleeping process:
	// utime 52, stime 277 ... starttime 24, rss 2863 pages.
	const tail = " 0 0 0 0 -1 4194560 29909 7446652 0 390 52 277 11011 4283 20 0 13 0 24 41570304 2863 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	tests := []struct {
		name    string
		input   string
		want    pidStat
		wantErr bool
	}{
		{
			name:  "a real line of a running process",
			input: pidStatSample,
			want:  pidStat{comm: "cat", state: 'R', cpuTicks: 0, startTime: 68108, rssPages: 380},
		},
		{
			name:  "a command name with a space and a colon",
			input: "812 (tmux: server) S" + tail,
			want:  pidStat{comm: "tmux: server", state: 'S', cpuTicks: 329, startTime: 24, rssPages: 2863},
		},
		{
			name:  "a command name in parentheses of its own",
			input: "1500 ((sd-pam)) S" + tail,
			want:  pidStat{comm: "(sd-pam)", state: 'S', cpuTicks: 329, startTime: 24, rssPages: 2863},
		},
		{
			name:  "a command name that imitates the end of the name and the state",
			input: "1600 (evil) R 1 (x) S" + tail,
			want:  pidStat{comm: "evil) R 1 (x", state: 'S', cpuTicks: 329, startTime: 24, rssPages: 2863},
		},
		{
			name:  "a kernel worker in the idle state",
			input: "45 (kworker/1:1-events) I" + tail,
			want:  pidStat{comm: "kworker/1:1-events", state: 'I', cpuTicks: 329, startTime: 24, rssPages: 2863},
		},
		{
			name:  "an empty command name",
			input: "7 () Z" + tail,
			want:  pidStat{comm: "", state: 'Z', cpuTicks: 329, startTime: 24, rssPages: 2863},
		},
		{
			name:  "a negative rss is kept",
			input: "7 (x) S 0 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 -1\n",
			want:  pidStat{comm: "x", state: 'S', cpuTicks: 3, startTime: 5, rssPages: -1},
		},
		{name: "no parentheses is an error", input: "1 init S" + tail, wantErr: true},
		{name: "a line without the PID is an error", input: "(init) S" + tail, wantErr: true},
		{name: "a PID that is not a number is an error", input: "self (init) S" + tail, wantErr: true},
		{name: "a PID without the space before the name is an error", input: "1(init) S" + tail, wantErr: true},
		{name: "a negative PID is an error", input: "-1 (init) S" + tail, wantErr: true},
		{name: "a closing parenthesis alone is an error", input: "1 init) S" + tail, wantErr: true},
		{name: "a closing before an opening parenthesis is an error", input: "1 )init( S" + tail, wantErr: true},
		{name: "an empty line is an error", input: "", wantErr: true},
		{name: "a line cut before rss is an error", input: "7 (x) S 0 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0\n", wantErr: true},
		{name: "a two-letter state is an error", input: "812 (tmux) SS" + tail, wantErr: true},
		{name: "a word for utime is an error", input: "7 (x) S 0 0 0 0 -1 0 0 0 0 0 many 2 0 0 20 0 1 0 5 0 1\n", wantErr: true},
		{name: "a negative stime is an error", input: "7 (x) S 0 0 0 0 -1 0 0 0 0 0 1 -2 0 0 20 0 1 0 5 0 1\n", wantErr: true},
		{name: "a word for starttime is an error", input: "7 (x) S 0 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 boot 0 1\n", wantErr: true},
		{name: "a word for rss is an error", input: "7 (x) S 0 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 big\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePIDStat([]byte(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parsePIDStat(%q) = %+v, nil; want an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePIDStat(%q) error: %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got, allow); diff != "" {
				t.Errorf("parsePIDStat(%q) mismatch (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestParseAuthLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line, want string
	}{
		{"an sshd invalid user counts once for the connection", authLogSamples[0], "sshd"},
		{"an sshd failed password counts", authLogSamples[1], "sshd"},
		{"an sshd failed password for an invalid user is not counted again", authLogSamples[2], ""},
		{"sshd's own PAM failure is not counted twice", authLogSamples[3], ""},
		{"an sshd-session failed publickey after an RFC 3339 header counts", authLogSamples[4], "sshd"},
		{"a sudo PAM failure after a space-padded day counts for sudo", authLogSamples[5], "sudo"},
		{"a su -l PAM failure counts for su", authLogSamples[6], "su"},
		{"a login PAM failure counts for login", authLogSamples[7], "login"},
		{"a PAM session line is not a failure", authLogSamples[8], ""},
		{
			"a su PAM failure counts for su",
			"Nov 23 19:20:00 web1 su[9911]: pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/0 ruser=alice rhost=  user=root",
			"su",
		},
		{
			"a PAM failure of another service counts as other",
			"Nov 23 19:23:00 web1 polkit-agent-helper-1[3301]: pam_unix(polkit-1:auth): authentication failure; logname=alice uid=1000 euid=0 tty= ruser=alice rhost=  user=alice",
			"other",
		},
		{
			"an sshd PAM failure logged by another program is not counted",
			"Nov 23 19:23:00 web1 unix_chkpwd[3302]: pam_unix(sshd:auth): authentication failure; user=root",
			"",
		},
		{
			"an sshd-session invalid user counts",
			"2026-11-23T19:16:50.000001+00:00 web1 sshd-session[4242]: Invalid user oracle from 198.51.100.4 port 40022",
			"sshd",
		},
		{
			"an sshd tag without a pid counts",
			"Nov 23 19:16:51 web1 sshd: Failed keyboard-interactive/pam for root from 203.0.113.7 port 52144 ssh2",
			"sshd",
		},
		{
			"an accepted login is not a failure",
			"Nov 23 19:16:51 web1 sshd[2211]: Accepted publickey for alice from 198.51.100.4 port 40022 ssh2: ED25519 SHA256:Zm9vYmFy",
			"",
		},
		{
			"a failed password from another program is not counted as sshd",
			"Nov 23 19:16:51 web1 dovecot[700]: Failed password for alice from 198.51.100.4",
			"",
		},
		{
			"a PAM failure without a service in parentheses is not counted",
			"Nov 23 19:16:51 web1 app[1]: pam_unix:auth): authentication failure",
			"",
		},
		{
			"an sshd line whose failure text is the header's host is not counted",
			"Nov 23 19:16:51 Failed sshd[1]: for root",
			"",
		},
		{"a line without a message is not counted", "Nov 23 19:16:51 web1 sshd[2211]:", ""},
		{"a PAM failure without a program name is not counted", "Nov 23 19:16:51 web1 [1]: pam_unix(x:auth): authentication failure", ""},
		{"an sshd failure without a timestamp is not counted", "localhost web1 sshd[1]: Invalid user admin from 203.0.113.7", ""},
		{"a line with only a timestamp is not counted", "Nov 23 19:16:51", ""},
		{"an empty line is not counted", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseAuthLine(tt.line); got != tt.want {
				t.Errorf("parseAuthLine(%q) = %q; want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestSplitSyslog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		line      string
		prog, msg string
		ok        bool
	}{
		{
			name: "an RFC 3164 header with a pid",
			line: "Nov 23 19:16:51 web1 sshd[2211]: Failed password for root",
			prog: "sshd", msg: "Failed password for root", ok: true,
		},
		{
			name: "an RFC 3164 header with a space-padded day",
			line: "Nov  3 09:05:01 web1 sudo: pam_unix(sudo:auth): authentication failure",
			prog: "sudo", msg: "pam_unix(sudo:auth): authentication failure", ok: true,
		},
		{
			name: "an RFC 3339 header with fractional seconds and an offset",
			line: "2026-11-23T19:16:51.123456+00:00 web1 sshd-session[4242]: Invalid user oracle",
			prog: "sshd-session", msg: "Invalid user oracle", ok: true,
		},
		{
			name: "a message that holds a colon and a space of its own",
			line: "2026-11-23T19:16:51Z web1 su[1]: FAILED SU (to root) alice on pts/0: bad",
			prog: "su", msg: "FAILED SU (to root) alice on pts/0: bad", ok: true,
		},
		{
			name: "an empty message after the tag",
			line: "Nov 23 19:16:51 web1 sshd[1]: ",
			prog: "sshd", msg: "", ok: true,
		},
		{name: "a tag without a colon", line: "Nov 23 19:16:51 web1 sshd[1] Failed password"},
		{name: "a tag with a space", line: "2026-11-23T19:16:51Z web1 my prog: hello: there"},
		{name: "an RFC 3164 header without a host", line: "Nov 23 19:16:51"},
		{name: "an RFC 3339 header without a host", line: "2026-11-23T19:16:51Z"},
		{name: "an empty tag", line: "2026-11-23T19:16:51Z web1 : hello"},
		{name: "a pid without a program name", line: "Nov 23 19:16:51 web1 [1]: pam_unix(x:auth): authentication failure"},
		{name: "a pid that is not a number", line: "Nov 23 19:16:51 web1 sshd[x]: Invalid user admin"},
		{name: "a pid without its closing bracket", line: "Nov 23 19:16:51 web1 sshd[12: Invalid user admin"},
		{name: "words where the RFC 3164 timestamp goes", line: "Hello my dear friend sshd[1]: Invalid user admin"},
		{name: "a month that is no month", line: "Foo 23 19:16:51 web1 sshd[1]: Invalid user admin"},
		{name: "an RFC 3164 day that is not padded", line: "Nov 3 09:05:01 web1 sshd[1]: Invalid user admin"},
		{name: "an RFC 3339 timestamp of an impossible time", line: "2026-13-45T99:00:00Z web1 sshd[1]: Invalid user admin"},
		{name: "a host where the timestamp goes", line: "localhost web1 sshd[1]: Invalid user admin"},
		{name: "an empty line", line: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prog, msg, ok := splitSyslog(tt.line)
			if prog != tt.prog || msg != tt.msg || ok != tt.ok {
				t.Errorf("splitSyslog(%q) = %q, %q, %v; want %q, %q, %v", tt.line, prog, msg, ok, tt.prog, tt.msg, tt.ok)
			}
		})
	}
}

func TestAuthFailuresUnwrapsRepeatedMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		svc        string
		n          int
	}{
		{"a plain failure counts once", "Nov 23 10:00:01 web1 sshd[1201]: Failed password for root from 203.0.113.5 port 51122 ssh2", "sshd", 1},
		{"a repeated failure counts as many times as rsyslog says", "Nov 23 10:00:09 web1 sshd[1201]: message repeated 4 times: [ Failed password for root from 203.0.113.5 port 51122 ssh2]", "sshd", 4},
		{"a repeated PAM failure counts for its service", "2026-11-23T10:01:00+00:00 web1 sudo: message repeated 2 times: [ pam_unix(sudo:auth): authentication failure; logname=alice]", "sudo", 2},
		{"a repeated line that is no failure counts nothing", "Nov 23 10:00:09 web1 sshd[1201]: message repeated 3 times: [ Accepted publickey for deploy]", "", 0},
		{"a repeat count that is not a number counts nothing", "Nov 23 10:00:09 web1 sshd[1201]: message repeated many times: [ Failed password for root]", "", 0},
		{"a zero repeat count counts nothing", "Nov 23 10:00:09 web1 sshd[1201]: message repeated 0 times: [ Failed password for root]", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc, n := authFailures(tt.line)
			if svc != tt.svc || n != tt.n {
				t.Errorf("authFailures(%q) = %q, %d; want %q, %d", tt.line, svc, n, tt.svc, tt.n)
			}
		})
	}
}
