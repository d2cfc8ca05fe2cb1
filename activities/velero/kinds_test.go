package velero

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A restore's resource list as Velero writes it: a CaseFile is missing when
// the backup left it out, and a failed entry does not count as restored.
func TestMissingKindsNamesWhatARestoreDidNotBringBack(t *testing.T) {
	restored := map[string][]string{
		"v1/ConfigMap":       {"case-management/case-api-config(created)"},
		"apps/v1/Deployment": {"case-management/case-api(skipped)"},
		"v1/Secret":          {"case-management/case-api-session-key(failed)"},
		"v1/Namespace":       {"case-management(created)"},
	}
	counts := countKinds(restored, nil)
	assert.Equal(t, []string{"CaseFile.cases.example.com", "Secret"},
		missingKinds(counts, []string{"ConfigMap", "Deployment.apps", "CaseFile.cases.example.com", "Secret"}))
	assert.Empty(t, missingKinds(counts, []string{"configmap", "Namespace"}), "kinds match whatever their case")

	backup := map[string][]string{
		"cases.example.com/v1/CaseFile": {"other/case-9"},
		"v1/ConfigMap":                  {"case-management/case-api-config"},
	}
	assert.Equal(t, []string{"CaseFile.cases.example.com"}, missingKinds(countKinds(backup, []string{"case-management"}), []string{"CaseFile.cases.example.com", "ConfigMap"}),
		"a kind held only in another namespace is not restored by this step")
}
