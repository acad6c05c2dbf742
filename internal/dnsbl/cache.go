package dnsbl

import (
	"container/list"
	"sync"
	"time"
)

// cache keeps answers (listed and not listed) until their TTL runs out,
// at most size of them: past that the least recently used goes.
type cache struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *entry, most recently used first
	byKey map[string]*list.Element
}

type entry struct {
	key     string
	ans     answer
	expires time.Time
}

func newCache(size int) *cache {
	return &cache{size: size, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the answer for key if it has not expired at now.
func (c *cache) get(key string, now time.Time) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return answer{}, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, key)
		return answer{}, false
	}
	c.order.MoveToFront(el)
	return e.ans, true
}

// put keeps ans for key until expires.
func (c *cache) put(key string, ans answer, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		e := el.Value.(*entry)
		e.ans, e.expires = ans, expires
		c.order.MoveToFront(el)
		return
	}
	c.byKey[key] = c.order.PushFront(&entry{key: key, ans: ans, expires: expires})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*entry).key)
	}
}

// len is the number of entries kept (expired ones included until they are
// looked up or pushed out).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
