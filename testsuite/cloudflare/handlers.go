package cloudflare

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"
)

func (e *Emulator) listZones(w http.ResponseWriter, r *http.Request) {
	var out []Zone
	name := r.URL.Query().Get("name")
	for _, z := range e.zones {
		if name == "" || z.Name == name {
			out = append(out, *z)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	from, to, info := page(r, len(out))
	reply(w, http.StatusOK, nonNil(out[from:to]), info)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// recordBody is what create / update / patch accept.
type recordBody struct {
	Type    *string `json:"type"`
	Name    *string `json:"name"`
	Content *string `json:"content"`
	TTL     *int    `json:"ttl"`
	Proxied *bool   `json:"proxied"`
	Comment *string `json:"comment"`
}

func (e *Emulator) dnsRecords(w http.ResponseWriter, r *http.Request, zoneID string, rest []string) {
	z, ok := e.zones[zoneID]
	if !ok {
		fail(w, http.StatusNotFound, 7003, "Could not route to /zones/"+zoneID+", perhaps your object identifier is invalid?")
		return
	}
	if len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			q := r.URL.Query()
			var out []Record
			for _, rec := range e.recs {
				if rec.ZoneID != z.ID {
					continue
				}
				name := cmp.Or(q.Get("name"), q.Get("name.exact"))
				if (name != "" && rec.Name != name) || (q.Get("type") != "" && rec.Type != q.Get("type")) ||
					(q.Get("content") != "" && rec.Content != q.Get("content")) {
					continue
				}
				out = append(out, *rec)
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Name+out[i].ID < out[j].Name+out[j].ID })
			from, to, info := page(r, len(out))
			reply(w, http.StatusOK, nonNil(out[from:to]), info)
		case http.MethodPost:
			var b recordBody
			if !decode(w, r, &b) {
				return
			}
			if b.Type == nil || b.Name == nil || b.Content == nil {
				fail(w, http.StatusBadRequest, 9005, "DNS record type, name and content are required")
				return
			}
			rec := &Record{ID: newID(), ZoneID: z.ID, ZoneName: z.Name, TTL: 1, Proxiable: true, CreatedOn: time.Now().UTC()}
			if !e.applyRecord(w, z, rec, b) {
				return
			}
			e.recs[rec.ID] = rec
			reply(w, http.StatusOK, rec, nil)
		default:
			fail(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
		}
		return
	}
	rec, ok := e.recs[rest[0]]
	if !ok || rec.ZoneID != z.ID {
		fail(w, http.StatusNotFound, 81044, "Record does not exist.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		reply(w, http.StatusOK, rec, nil)
	case http.MethodPatch, http.MethodPut:
		var b recordBody
		if !decode(w, r, &b) {
			return
		}
		if r.Method == http.MethodPut && (b.Type == nil || b.Name == nil || b.Content == nil) {
			fail(w, http.StatusBadRequest, 9005, "DNS record type, name and content are required")
			return
		}
		next := *rec
		if !e.applyRecord(w, z, &next, b) {
			return
		}
		*rec = next
		reply(w, http.StatusOK, rec, nil)
	case http.MethodDelete:
		delete(e.recs, rec.ID)
		reply(w, http.StatusOK, map[string]string{"id": rec.ID}, nil)
	default:
		fail(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
	}
}

// applyRecord validates b onto rec the way Cloudflare does; false means it answered an error.
func (e *Emulator) applyRecord(w http.ResponseWriter, z *Zone, rec *Record, b recordBody) bool {
	if b.Type != nil {
		rec.Type = *b.Type
	}
	if b.Name != nil {
		rec.Name = *b.Name
	}
	if b.Content != nil {
		rec.Content = *b.Content
	}
	if b.TTL != nil {
		rec.TTL = *b.TTL
	}
	if b.Proxied != nil {
		rec.Proxied = *b.Proxied
	}
	if b.Comment != nil {
		rec.Comment = *b.Comment
	}
	switch rec.Type {
	case "A":
		if ip := net.ParseIP(rec.Content); ip == nil || ip.To4() == nil {
			fail(w, http.StatusBadRequest, 9005, "Content for A record must be a valid IPv4 address.")
			return false
		}
	case "AAAA":
		if ip := net.ParseIP(rec.Content); ip == nil || ip.To4() != nil {
			fail(w, http.StatusBadRequest, 9005, "Content for AAAA record must be a valid IPv6 address.")
			return false
		}
	case "CNAME", "TXT":
	default:
		fail(w, http.StatusBadRequest, 9004, fmt.Sprintf("DNS record type %q is not supported by this emulator", rec.Type))
		return false
	}
	if rec.TTL != 1 && (rec.TTL < z.MinTTL || rec.TTL > 86400) {
		fail(w, http.StatusBadRequest, 9021, fmt.Sprintf("Invalid TTL. Must be between %d and 86400 seconds, or 1 for Automatic.", z.MinTTL))
		return false
	}
	if rec.Name != z.Name && !hasSuffix(rec.Name, "."+z.Name) {
		fail(w, http.StatusBadRequest, 9007, fmt.Sprintf("Record name %s is not in zone %s", rec.Name, z.Name))
		return false
	}
	for _, other := range e.recs {
		if other.ID == rec.ID || other.ZoneID != z.ID || other.Name != rec.Name {
			continue
		}
		if rec.Type == "CNAME" || other.Type == "CNAME" {
			fail(w, http.StatusBadRequest, 81053, "An A, AAAA, or CNAME record with that host already exists.")
			return false
		}
	}
	rec.ModifiedOn = time.Now().UTC()
	return true
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		fail(w, http.StatusBadRequest, 9207, "Request body is invalid: "+err.Error())
		return false
	}
	return true
}

func (e *Emulator) poolsAPI(w http.ResponseWriter, r *http.Request, rest []string) {
	if len(rest) == 0 {
		if r.Method != http.MethodGet {
			fail(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
			return
		}
		var out []Pool
		for _, p := range e.pools {
			out = append(out, *p)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		from, to, info := page(r, len(out))
		reply(w, http.StatusOK, nonNil(out[from:to]), info)
		return
	}
	p, ok := e.pools[rest[0]]
	if !ok {
		fail(w, http.StatusNotFound, 1002, "pool not found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		reply(w, http.StatusOK, p, nil)
	case http.MethodPatch:
		var b struct {
			Enabled     *bool   `json:"enabled"`
			Description *string `json:"description"`
		}
		if !decode(w, r, &b) {
			return
		}
		if b.Enabled != nil {
			p.Enabled = *b.Enabled
		}
		if b.Description != nil {
			p.Description = *b.Description
		}
		p.ModifiedOn = time.Now().UTC()
		reply(w, http.StatusOK, p, nil)
	default:
		fail(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
	}
}

func (e *Emulator) loadBalancers(w http.ResponseWriter, r *http.Request, zoneID string, rest []string) {
	if _, ok := e.zones[zoneID]; !ok {
		fail(w, http.StatusNotFound, 7003, "Could not route to /zones/"+zoneID+", perhaps your object identifier is invalid?")
		return
	}
	if len(rest) == 0 {
		var out []LoadBalancer
		for id, lb := range e.lbs {
			if e.lbZone[id] == zoneID {
				out = append(out, *lb)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		from, to, info := page(r, len(out))
		reply(w, http.StatusOK, nonNil(out[from:to]), info)
		return
	}
	lb, ok := e.lbs[rest[0]]
	if !ok || e.lbZone[rest[0]] != zoneID {
		fail(w, http.StatusNotFound, 1002, "load balancer not found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		reply(w, http.StatusOK, lb, nil)
	case http.MethodPatch, http.MethodPut:
		var b struct {
			DefaultPools []string `json:"default_pools"`
			FallbackPool *string  `json:"fallback_pool"`
			Enabled      *bool    `json:"enabled"`
		}
		if !decode(w, r, &b) {
			return
		}
		for _, id := range append(append([]string(nil), b.DefaultPools...), deref(b.FallbackPool)...) {
			if _, ok := e.pools[id]; !ok {
				fail(w, http.StatusBadRequest, 1003, fmt.Sprintf("pool %s does not exist", id))
				return
			}
		}
		if b.DefaultPools != nil {
			lb.DefaultPools = b.DefaultPools
		}
		if b.FallbackPool != nil {
			lb.FallbackPool = *b.FallbackPool
		}
		if b.Enabled != nil {
			lb.Enabled = *b.Enabled
		}
		lb.ModifiedOn = time.Now().UTC()
		reply(w, http.StatusOK, lb, nil)
	default:
		fail(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
	}
}

func deref(s *string) []string {
	if s == nil {
		return nil
	}
	return []string{*s}
}

// verifyToken is GET /user/tokens/verify: the calling token's status.
func (e *Emulator) verifyToken(w http.ResponseWriter, token string) {
	result := map[string]any{"id": fmt.Sprintf("tok-%x", len(token)), "status": "active"}
	if at, gone := e.expired[token]; gone {
		result["status"], result["expires_on"] = "expired", at.Format(time.RFC3339)
	}
	reply(w, http.StatusOK, result, nil)
}
