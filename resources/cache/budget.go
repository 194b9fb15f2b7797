package cache

import (
	"sync/atomic"

	"github.com/azaion/loader/resources/bufpool"
)

// aheadBudget is the read-ahead budget the readers of every Part share
// (resources.StoreConfig.ReadAheadBudget); set once, before the first Part.
type aheadBudget struct {
	p atomic.Pointer[bufpool.Budget]
}

// SetReadAheadBudget sets the budget that the decrypting readers over this
// cache's Parts share for their read-ahead windows.
func (c *Cache) SetReadAheadBudget(b *bufpool.Budget) { c.budget.p.Store(b) }

// ReadAheadBudget is the budget the readers over p share; nil: no limit.
func (p *Part) ReadAheadBudget() *bufpool.Budget { return p.e.c.budget.p.Load() }
