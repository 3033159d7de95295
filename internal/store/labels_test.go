package store

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/prometheus/common/model"
)

// labelsJSON must decode to the same label set as json.Marshal's encoding
// does, whatever the labels hold.
func FuzzLabelsJSON(f *testing.F) {
	f.Add("alertname", "DiskFull", "odd", "$(touch pwned)\n\x00\"\\</script>\u2028")
	f.Add("a", "\xff\xfe", "b", "é")
	f.Add("", "", "x", "\t\r\x1f")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		ls := model.LabelSet{model.LabelName(n1): model.LabelValue(v1), model.LabelName(n2): model.LabelValue(v2)}
		got := labelsJSON(ls)
		// Plain maps: model.LabelSet's decoder also checks the names.
		var back, want map[string]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("labelsJSON made invalid JSON %q: %v", got, err)
		}
		ref, _ := json.Marshal(ls)
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(back, want) {
			t.Errorf("labelsJSON %q decodes to %v, json.Marshal's to %v", got, back, want)
		}
	})
}

func TestLabelsJSONOfNoLabels(t *testing.T) {
	t.Parallel()
	for _, ls := range []model.LabelSet{nil, {}} {
		want, _ := json.Marshal(ls)
		if got := labelsJSON(ls); got != string(want) {
			t.Errorf("labelsJSON(%#v) = %s, json.Marshal says %s", ls, got, want)
		}
	}
}

func BenchmarkLabelsJSON(b *testing.B) {
	ls := model.LabelSet{"alertname": "HealerTestTrigger", "instance": "127.0.0.1:19100", "job": "deus-healer-test", "severity": "warning"}
	b.Run("labelsJSON", func(b *testing.B) {
		for b.Loop() {
			_ = labelsJSON(ls)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			j, _ := json.Marshal(ls)
			_ = string(j)
		}
	})
}
