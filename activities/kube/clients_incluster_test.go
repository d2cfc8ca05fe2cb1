package kube_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
)

// The worker's own cluster is reached with the pod's ServiceAccount; out
// of a pod the error says which setting asked for it.
func TestTheInClusterContextNeedsAPod(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := (&kube.KubeconfigSource{InCluster: "dr"}).For("dr")
	assert.ErrorContains(t, err, `kube context "dr" is the worker's own cluster (kube.inCluster), but the worker is not in a pod`)
}
