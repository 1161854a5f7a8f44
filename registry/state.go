package registry

import (
	"cmp"
	"maps"
	"slices"
)

// state is one immutable snapshot of the registry: readers load it without
// a lock, writers build the next one beside it (stage), persist it, and only
// then publish it. Entries are shared between snapshots.
type state struct {
	recs    map[string]*entry
	list    []*entry // the values of recs, sorted by user ID
	ports   map[string]int
	portIDs []string // keys of ports, sorted
	byPort  map[int]string
	uids    map[string]int // each user's uid, for life (see ReserveUID)
	uidIDs  []string       // keys of uids, sorted
	byUID   map[int]string
	nodes   map[string]string // each user's node, for life (see PinNode)
	nodeIDs []string          // keys of nodes, sorted
	byNode  map[string]int    // how many users each node has pinned
}

func emptyState() *state {
	return &state{recs: map[string]*entry{}, ports: map[string]int{}, byPort: map[int]string{},
		uids: map[string]int{}, byUID: map[int]string{}, nodes: map[string]string{}, byNode: map[string]int{}}
}

func byUserID(a, b *entry) int { return cmp.Compare(a.rec.UserID, b.rec.UserID) }

// stage is the next state under construction. Maps and slices are copied
// on first change, so an unchanged part is shared with the current state.
type stage struct {
	cur, next *state
	changedID map[string]bool // records put or deleted
	portsCopy bool
	uidsCopy  bool
	nodesCopy bool
}

func newStage(cur *state) *stage {
	next := *cur
	return &stage{cur: cur, next: &next}
}

func (st *stage) copyRecs() {
	if st.changedID == nil {
		st.next.recs = maps.Clone(st.cur.recs)
		st.changedID = map[string]bool{}
	}
}

func (st *stage) copyPorts() {
	if !st.portsCopy {
		st.next.ports = maps.Clone(st.cur.ports)
		st.next.byPort = maps.Clone(st.cur.byPort)
		st.next.portIDs = slices.Clone(st.cur.portIDs)
		st.portsCopy = true
	}
}

func (st *stage) copyUIDs() {
	if !st.uidsCopy {
		st.next.uids = maps.Clone(st.cur.uids)
		st.next.byUID = maps.Clone(st.cur.byUID)
		st.next.uidIDs = slices.Clone(st.cur.uidIDs)
		st.uidsCopy = true
	}
}

func (st *stage) copyNodes() {
	if !st.nodesCopy {
		st.next.nodes = maps.Clone(st.cur.nodes)
		st.next.byNode = maps.Clone(st.cur.byNode)
		st.next.nodeIDs = slices.Clone(st.cur.nodeIDs)
		st.nodesCopy = true
	}
}

func (st *stage) put(e *entry) {
	st.copyRecs()
	st.next.recs[e.rec.UserID] = e
	st.changedID[e.rec.UserID] = true
}

func (st *stage) del(id string) {
	if _, ok := st.next.recs[id]; !ok {
		return
	}
	st.copyRecs()
	delete(st.next.recs, id)
	st.changedID[id] = true
}

// reserve records port as id's; the caller has checked that both are free.
func (st *stage) reserve(id string, port int) {
	st.copyPorts()
	st.next.ports[id] = port
	st.next.byPort[port] = id
	i, _ := slices.BinarySearch(st.next.portIDs, id)
	st.next.portIDs = slices.Insert(st.next.portIDs, i, id)
}

// reserveUID records uid as id's; the caller has checked that both are
// free.
func (st *stage) reserveUID(id string, uid int) {
	st.copyUIDs()
	st.next.uids[id] = uid
	st.next.byUID[uid] = id
	i, _ := slices.BinarySearch(st.next.uidIDs, id)
	st.next.uidIDs = slices.Insert(st.next.uidIDs, i, id)
}

// pinNode records node as id's; the caller has checked that id has none.
func (st *stage) pinNode(id, node string) {
	st.copyNodes()
	st.next.nodes[id] = node
	st.next.byNode[node]++
	i, _ := slices.BinarySearch(st.next.nodeIDs, id)
	st.next.nodeIDs = slices.Insert(st.next.nodeIDs, i, id)
}

// changed reports whether the stage differs from the current state.
func (st *stage) changed() bool {
	return st.changedID != nil || st.portsCopy || st.uidsCopy || st.nodesCopy
}

// done finishes the sorted list and returns the next state.
func (st *stage) done() *state {
	switch {
	case len(st.changedID) == 0:
	case len(st.changedID) > 64: // a big batch: sort it all once
		st.next.list = slices.SortedFunc(maps.Values(st.next.recs), byUserID)
	default:
		list := slices.Clone(st.cur.list)
		for id := range st.changedID {
			i, found := slices.BinarySearchFunc(list, id, func(e *entry, id string) int { return cmp.Compare(e.rec.UserID, id) })
			e, present := st.next.recs[id]
			switch {
			case found && present:
				list[i] = e
			case found:
				list = slices.Delete(list, i, i+1)
			case present:
				list = slices.Insert(list, i, e)
			}
		}
		st.next.list = list
	}
	return st.next
}
