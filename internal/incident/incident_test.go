package incident

import (
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

func matchers(t *testing.T, s string) labels.Matchers {
	t.Helper()
	ms, err := labels.ParseMatchers(s)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func rules(t *testing.T) Rules {
	return Rules{GroupBy: []string{"instance"}, Window: 5 * time.Minute, Causes: []Cause{
		{Name: "a full disk takes services down", Cause: matchers(t, `alertname="DiskFull"`), Effect: matchers(t, `alertname="ServiceDown"`)},
		{Name: "a service down fails its probe", Cause: matchers(t, `alertname="ServiceDown"`), Effect: matchers(t, `alertname="ProbeFailed"`)},
	}}
}

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func member(key, name string, at time.Duration, runbook string, extra ...string) Member {
	ls := model.LabelSet{"alertname": model.LabelValue(name), "instance": "web1"}
	for i := 0; i+1 < len(extra); i += 2 {
		ls[model.LabelName(extra[i])] = model.LabelValue(extra[i+1])
	}
	return Member{Key: key, Alertname: name, Labels: ls, StartsAt: t0.Add(at), Runbook: runbook}
}

func TestTheCauseIsPrimaryWhateverArrivesFirst(t *testing.T) {
	t.Parallel()
	r := rules(t)
	in := &Incident{ID: "i", Group: `{instance="web1"}`, State: Open}
	// The probe first, then the service, then the disk that took it down.
	for _, m := range []Member{
		member("probe", "ProbeFailed", 0, ""),
		member("svc", "ServiceDown", time.Minute, "restart"),
		member("disk", "DiskFull", 2*time.Minute, "clean"),
	} {
		if len(in.Members) > 0 && !r.Accepts(in, in.Group, m) {
			t.Fatalf("%s not accepted into %+v", m.Key, in)
		}
		in.Members = append(in.Members, m)
	}
	if got := r.Ranked(in); got[0] != "disk" || got[1] != "svc" || got[2] != "probe" {
		t.Errorf("ranked %v; want disk, svc, probe", got)
	}
	if k, ok := r.Acting(in); !ok || k != "disk" {
		t.Errorf("acting %q, %v; want the disk's runbook", k, ok)
	}
	if cs := r.CausesOf(in, "svc"); len(cs) != 1 || cs[0].Key != "disk" {
		t.Errorf("causes of the service: %+v; want the disk", cs)
	}
	if cs := r.CausesOf(in, "disk"); len(cs) != 0 {
		t.Errorf("causes of the disk: %+v; want none", cs)
	}
	// With the disk resolved, the service's runbook is what is left.
	in.Resolve("disk", t0.Add(3*time.Minute))
	if k, _ := r.Acting(in); k != "svc" {
		t.Errorf("acting after the disk resolved: %q; want svc", k)
	}
	if cs := r.CausesOf(in, "svc"); len(cs) != 0 {
		t.Errorf("causes of the service once the disk resolved: %+v; want none", cs)
	}
}

func TestAcceptsOnlyLinkedAlertsOfTheGroupInTheWindow(t *testing.T) {
	t.Parallel()
	r := rules(t)
	in := &Incident{ID: "i", Group: `{instance="web1"}`, State: Open, Members: []Member{member("disk", "DiskFull", 0, "clean")}}
	for name, tc := range map[string]struct {
		m     Member
		group string
		want  bool
	}{
		"an effect of a member":          {member("svc", "ServiceDown", time.Minute, ""), in.Group, true},
		"an unrelated alert of the host": {member("cert", "CertExpiring", time.Minute, ""), in.Group, false},
		"an effect on another host":      {member("svc", "ServiceDown", time.Minute, ""), `{instance="web2"}`, false},
		"an effect after the window":     {member("svc", "ServiceDown", 6*time.Minute, ""), in.Group, false},
		"an effect of an effect":         {member("probe", "ProbeFailed", time.Minute, ""), in.Group, false},
	} {
		if got := r.Accepts(in, tc.group, tc.m); got != tc.want {
			t.Errorf("%s: accepted %v; want %v", name, got, tc.want)
		}
	}
	closed := *in
	closed.State = Resolved
	if r.Accepts(&closed, in.Group, member("svc", "ServiceDown", time.Minute, "")) {
		t.Error("a resolved incident accepted an alert")
	}
}

func TestResolvedWhenEveryMemberIs(t *testing.T) {
	t.Parallel()
	in := &Incident{State: Open, Members: []Member{member("a", "DiskFull", 0, ""), member("b", "ServiceDown", 0, "")}}
	if in.Resolve("a", t0) || in.State != Open {
		t.Fatalf("resolved with one member firing: %+v", in)
	}
	if in.Resolve("nope", t0) {
		t.Fatal("resolved by a key not in it")
	}
	if !in.Resolve("b", t0.Add(time.Minute)) || in.State != Resolved || !in.ResolvedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("not resolved with every member resolved: %+v", in)
	}
}

func TestGroupNeedsEveryLabelGroupedBy(t *testing.T) {
	t.Parallel()
	r := Rules{GroupBy: []string{"instance", "service"}}
	if g, ok := r.Group(model.LabelSet{"instance": "web1", "service": `a"b`}); !ok || g != `{instance="web1",service="a\"b"}` {
		t.Errorf("group %q, %v", g, ok)
	}
	if _, ok := r.Group(model.LabelSet{"instance": "web1"}); ok {
		t.Error("grouped an alert without a service label")
	}
}

func TestCausesThatLoopDoNotHang(t *testing.T) {
	t.Parallel()
	r := Rules{Causes: []Cause{
		{Cause: matchers(t, `alertname="A"`), Effect: matchers(t, `alertname="B"`)},
		{Cause: matchers(t, `alertname="B"`), Effect: matchers(t, `alertname="C"`)},
		{Cause: matchers(t, `alertname="C"`), Effect: matchers(t, `alertname="A"`)},
	}}
	in := &Incident{Members: []Member{member("c", "C", 0, ""), member("b", "B", time.Second, ""), member("a", "A", 2*time.Second, "")}}
	if got := r.Ranked(in); len(got) != 3 {
		t.Errorf("ranked %v", got)
	}
}

func TestEqualLabelsKeepTwoServicesApart(t *testing.T) {
	t.Parallel()
	r := Rules{GroupBy: []string{"instance"}, Window: 5 * time.Minute, Causes: []Cause{
		{Cause: matchers(t, `alertname="ServiceDown"`), Effect: matchers(t, `alertname="TargetDown"`), Equal: []string{"service"}},
	}}
	in := &Incident{ID: "i", Group: `{instance="web1"}`, State: Open, Members: []Member{
		member("svc", "ServiceDown", 0, "restart", "service", "nginx"),
		member("tgt", "TargetDown", 0, "", "service", "nginx"),
	}}
	if r.Accepts(in, in.Group, member("app", "ServiceDown", time.Second, "restart", "service", "app")) {
		t.Error("another service's ServiceDown joined by the first one's TargetDown")
	}
	if !r.Accepts(in, in.Group, member("tgt2", "TargetDown", time.Second, "", "service", "nginx")) {
		t.Error("the service's own TargetDown was refused")
	}
}
