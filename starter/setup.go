package starter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// RegisterSearchAttributes registers lifeboat's search attributes in a
// namespace of a self-hosted cluster (the dev server has them from its
// start flags); those already there are left alone. added lists the new
// ones. Temporal Cloud refuses the operator API: there they are added in
// the Cloud UI or with tcld, and the error says so.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) (added []string, err error) {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("listing the search attributes of namespace %s: %w", namespace, err)
	}
	want := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributeTypes {
		if _, ok := have.GetCustomAttributes()[name]; ok {
			continue
		}
		v, ok := enumspb.IndexedValueType_value["INDEXED_VALUE_TYPE_"+strings.ToUpper(typ)]
		if !ok {
			return nil, fmt.Errorf("search attribute %s: unknown type %s", name, typ)
		}
		want[name] = enumspb.IndexedValueType(v)
		added = append(added, name)
	}
	slices.Sort(added)
	if len(want) == 0 {
		return nil, nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: want})
	if err != nil {
		return nil, fmt.Errorf("adding search attributes %s to namespace %s: %w (on Temporal Cloud, add them in the Cloud UI or with tcld: %s)",
			strings.Join(added, ", "), namespace, err, cloudHint())
	}
	return added, nil
}

func cloudHint() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(workflows.SearchAttributeTypes)) {
		parts = append(parts, name+"="+workflows.SearchAttributeTypes[name])
	}
	return strings.Join(parts, " ")
}
