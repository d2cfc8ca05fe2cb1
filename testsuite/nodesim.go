package testsuite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// NodeName is the one (simulated) node of the rig.
const NodeName = "lifeboat-rig-node"

// NodeSim stands in for the scheduler and the kubelet, which the rig does not
// run: it registers a Ready node, binds pending pods to it, marks them Running
// and Ready (so Deployments really become ready through the real
// controller-manager), finishes graceful deletions, and can keep chosen pods
// crash-looping.
type NodeSim struct {
	client kubernetes.Interface
	mu     sync.Mutex
	crash  []string // pod name prefixes to keep crash-looping
	cancel context.CancelFunc
	done   chan struct{}
	ip     int
}

// StartNodeSim registers the node and starts simulating.
func StartNodeSim(ctx context.Context, cfg *rest.Config) (*NodeSim, error) {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName, Labels: map[string]string{"kubernetes.io/hostname": NodeName}}}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("node simulator: registering node: %w", err)
	}
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("250")}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := c.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node.Status = corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated by lifeboat",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}
		_, err = c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node simulator: node status: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	s := &NodeSim{client: c, cancel: cancel, done: make(chan struct{})}
	go s.loop(loopCtx)
	return s, nil
}

// CrashLoop keeps pods whose name starts with prefix not ready (CrashLoopBackOff).
func (s *NodeSim) CrashLoop(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crash = append(s.crash, prefix)
}

// Heal stops crash-looping pods whose name starts with prefix.
func (s *NodeSim) Heal(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keep []string
	for _, p := range s.crash {
		if p != prefix {
			keep = append(keep, p)
		}
	}
	s.crash = keep
}

// Stop ends the simulation.
func (s *NodeSim) Stop() {
	s.cancel()
	<-s.done
}

func (s *NodeSim) crashing(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.crash {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (s *NodeSim) loop(ctx context.Context) {
	defer close(s.done)
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// provisionedBy marks the volumes the simulated CSI driver provisioned.
const provisionedBy = "rig.lifeboat.dev/csi"

// provision stands in for a CSI driver and its external-provisioner: for
// every pending claim without a volume it creates a matching
// PersistentVolume pre-bound to the claim (reclaim policy Delete, the
// default of dynamically provisioned volumes), which the real
// persistentvolume-binder controller then binds; a volume it provisioned
// whose claim is gone (Released) it deletes, as the external-provisioner does.
func (s *NodeSim) provision(ctx context.Context) {
	claims, err := s.client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	if pvs, err := s.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, pv := range pvs.Items {
			released := pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed
			if released && pv.Annotations["pv.kubernetes.io/provisioned-by"] == provisionedBy && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
				_ = s.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
			}
		}
	}
	for _, c := range claims.Items {
		if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || c.DeletionTimestamp != nil {
			continue
		}
		size := c.Spec.Resources.Requests[corev1.ResourceStorage]
		class := ""
		if c.Spec.StorageClassName != nil {
			class = *c.Spec.StorageClassName
		}
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-" + string(c.UID)[:13], Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": provisionedBy}},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
				AccessModes:                   c.Spec.AccessModes,
				StorageClassName:              class,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: c.Namespace, Name: c.Name, UID: c.UID},
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/lifeboat-rig/" + string(c.UID)}},
			},
		}
		_, _ = s.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	}
}

func (s *NodeSim) tick(ctx context.Context) {
	s.provision(ctx)
	pods, err := s.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		switch {
		case p.DeletionTimestamp != nil:
			zero := int64(0)
			_ = s.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		case p.Spec.NodeName == "":
			_ = s.client.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
				Target:     corev1.ObjectReference{Kind: "Node", Name: NodeName},
			}, metav1.CreateOptions{})
		case p.Spec.NodeName == NodeName:
			s.updateStatus(ctx, p)
		}
	}
}

// updateStatus makes the pod Running and Ready, or crash-looping.
func (s *NodeSim) updateStatus(ctx context.Context, p *corev1.Pod) {
	crash := s.crashing(p.Name)
	ready := isReady(p)
	if p.Status.Phase == corev1.PodRunning && ready == !crash {
		return
	}
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		st := corev1.ConditionTrue
		if !ok {
			st = corev1.ConditionFalse
		}
		return corev1.PodCondition{Type: t, Status: st, LastTransitionTime: now}
	}
	if p.Status.PodIP == "" {
		s.mu.Lock()
		s.ip++
		p.Status.PodIP = fmt.Sprintf("10.244.%d.%d", s.ip/250, s.ip%250+1)
		s.mu.Unlock()
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP = "127.0.0.1"
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{cond(corev1.PodScheduled, true), cond(corev1.PodInitialized, true),
		cond(corev1.ContainersReady, !crash), cond(corev1.PodReady, !crash)}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "sim://" + c.Image, Ready: !crash}
		if crash {
			cs.RestartCount = 5
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container (simulated)"}}
		} else {
			started := true
			cs.Started = &started
			cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
	}
	_, _ = s.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
