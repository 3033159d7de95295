package query

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
)

func TestScope(t *testing.T) {
	t.Parallel()
	alert := map[string]string{"service": `nginx"} or vector(1) #`, "instance": "web1:9110"}
	for name, tc := range map[string]struct {
		expr   string
		labels []string
		want   string
		err    bool
	}{
		"adds a matcher to every selector": {
			expr: `deus_service_up == 0 and on(instance) up`, labels: []string{"instance"},
			want: `deus_service_up{instance="web1:9110"} == 0 and on (instance) up{instance="web1:9110"}`,
		},
		"a hostile value stays a matcher value": {
			expr: `deus_service_up == 0`, labels: []string{"service"},
			want: `deus_service_up{service="nginx\"} or vector(1) #"} == 0`,
		},
		"replaces a matcher on the same label": {
			expr: `up{instance=~".*"}`, labels: []string{"instance"},
			want: `up{instance="web1:9110"}`,
		},
		"reaches into functions and ranges": {
			expr: `rate(x[5m]) > 0`, labels: []string{"instance"},
			want: `rate(x{instance="web1:9110"}[5m]) > 0`,
		},
		"a label the alert lacks is an error": {expr: `up`, labels: []string{"job"}, err: true},
		"bad PromQL is an error":              {expr: `up ==`, err: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Scope(tc.expr, tc.labels, alert)
			if (err != nil) != tc.err {
				t.Fatalf("Scope(%q): got error %v, want error %v", tc.expr, err, tc.err)
			}
			if got != tc.want {
				t.Errorf("Scope(%q) = %s; want %s", tc.expr, got, tc.want)
			}
		})
	}
}

func TestClientQueryRangeReturnsTheMatrix(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" || r.FormValue("step") != "60" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"instance":"a"},"values":[[1700000000,"1"],[1700000060,"2"]]}]}}`))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, promconfig.HTTPClientConfig{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.QueryRange(t.Context(), "up", time.Unix(1700000000, 0), time.Unix(1700000060, 0), time.Minute)
	if err != nil || len(m) != 1 || len(m[0].Values) != 2 || m[0].Values[1].Value != 2 {
		t.Fatalf("QueryRange: got %v, %v; want one series with 2 samples", m, err)
	}
}
