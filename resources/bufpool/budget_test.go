package bufpool

import "testing"

// TestBudgetShares: takes succeed only within the room left and the
// holder's share of the holders that joined, and Give makes room again.
func TestBudgetShares(t *testing.T) {
	b := NewBudget(4)
	b.Join()
	b.Join()
	if !b.TryTake(1, 0) || !b.TryTake(1, 1) {
		t.Fatal("a holder could not take its share")
	}
	if b.TryTake(1, 2) {
		t.Error("a holder took beyond its share of two holders")
	}
	if !b.TryTake(2, 0) {
		t.Fatal("the other holder could not take its share")
	}
	if b.TryTake(1, 0) {
		t.Error("took beyond the limit")
	}
	b.Leave()
	b.Give(2)
	if !b.TryTake(1, 2) || !b.TryTake(1, 3) {
		t.Error("a lone holder could not take the whole budget")
	}
	if u, p := b.Used(), b.Peak(); u != 4 || p != 4 {
		t.Errorf("used %d, peak %d; want 4 and 4", u, p)
	}
	var none *Budget
	if !none.TryTake(1<<40, 0) || none.Used() != 0 {
		t.Error("a nil budget limits")
	}
}
