package collector

import (
	"bytes"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// Metric types as written on the exposition's TYPE line.
const (
	Gauge   = "gauge"
	Counter = "counter"
)

// Writer accumulates one collector's part of an exposition in the Prometheus
// text format. Every family is written whole, header first, so the output of
// several writers can be concatenated.
//
// Sample lines go through VictoriaMetrics/metrics' Write* helpers; the HELP and
// TYPE lines are ours because the library writes HELP without text, which
// promtool check metrics rejects.
type Writer struct {
	buf  bytes.Buffer
	name bytes.Buffer // scratch for one series name with its labels
	typ  string
}

// Family writes the HELP and TYPE lines of a metric family. The samples of
// that family must follow before the next call to Family.
func (w *Writer) Family(name, typ, help string) {
	w.typ = typ
	w.buf.WriteString("# HELP ")
	w.buf.WriteString(name)
	w.buf.WriteByte(' ')
	writeEscaped(&w.buf, help, false)
	w.buf.WriteString("\n# TYPE ")
	w.buf.WriteString(name)
	w.buf.WriteByte(' ')
	w.buf.WriteString(typ)
	w.buf.WriteByte('\n')
}

// Sample writes one sample of the current family. labels holds name, value
// pairs; an odd trailing element is ignored.
func (w *Writer) Sample(name string, value float64, labels ...string) {
	w.name.Reset()
	w.name.WriteString(name)
	if len(labels) >= 2 {
		w.name.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.name.WriteByte(',')
			}
			w.name.WriteString(labels[i])
			w.name.WriteString(`="`)
			writeEscaped(&w.name, labels[i+1], true)
			w.name.WriteByte('"')
		}
		w.name.WriteByte('}')
	}
	series := w.name.String()
	if w.typ == Counter {
		metrics.WriteCounterFloat64(&w.buf, series, value)
		return
	}
	metrics.WriteGaugeFloat64(&w.buf, series, value)
}

// Single writes a family with one unlabelled sample.
func (w *Writer) Single(name, typ, help string, value float64) {
	w.Family(name, typ, help)
	w.Sample(name, value)
}

// Bytes returns what was written so far.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

// Reset empties the writer for reuse.
func (w *Writer) Reset() {
	w.buf.Reset()
	w.typ = ""
}

// writeEscaped escapes a HELP text or a label value for the text format:
// backslash and newline always, double quotes in label values.
func writeEscaped(b *bytes.Buffer, s string, quote bool) {
	if !strings.ContainsAny(s, "\\\n\"") {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
}
