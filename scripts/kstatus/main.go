// kstatus-oracle computes kstatus's verdict (sigs.k8s.io/cli-utils/pkg/kstatus/status) for each object of a
// JSON array on stdin and prints a JSON array of {status, message}: the reference berth's health table is
// compared with (test/unit/health-kstatus.test.ts).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	var raws []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&raws); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus-oracle: stdin is not a JSON array:", err)
		os.Exit(2)
	}
	out := make([]verdict, 0, len(raws))
	for i, raw := range raws {
		// UnmarshalJSON keeps integers as int64, which kstatus's field readers require.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus-oracle: object %d: %v\n", i, err)
			os.Exit(2)
		}
		r, err := status.Compute(u)
		if err != nil {
			out = append(out, verdict{Status: "Error", Message: err.Error()})
			continue
		}
		out = append(out, verdict{Status: string(r.Status), Message: r.Message})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus-oracle:", err)
		os.Exit(1)
	}
}
