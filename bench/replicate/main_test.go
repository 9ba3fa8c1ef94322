package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDocParams(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"couchnpm's document on CouchDB", `{"_id":"x","source":"http://u:p@h/db","target":"t","continuous":true,"selector":{"_id":{"$regex":"^[^_]"}},"owner":"couchnpm"}`,
			`continuous=true selector={"_id":{"$regex":"^[^_]"}}`},
		{"tuned by hand", `{"continuous":true,"worker_processes":8,"checkpoint_interval":5000}`, "continuous=true worker_processes=8 checkpoint_interval=5000"},
		{"nothing", `{"source":"s","target":"t"}`, "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.doc), &doc); err != nil {
				t.Fatal(err)
			}
			if got := docParams(doc); got != tc.want {
				t.Fatalf("docParams = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNodeParams(t *testing.T) {
	got := nodeParams(map[string]string{"worker_processes": "8", "max_jobs": "500"})
	for _, want := range []string{"worker_processes=8 ", "worker_batch_size=500 (default)", "checkpoint_interval=30000 (default)"} {
		if !strings.Contains(got, want) {
			t.Errorf("nodeParams = %q, lacks %q", got, want)
		}
	}
	if strings.Contains(got, "max_jobs") {
		t.Errorf("nodeParams = %q lists a setting that does not tune one replication", got)
	}
}
