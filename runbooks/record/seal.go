package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// FieldDigests returns a sha256 of each top-level field of the evidence
// record (the seal left out) and of each step ("steps[2] shift-traffic"),
// over its compact JSON: a verifier compares them to name what was edited.
func FieldDigests(record []byte) (map[string]string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(record, &fields); err != nil {
		return nil, err
	}
	delete(fields, "seal")
	out := map[string]string{}
	for name, raw := range fields {
		out[name] = digest(raw)
	}
	var steps []json.RawMessage
	if err := json.Unmarshal(fields["steps"], &steps); err == nil {
		for i, raw := range steps {
			var head struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(raw, &head)
			out[fmt.Sprintf("steps[%d] %s", i, head.ID)] = digest(raw)
		}
	}
	return out, nil
}

// EditedFields lists the fields whose digest differs between want (the
// seal's) and the record as it is now, sorted; a field added or removed
// counts too.
func EditedFields(want map[string]string, record []byte) []string {
	got, err := FieldDigests(record)
	if err != nil {
		return []string{"the whole record (it is no longer JSON: " + err.Error() + ")"}
	}
	var out []string
	for name, d := range want {
		if got[name] != d {
			out = append(out, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			out = append(out, name+" (added)")
		}
	}
	sort.Strings(out)
	return out
}

func digest(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return runbooks.HashOf(raw)
	}
	return runbooks.HashOf(b.Bytes())
}
