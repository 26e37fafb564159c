package secrets

// matcher finds every occurrence of a set of needles in one pass: an
// Aho-Corasick automaton compiled into a complete transition table over the
// bytes that occur in the needles (every other byte leads back to the start).
type matcher struct {
	class   [256]int32 // byte → column in delta; 0 for bytes in no needle
	nclass  int
	delta   []int32 // row of a state + class → row of the next state, negated when a needle ends there
	longest []int32 // state → length of the longest needle ending there, or 0
}

// span is a half-open byte range [start, end) to redact.
type span struct{ start, end int }

func newMatcher(needles []string) *matcher {
	m := &matcher{nclass: 1}
	for _, n := range needles {
		for i := 0; i < len(n); i++ {
			if m.class[n[i]] == 0 {
				m.class[n[i]] = int32(m.nclass)
				m.nclass++
			}
		}
	}
	nc := m.nclass
	size := 1
	for _, n := range needles {
		size += len(n)
	}
	// The trie: state 0 is the root, and 0 as a transition means "none yet".
	m.delta = make([]int32, nc, size*nc)
	m.longest = make([]int32, 1, size)
	for _, n := range needles {
		s := int32(0)
		for i := 0; i < len(n); i++ {
			idx := int(s)*nc + int(m.class[n[i]])
			next := m.delta[idx]
			if next == 0 {
				next = int32(len(m.longest))
				m.longest = append(m.longest, 0)
				m.delta = append(m.delta, make([]int32, nc)...)
				m.delta[idx] = next
			}
			s = next
		}
		m.longest[s] = max(m.longest[s], int32(len(n)))
	}
	// Breadth first, each state's failure link is complete before its
	// children need it; missing transitions become those of the failure
	// state, which turns the trie into a complete automaton.
	fail := make([]int32, len(m.longest))
	queue := make([]int32, 0, len(m.longest))
	for c := 0; c < nc; c++ {
		if next := m.delta[c]; next != 0 {
			queue = append(queue, next)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		m.longest[s] = max(m.longest[s], m.longest[fail[s]])
		for c := 0; c < nc; c++ {
			idx := int(s)*nc + c
			via := m.delta[int(fail[s])*nc+c]
			if next := m.delta[idx]; next != 0 {
				fail[next] = via
				queue = append(queue, next)
			} else {
				m.delta[idx] = via
			}
		}
	}
	// Store rows instead of states, so that scanning needs no multiplication,
	// and mark the states where a needle ends by a negative row.
	for i, next := range m.delta {
		row := next * int32(nc)
		if m.longest[next] > 0 {
			row = -row
		}
		m.delta[i] = row
	}
	return m
}

// spans returns the stretches of b covered by needles, merged where matches
// overlap, in order.
func (m *matcher) spans(b []byte) []span {
	var out []span
	row := int32(0)
	for i := 0; i < len(b); i++ {
		row = m.delta[row+m.class[b[i]]]
		if row >= 0 {
			continue
		}
		row = -row
		l := int(m.longest[int(row)/m.nclass])
		sp := span{start: i + 1 - l, end: i + 1}
		// A later match may reach back over earlier ones: absorb them.
		for len(out) > 0 && out[len(out)-1].end > sp.start {
			sp.start = min(sp.start, out[len(out)-1].start)
			out = out[:len(out)-1]
		}
		out = append(out, sp)
	}
	return out
}
