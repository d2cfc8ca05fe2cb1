// Package cloudflare is an emulator of the Cloudflare API v4 endpoints
// lifeboat's actions call (no local Cloudflare exists): zones, dns_records,
// load-balancer pools and load balancers. It speaks the real wire format —
// the {success, errors, messages, result, result_info} envelope, bearer-token
// auth with per-token permissions, 403 for a token without the right scope,
// 429 with Retry-After, and 5xx on demand — so the actions are tested against
// the same behaviour they meet in production.
package cloudflare

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Permission is a token scope.
type Permission string

// Token scopes the emulator checks.
const (
	ZoneRead Permission = "zone:read"
	DNSEdit  Permission = "dns:edit"
	LBEdit   Permission = "load_balancers:edit"
)

// Record is a DNS record as the API returns it.
type Record struct {
	ID         string    `json:"id"`
	ZoneID     string    `json:"zone_id"`
	ZoneName   string    `json:"zone_name"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Content    string    `json:"content"`
	TTL        int       `json:"ttl"`
	Proxied    bool      `json:"proxied"`
	Proxiable  bool      `json:"proxiable"`
	Comment    string    `json:"comment,omitempty"`
	CreatedOn  time.Time `json:"created_on"`
	ModifiedOn time.Time `json:"modified_on"`
}

// Zone is a zone.
type Zone struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	// MinTTL is the smallest TTL the zone's plan allows (30 on Enterprise, 60 otherwise).
	MinTTL  int     `json:"-"`
	Account Account `json:"account"`
}

// Account owns zones and load-balancer pools.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Pool is a load-balancer pool.
type Pool struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Enabled     bool      `json:"enabled"`
	Origins     []Origin  `json:"origins"`
	Description string    `json:"description,omitempty"`
	ModifiedOn  time.Time `json:"modified_on"`
}

// Origin is one origin of a pool.
type Origin struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Enabled bool   `json:"enabled"`
}

// LoadBalancer is a zone's load balancer.
type LoadBalancer struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	DefaultPools []string  `json:"default_pools"`
	FallbackPool string    `json:"fallback_pool"`
	Enabled      bool      `json:"enabled"`
	Proxied      bool      `json:"proxied"`
	TTL          int       `json:"ttl,omitempty"`
	ModifiedOn   time.Time `json:"modified_on"`
}

// Emulator is a running emulated Cloudflare API.
type Emulator struct {
	// URL is the API base, e.g. http://127.0.0.1:PORT/client/v4
	URL string

	srv    *http.Server
	mu     sync.Mutex
	tokens map[string][]Permission
	// expired tokens are known but past their expires_on: verify says so,
	// every other call is refused.
	expired map[string]time.Time
	zones   map[string]*Zone
	recs    map[string]*Record // by id
	pools   map[string]*Pool   // by id
	lbs     map[string]*LoadBalancer
	lbZone  map[string]string // lb id → zone id
	faults  []fault
	calls   []string
}

type fault struct {
	status     int
	retryAfter int
	path       string // only requests whose path contains this
}

// Start serves a fresh emulator on a loopback port.
func Start() (*Emulator, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Emulator{tokens: map[string][]Permission{}, expired: map[string]time.Time{}, zones: map[string]*Zone{}, recs: map[string]*Record{},
		pools: map[string]*Pool{}, lbs: map[string]*LoadBalancer{}, lbZone: map[string]string{}}
	e.URL = "http://" + l.Addr().String() + "/client/v4"
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(l) }()
	return e, nil
}

// Close stops the emulator.
func (e *Emulator) Close() { _ = e.srv.Close() }

// AddToken allows a bearer token with the given permissions.
func (e *Emulator) AddToken(token string, perms ...Permission) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens[token] = perms
}

// ExpireToken makes a token expired, as one past its expires_on is.
func (e *Emulator) ExpireToken(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expired[token] = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
}

// RenewToken makes an expired token active again.
func (e *Emulator) RenewToken(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.expired, token)
}

// AddZone creates a zone (plan Enterprise: TTLs down to 30s) and returns it.
func (e *Emulator) AddZone(name string) *Zone {
	e.mu.Lock()
	defer e.mu.Unlock()
	z := &Zone{ID: newID(), Name: name, Status: "active", MinTTL: 30, Account: Account{ID: "acc-" + newID()[:8], Name: "lifeboat"}}
	e.zones[z.ID] = z
	return z
}

// AddRecord creates a record directly (test setup).
func (e *Emulator) AddRecord(zone *Zone, typ, name, content string, ttl int) *Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now().UTC()
	r := &Record{ID: newID(), ZoneID: zone.ID, ZoneName: zone.Name, Name: name, Type: typ, Content: content, TTL: ttl,
		Proxiable: typ != "TXT", CreatedOn: now, ModifiedOn: now}
	e.recs[r.ID] = r
	return r
}

// AddPool creates a pool in the zone's account.
func (e *Emulator) AddPool(name string, enabled bool, origins ...Origin) *Pool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := &Pool{ID: newID(), Name: name, Enabled: enabled, Origins: origins, ModifiedOn: time.Now().UTC()}
	e.pools[p.ID] = p
	return p
}

// AddLoadBalancer creates a load balancer on a zone.
func (e *Emulator) AddLoadBalancer(zone *Zone, name string, defaultPools []string, fallback string) *LoadBalancer {
	e.mu.Lock()
	defer e.mu.Unlock()
	lb := &LoadBalancer{ID: newID(), Name: name, DefaultPools: defaultPools, FallbackPool: fallback, Enabled: true, Proxied: true, ModifiedOn: time.Now().UTC()}
	e.lbs[lb.ID], e.lbZone[lb.ID] = lb, zone.ID
	return lb
}

// FailNext makes the next n requests (whose path contains pathPart, "" for
// any) answer status; 429 answers carry Retry-After: retryAfter seconds.
func (e *Emulator) FailNext(n, status, retryAfter int, pathPart string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := 0; i < n; i++ {
		e.faults = append(e.faults, fault{status: status, retryAfter: retryAfter, path: pathPart})
	}
}

// Records returns a copy of the zone's records named name (all when empty).
func (e *Emulator) Records(zone *Zone, name string) []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Record
	for _, r := range e.recs {
		if r.ZoneID == zone.ID && (name == "" || r.Name == name) {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Pool returns a copy of a pool.
func (e *Emulator) Pool(id string) Pool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *e.pools[id]
}

// EnablePool re-enables a pool (test setup).
func (e *Emulator) EnablePool(poolID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pools[poolID].Enabled = true
}

// LoadBalancer returns a copy of a load balancer.
func (e *Emulator) LoadBalancer(id string) LoadBalancer {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *e.lbs[id]
}

// Calls returns "METHOD path" of every request served, in order.
func (e *Emulator) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// apiError is one entry of the envelope's errors.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type envelope struct {
	Success    bool        `json:"success"`
	Errors     []apiError  `json:"errors"`
	Messages   []any       `json:"messages"`
	Result     any         `json:"result"`
	ResultInfo *resultInfo `json:"result_info,omitempty"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

func reply(w http.ResponseWriter, status int, result any, info *resultInfo) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(envelope{Success: true, Errors: []apiError{}, Messages: []any{}, Result: result, ResultInfo: info})
}

func fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(envelope{Success: false, Errors: []apiError{{Code: code, Message: msg}}, Messages: []any{}})
}

// page applies page/per_page (default 1 and 100) to n items.
func page(r *http.Request, n int) (from, to int, info *resultInfo) {
	p, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pp, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if p < 1 {
		p = 1
	}
	if pp < 1 || pp > 5000 {
		pp = 100
	}
	from, to = min((p-1)*pp, n), min(p*pp, n)
	pages := (n + pp - 1) / pp
	return from, to, &resultInfo{Page: p, PerPage: pp, Count: to - from, TotalCount: n, TotalPages: pages}
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, r.Method+" "+r.URL.Path)
	path := strings.TrimPrefix(r.URL.Path, "/client/v4")
	for i, f := range e.faults {
		if f.path == "" || strings.Contains(path, f.path) {
			e.faults = append(e.faults[:i], e.faults[i+1:]...)
			if f.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
				fail(w, f.status, 971, "Please wait and consider throttling your request speed")
			} else {
				fail(w, f.status, 10000+f.status, fmt.Sprintf("Internal server error (injected %d)", f.status))
			}
			return
		}
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		fail(w, http.StatusBadRequest, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
		return
	}
	perms, ok := e.tokens[strings.TrimPrefix(auth, "Bearer ")]
	if !strings.HasPrefix(auth, "Bearer ") || !ok {
		fail(w, http.StatusBadRequest, 1000, "Invalid API Token")
		return
	}
	token := strings.TrimPrefix(auth, "Bearer ")
	if path == "/user/tokens/verify" && r.Method == http.MethodGet {
		e.verifyToken(w, token)
		return
	}
	if _, gone := e.expired[token]; gone {
		fail(w, http.StatusUnauthorized, 9109, "Invalid access token")
		return
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	need := ZoneRead
	if r.Method != http.MethodGet {
		switch {
		case len(parts) >= 3 && parts[2] == "dns_records":
			need = DNSEdit
		case strings.Contains(path, "load_balancers"):
			need = LBEdit
		}
	}
	if !has(perms, need) && !(need == ZoneRead && (has(perms, DNSEdit) || has(perms, LBEdit))) {
		fail(w, http.StatusForbidden, 10000, "Authentication error")
		return
	}
	switch {
	case len(parts) == 1 && parts[0] == "zones" && r.Method == http.MethodGet:
		e.listZones(w, r)
	case len(parts) >= 3 && parts[0] == "zones" && parts[2] == "dns_records":
		e.dnsRecords(w, r, parts[1], parts[3:])
	case len(parts) >= 3 && parts[0] == "zones" && parts[2] == "load_balancers":
		e.loadBalancers(w, r, parts[1], parts[3:])
	case len(parts) >= 4 && parts[0] == "accounts" && parts[2] == "load_balancers" && parts[3] == "pools":
		e.poolsAPI(w, r, parts[4:])
	default:
		fail(w, http.StatusNotFound, 7003, "Could not route to "+path+", perhaps your object identifier is invalid?")
	}
}

func has(perms []Permission, p Permission) bool {
	for _, x := range perms {
		if x == p {
			return true
		}
	}
	return false
}

// State is every record, pool and load balancer, sorted, as JSON: what a
// test compares to prove that nothing changed.
func (e *Emulator) State() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	recs := make([]Record, 0, len(e.recs))
	for _, r := range e.recs {
		recs = append(recs, *r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	pools := make([]Pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, *p)
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].ID < pools[j].ID })
	lbs := make([]LoadBalancer, 0, len(e.lbs))
	for _, l := range e.lbs {
		lbs = append(lbs, *l)
	}
	sort.Slice(lbs, func(i, j int) bool { return lbs[i].ID < lbs[j].ID })
	b, _ := json.MarshalIndent(map[string]any{"records": recs, "pools": pools, "loadBalancers": lbs}, "", "  ")
	return string(b)
}
