package starter

import (
	"encoding/json"
	"fmt"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// SealedRecord is a stored evidence file as the worker wrote it: the JSON
// bytes and the worker's signature of them.
type SealedRecord struct {
	JSON      []byte
	Signature string
	// Location is where the worker stored it (a file path or s3:// URL).
	Location string
}

// SealedFromHistory rebuilds, from history alone, the exact evidence file
// the worker stored and signed at the end of the run: the record sent to
// the last evidence.store that completed, with the seal and signature that
// store returned. It verifies like the original (lifeboat evidence verify),
// so a lost or doubted evidence directory can be restored. ok is false
// when no final record was sealed (an older run, or no store completed).
func SealedFromHistory(h *historypb.History, dc converter.DataConverter) (rec SealedRecord, ok bool, err error) {
	scheduled := map[int64]*historypb.HistoryEvent{}
	var last *historypb.HistoryEvent
	var lastResult runbooks.StepResult
	for _, e := range h.GetEvents() {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == workflows.StoreActivity {
			scheduled[e.GetEventId()] = e
		}
		c := e.GetActivityTaskCompletedEventAttributes()
		if c == nil || scheduled[c.GetScheduledEventId()] == nil {
			continue
		}
		var res runbooks.StepResult
		if err := dc.FromPayloads(c.GetResult(), &res); err != nil {
			return rec, false, fmt.Errorf("decoding an evidence.store result: %w", err)
		}
		if res.Outputs["seal"] != nil {
			last, lastResult = scheduled[c.GetScheduledEventId()], res
		}
	}
	if last == nil {
		return rec, false, nil
	}
	ev, err := storeInput(last.GetActivityTaskScheduledEventAttributes(), dc)
	if err != nil {
		return rec, false, err
	}
	b, err := json.Marshal(lastResult.Outputs["seal"])
	if err != nil {
		return rec, false, err
	}
	if err := json.Unmarshal(b, &ev.Seal); err != nil {
		return rec, false, fmt.Errorf("decoding the seal evidence.store returned: %w", err)
	}
	// Exactly as evidence.store writes it (round-tripped through JSON as
	// the store's input is).
	if b, err = json.Marshal(ev); err == nil {
		ev = record.Evidence{}
		err = json.Unmarshal(b, &ev)
	}
	if err != nil {
		return rec, false, err
	}
	pretty, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return rec, false, err
	}
	sig, _ := lastResult.Outputs["signature"].(string)
	loc, _ := lastResult.Outputs["json"].(string)
	return SealedRecord{JSON: append(pretty, '\n'), Signature: sig, Location: loc}, true, nil
}
