package control

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azaion/loader/resources"
)

// Prefetch states of a resource, as GET /status reports them.
const (
	PrefetchQueued  = "queued"
	PrefetchRunning = "running"
	PrefetchDone    = "done"
	PrefetchError   = "error"
)

const (
	// prefetchWorkers is how many resources are fetched at once: each is
	// a sequential read that fills the link on its own; two keep it busy
	// across one's open.
	prefetchWorkers = 2
	// maxPrefetchItems bounds the resources tracked: queued and running
	// ones, and the latest finished ones, which are dropped oldest first.
	maxPrefetchItems = 1024
)

// PrefetchItem is one resource's prefetch, as /status and POST /prefetch
// report it. Bytes and Total count plaintext; Total is 0 until opened.
type PrefetchItem struct {
	Folder string `json:"folder"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Bytes  int64  `json:"bytes"`
	Total  int64  `json:"total"`
	Error  string `json:"error,omitempty"`
}

// Prefetcher fetches whole resources into the cache in the background, a
// bounded queue of them worked by prefetchWorkers goroutines that exist
// only while there is work, all bounded by the context it was made with.
type Prefetcher struct {
	store Store
	log   *slog.Logger
	ctx   context.Context

	mu      sync.Mutex
	items   map[string]*PrefetchItem // by folder + "/" + name
	order   []string                 // keys, oldest first
	queue   []string                 // keys waiting, in order
	workers int

	bytes     prometheus.Counter
	resources *prometheus.GaugeVec
}

// PrefetchConfig wires a Prefetcher.
type PrefetchConfig struct {
	Store Store
	// Context bounds every fetch: the loader's lifetime. nil: never ends.
	Context context.Context
	Logger  *slog.Logger
	// Registry gets the prefetch metrics; nil: none registered.
	Registry prometheus.Registerer
}

// NewPrefetcher makes an idle Prefetcher.
func NewPrefetcher(cfg PrefetchConfig) *Prefetcher {
	p := &Prefetcher{store: cfg.Store, log: cfg.Logger, ctx: cfg.Context, items: map[string]*PrefetchItem{}}
	if p.ctx == nil {
		p.ctx = context.Background()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.bytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "azaion_prefetch_bytes_total",
		Help: "Plaintext bytes of resources read through the cache by prefetch (POST /prefetch, the prefetch config list).",
	})
	p.resources = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "azaion_prefetch_resources",
		Help: "Resources tracked by prefetch, by state: queued, running, done, error.",
	}, []string{"state"})
	for _, s := range []string{PrefetchQueued, PrefetchRunning, PrefetchDone, PrefetchError} {
		p.resources.WithLabelValues(s)
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(p.bytes, p.resources)
	}
	return p
}

// Add queues folder/name pairs (already checked with resources.CheckNames)
// and returns their states. One already queued or running is not queued
// again; one done or failed is fetched again. When the queue is full the
// item is reported in state error and not tracked.
func (p *Prefetcher) Add(items [][2]string) []PrefetchItem {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PrefetchItem, 0, len(items))
	for _, it := range items {
		key := it[0] + "/" + it[1]
		cur, ok := p.items[key]
		switch {
		case ok && (cur.State == PrefetchQueued || cur.State == PrefetchRunning):
		case ok:
			p.setStateLocked(cur, PrefetchQueued)
			cur.Bytes, cur.Total, cur.Error = 0, 0, ""
			p.touchLocked(key)
			p.queue = append(p.queue, key)
		case !p.roomLocked():
			out = append(out, PrefetchItem{Folder: it[0], Name: it[1], State: PrefetchError,
				Error: fmt.Sprintf("prefetch queue full (%d resources queued or running)", maxPrefetchItems)})
			continue
		default:
			cur = &PrefetchItem{Folder: it[0], Name: it[1], State: PrefetchQueued}
			p.items[key] = cur
			p.resources.WithLabelValues(PrefetchQueued).Inc()
			p.order = append(p.order, key)
			p.queue = append(p.queue, key)
		}
		out = append(out, *cur)
	}
	for p.workers < prefetchWorkers && len(p.queue) > 0 {
		p.workers++
		go p.work()
	}
	return out
}

// roomLocked makes room for one more item, dropping the oldest finished
// one when needed, and reports whether there is room.
func (p *Prefetcher) roomLocked() bool {
	if len(p.order) < maxPrefetchItems {
		return true
	}
	for i, key := range p.order {
		if it := p.items[key]; it.State == PrefetchDone || it.State == PrefetchError {
			p.resources.WithLabelValues(it.State).Dec()
			delete(p.items, key)
			p.order = append(p.order[:i], p.order[i+1:]...)
			return true
		}
	}
	return false
}

// touchLocked moves key to the end of order: the newest.
func (p *Prefetcher) touchLocked(key string) {
	for i, k := range p.order {
		if k == key {
			p.order = append(append(p.order[:i], p.order[i+1:]...), key)
			return
		}
	}
}

func (p *Prefetcher) setStateLocked(it *PrefetchItem, state string) {
	p.resources.WithLabelValues(it.State).Dec()
	p.resources.WithLabelValues(state).Inc()
	it.State = state
}

// Status is every tracked resource's prefetch, oldest first.
func (p *Prefetcher) Status() []PrefetchItem {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PrefetchItem, 0, len(p.order))
	for _, key := range p.order {
		out = append(out, *p.items[key])
	}
	return out
}

// work fetches queued resources until the queue is empty.
func (p *Prefetcher) work() {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 || p.ctx.Err() != nil {
			p.workers--
			p.mu.Unlock()
			return
		}
		key := p.queue[0]
		p.queue = p.queue[1:]
		it := p.items[key]
		p.setStateLocked(it, PrefetchRunning)
		folder, name := it.Folder, it.Name
		p.mu.Unlock()

		began := time.Now()
		err := p.fetch(folder, name, it)
		p.mu.Lock()
		if err != nil {
			p.setStateLocked(it, PrefetchError)
			it.Error = err.Error()
		} else {
			p.setStateLocked(it, PrefetchDone)
		}
		p.mu.Unlock()
		if err != nil {
			p.log.Warn("prefetch failed", "folder", folder, "name", name, "err", err)
		} else {
			p.log.Info("prefetched", "folder", folder, "name", name, "bytes", it.Total, "took_ms", time.Since(began).Milliseconds())
		}
	}
}

// fetch opens folder/name and reads its plaintext from start to end as
// /load does, sending it nowhere: the big part goes through the cache
// (onto disk as ciphertext) with the read path's fetching ahead for a
// sequential reader.
func (p *Prefetcher) fetch(folder, name string, it *PrefetchItem) error {
	octx, cancel := context.WithTimeout(p.ctx, openTimeout)
	res, err := p.store.Open(octx, folder, name)
	cancel()
	if err != nil {
		return err
	}
	p.mu.Lock()
	it.Total = res.Size()
	p.mu.Unlock()
	// /load's copy, with its reads ahead and its bound per read; the
	// plaintext goes nowhere.
	return copyAt(p.ctx, res.Reader, res.Size(), func(b []byte) error {
		p.bytes.Add(float64(len(b)))
		p.mu.Lock()
		it.Bytes += int64(len(b))
		p.mu.Unlock()
		return nil
	})
}

// prefetchRequest is the body of POST /prefetch: names in one folder,
// resources as "folder/name", or both.
type prefetchRequest struct {
	Folder    *string  `json:"folder"`
	Names     []string `json:"names"`
	Resources []string `json:"resources"`
}

// prefetch queues resources to be fetched into the cache (202); how each
// goes is in GET /status, never in this answer's status.
func (h *handler) prefetch(w http.ResponseWriter, r *http.Request) {
	var req prefetchRequest
	if err := readJSON(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	if len(req.Names) == 0 && len(req.Resources) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "names (with folder) or resources are required")
		return
	}
	if len(req.Names) > 0 && req.Folder == nil {
		writeError(w, http.StatusUnprocessableEntity, "folder is required with names")
		return
	}
	var items [][2]string
	seen := map[string]bool{}
	add := func(folder, name string) error {
		if err := resources.CheckNames(folder, name); err != nil {
			return err
		}
		if !seen[folder+"/"+name] {
			seen[folder+"/"+name] = true
			items = append(items, [2]string{folder, name})
		}
		return nil
	}
	for _, n := range req.Names {
		if err := add(*req.Folder, n); err != nil {
			h.fail(w, r, "prefetch", err)
			return
		}
	}
	more, err := ParsePrefetch(req.Resources)
	if err != nil {
		h.fail(w, r, "prefetch", err)
		return
	}
	for _, it := range more {
		add(it[0], it[1])
	}
	if !h.store.LoggedIn() {
		h.fail(w, r, "prefetch", resources.ErrNotLoggedIn)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"resources": h.prefetcher.Add(items)})
}

// ParsePrefetch splits "folder/name" entries (the prefetch config list, the
// CLI's arguments) into checked pairs.
func ParsePrefetch(list []string) ([][2]string, error) {
	var out [][2]string
	for _, s := range list {
		folder, name, ok := strings.Cut(s, "/")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not folder/name", resources.ErrBadName, clip(s))
		}
		if err := resources.CheckNames(folder, name); err != nil {
			return nil, err
		}
		out = append(out, [2]string{folder, name})
	}
	return out, nil
}
