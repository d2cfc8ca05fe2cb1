package rbac_test

import (
	"fmt"
	"maps"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/lifeboat-dr/lifeboat/rbac"
)

func mapsValues(m map[string][]rbacv1.PolicyRule) [][]rbacv1.PolicyRule {
	return slices.Collect(maps.Values(m))
}

func keys(m map[string]*rbac.Grant) []string { return slices.Sorted(maps.Keys(m)) }

func typeName(o any) string { return fmt.Sprintf("%T", o) }
