package starter

import (
	"context"
	"fmt"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// HistoryJSON returns a run's full event history as JSON, in the format the
// SDK's workflow replayer (and `temporal workflow show --output json`) reads.
func (s *Starter) HistoryJSON(ctx context.Context, id string) ([]byte, error) {
	it := s.c.GetWorkflowHistory(ctx, id, "", false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("reading the history of %s: %w", id, explain(id, err))
		}
		h.Events = append(h.Events, ev)
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
}
