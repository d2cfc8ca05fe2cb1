package testsuite

import (
	"context"
	"io"
	"strings"
)

// k8sRigBinaries are what the k8srig wrapper module builds: the control
// plane, Velero with its AWS plugin, Argo CD and Argo CD's CRD manifests.
type k8sRigBinaries struct {
	Etcd, APIServer, ControllerManager    string
	Velero, AWSPlugin                     string
	ArgoCD, ApplicationCRD, AppProjectCRD string
}

// ensureK8sRig returns the cached binaries of the k8srig module, building
// them in one `go build` first if any is missing (about 16 minutes and 29
// CPU-minutes cold on 2 cores; the three built apart took 53 CPU-minutes). EnsureKube,
// EnsureVelero and EnsureArgoCD all call it: the build's lock makes a
// second caller wait for the first's build. The cache key names every
// version the module pins and the revision of its mains.
func ensureK8sRig(ctx context.Context, progress io.Writer) (k8sRigBinaries, error) {
	const argo = "github.com/argoproj/argo-cd/v3"
	minor := strings.Split(strings.TrimPrefix(KubeVersion, "v"), ".")[1]
	paths, err := wrapperBuild{wrapper: "k8srig", what: "Kubernetes, Velero and Argo CD", name: "k8srig", minutes: 16,
		version: KubeVersion + "-velero" + VeleroVersion + "-aws" + VeleroAWSPluginVersion + "-argocd" + ArgoCDVersion + "-rigmain1",
		pkgs: []string{"./etcd", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
			"./velero", "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws", "./argocd"},
		bins: []string{"etcd", "kube-apiserver", "kube-controller-manager", "velero", "velero-plugin-for-aws", "argocd"},
		// -X of a package a binary does not link is ignored: one set serves all.
		ldflags: strings.Join([]string{
			"-X k8s.io/component-base/version.gitVersion=" + KubeVersion,
			"-X k8s.io/component-base/version.gitMajor=1",
			"-X k8s.io/component-base/version.gitMinor=" + minor,
			"-X k8s.io/component-base/version.gitTreeState=clean",
			"-X k8s.io/client-go/pkg/version.gitVersion=" + KubeVersion,
			"-X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=" + VeleroVersion,
			"-X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean",
			"-X " + argo + "/common.version=" + strings.TrimPrefix(ArgoCDVersion, "v"),
			"-X " + argo + "/common.gitTreeState=clean",
		}, " "),
		extrasFrom: argo, extras: []string{"manifests/crds/application-crd.yaml", "manifests/crds/appproject-crd.yaml"},
	}.ensure(ctx, progress)
	if err != nil {
		return k8sRigBinaries{}, err
	}
	return k8sRigBinaries{Etcd: paths[0], APIServer: paths[1], ControllerManager: paths[2], Velero: paths[3], AWSPlugin: paths[4],
		ArgoCD: paths[5], ApplicationCRD: paths[6], AppProjectCRD: paths[7]}, nil
}
