package store

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// labelsJSON encodes a label set as the JSON object json.Marshal makes of
// it (names sorted), without its HTML escaping, which is all the column
// needs, and without reflection, which intake cannot afford per alert.
func labelsJSON(ls model.LabelSet) string {
	if ls == nil {
		return "null"
	}
	var stack [24]model.LabelName
	names := stack[:0]
	size := 2
	for n, v := range ls {
		if !utf8.ValidString(string(n)) || !utf8.ValidString(string(v)) {
			// json.Marshal replaces invalid UTF-8; let it.
			b, _ := json.Marshal(ls)
			return string(b)
		}
		names = append(names, n)
		size += len(n) + len(v) + 6
	}
	slices.Sort(names)
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, string(n))
		b.WriteByte(':')
		writeJSONString(&b, string(ls[n]))
	}
	b.WriteByte('}')
	return b.String()
}

// writeJSONString writes s, valid UTF-8, as a JSON string: '"', '\\' and
// control characters escaped, everything else as it is.
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := range len(s) {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
