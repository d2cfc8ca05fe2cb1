// Package kube implements the kube.* actions with client-go against the
// cluster a runbook target names.
package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
	rbacv1api "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	appsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
	authenticationv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1 "k8s.io/client-go/kubernetes/typed/authorization/v1"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1 "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// Client is what an action needs to talk to one cluster.
type Client struct {
	Typed   Typed
	Dynamic dynamic.Interface
	Mapper  meta.RESTMapper
	Context string
	// DrillRole is the ClusterRole holding what drills do in their own
	// namespaces (lifeboat rbac's NAME-drill): the drill guard binds it to
	// the worker in each drill namespace it makes. Empty: nothing is bound
	// (a worker that holds those permissions cluster-wide).
	DrillRole string

	selfMu sync.Mutex
	self   *rbacv1api.Subject
}

// Self is who the worker is in this cluster, as an RBAC subject: asked once
// with a SelfSubjectReview (Kubernetes 1.28 or later), then remembered.
func (c *Client) Self(ctx context.Context) (rbacv1api.Subject, error) {
	c.selfMu.Lock()
	defer c.selfMu.Unlock()
	if c.self == nil {
		me, err := c.Typed.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return rbacv1api.Subject{}, fmt.Errorf("who the worker is in %s (a SelfSubjectReview, Kubernetes 1.28 or later): %w", c.Context, err)
		}
		s := SubjectOf(me.Status.UserInfo.Username)
		c.self = &s
	}
	return *c.self, nil
}

// Typed is the part of client-go's Clientset the actions use: five API
// groups (a *kubernetes.Clientset, or its fake, is one). The whole Clientset
// would compile every group's client and apply configurations into the
// binary for nothing.
type Typed interface {
	CoreV1() corev1.CoreV1Interface
	AppsV1() appsv1.AppsV1Interface
	RbacV1() rbacv1.RbacV1Interface
	AuthorizationV1() authorizationv1.AuthorizationV1Interface
	AuthenticationV1() authenticationv1.AuthenticationV1Interface
}

// groups is Typed built from a REST config, the five clients sharing one
// HTTP client.
type groups struct {
	core  *corev1.CoreV1Client
	apps  *appsv1.AppsV1Client
	rbac  *rbacv1.RbacV1Client
	authz *authorizationv1.AuthorizationV1Client
	authn *authenticationv1.AuthenticationV1Client
}

// CoreV1, AppsV1, RbacV1, AuthorizationV1 and AuthenticationV1 make groups
// a Typed: the five API groups the actions call.
func (g *groups) CoreV1() corev1.CoreV1Interface { return g.core }
func (g *groups) AppsV1() appsv1.AppsV1Interface { return g.apps }
func (g *groups) RbacV1() rbacv1.RbacV1Interface { return g.rbac }
func (g *groups) AuthorizationV1() authorizationv1.AuthorizationV1Interface {
	return g.authz
}
func (g *groups) AuthenticationV1() authenticationv1.AuthenticationV1Interface {
	return g.authn
}

func newGroups(cfg *rest.Config) (*groups, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	g := &groups{}
	if g.core, err = corev1.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if g.apps, err = appsv1.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if g.rbac, err = rbacv1.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if g.authz, err = authorizationv1.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if g.authn, err = authenticationv1.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	return g, nil
}

// Source returns the client of a kubeContext named by a runbook target.
type Source interface {
	For(kubeContext string) (*Client, error)
}

// ContextRef points a kubeContext at a kubeconfig file (and, optionally, a
// context of another name in it).
type ContextRef struct {
	Kubeconfig string `yaml:"kubeconfig"`
	Context    string `yaml:"context"`
}

// KubeconfigSource resolves kubeContexts through kubeconfig files: a context
// listed in Contexts uses its own file, any other the Default file
// ($KUBECONFIG or ~/.kube/config when empty). Clients are cached.
type KubeconfigSource struct {
	Default  string
	Contexts map[string]ContextRef
	// InCluster is the kubeContext reached with the pod's own
	// ServiceAccount (rest.InClusterConfig), when the worker runs in it.
	InCluster string
	// DrillRole is every client's Client.DrillRole.
	DrillRole string

	mu    sync.Mutex
	cache map[string]*Client
}

// For implements Source.
func (s *KubeconfigSource) For(kubeContext string) (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[kubeContext]; ok {
		return c, nil
	}
	if kubeContext != "" && kubeContext == s.InCluster {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kube context %q is the worker's own cluster (kube.inCluster), but the worker is not in a pod: %w", kubeContext, err)
		}
		return s.keep(kubeContext, cfg)
	}
	file, name := s.Default, kubeContext
	if ref, ok := s.Contexts[kubeContext]; ok {
		if ref.Kubeconfig != "" {
			file = ref.Kubeconfig
		}
		if ref.Context != "" {
			name = ref.Context
		}
	}
	if file == "" {
		file = DefaultKubeconfig(os.Getenv)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: file},
		&clientcmd.ConfigOverrides{CurrentContext: name}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kube context %q (kubeconfig %s): %w — declare it under kube.contexts in the worker config", kubeContext, file, err)
	}
	return s.keep(kubeContext, cfg)
}

// keep makes the context's client and caches it (the lock is held).
func (s *KubeconfigSource) keep(kubeContext string, cfg *rest.Config) (*Client, error) {
	c, err := NewClient(cfg, kubeContext)
	if err != nil {
		return nil, err
	}
	c.DrillRole = s.DrillRole
	if s.cache == nil {
		s.cache = map[string]*Client{}
	}
	s.cache[kubeContext] = c
	return c, nil
}

// DefaultKubeconfig is the kubeconfig used when none is configured:
// $KUBECONFIG, else ~/.kube/config.
func DefaultKubeconfig(getenv func(string) string) string {
	if file := getenv("KUBECONFIG"); file != "" {
		return file
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

// NewClient builds a Client from a REST config.
func NewClient(cfg *rest.Config, name string) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	typed, err := newGroups(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return &Client{Typed: typed, Dynamic: dyn, Mapper: mapper, Context: name}, nil
}
