// Command gotemplate runs Go's own text/template over cases read as JSON on stdin
// ({"t": template, "d": data, "m": missingkey=error}) and prints each output or error,
// the reference tests/template/test_against_go.py compares waypost's evaluator with.
package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type Case struct {
	T string      `json:"t"`
	D interface{} `json:"d"`
	M bool        `json:"m"`
}

func main() {
	var cases []Case
	json.NewDecoder(os.Stdin).Decode(&cases)
	out := []map[string]string{}
	for _, c := range cases {
		r := map[string]string{}
		t := template.New("t")
		if c.M {
			t = t.Option("missingkey=error")
		}
		t, err := t.Parse(c.T)
		if err != nil {
			r["err"] = err.Error()
		} else {
			var b strings.Builder
			if err := t.Execute(&b, c.D); err != nil {
				r["err"] = err.Error()
			} else {
				r["out"] = b.String()
			}
		}
		out = append(out, r)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
