package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/themis-maintenance/themis/internal/audit"
)

// This file keeps a flood of refused requests (401, 403) from costing what
// it would cost to serve each one in full:
//
//   - Rate: each client address has a budget of denials (DenialLimit: a
//     rate and a burst). A denial beyond it is answered 429 (code
//     too_many_requests, Retry-After) instead of 401/403. Requests that
//     pass authentication and authorisation are never limited, whatever
//     their address: a flood from a shared address cannot lock out a
//     client with a valid token.
//   - Audit: the first denials of a client address in an interval
//     (DenialLimit.AuditEach in DenialLimit.AuditInterval) are written to
//     the audit log at once, one event each; the others of that interval
//     are counted,
//     and when the interval ends one event (action auth.denied_summary)
//     records how many there were. A flood thus writes at most AuditEach+1
//     events per client address and interval, instead of one fsync'd line per
//     request behind the audit log's lock. Requests refused with 429 are
//     counted the same way.
//
// The client address is the connection's remote address: X-Forwarded-For
// and similar headers are not trusted (a client could name any address).

// CodeTooManyRequests is the problem code of a 429 answer.
const CodeTooManyRequests = "too_many_requests"

// DenialLimit configures the denial budget and the audit aggregation.
type DenialLimit struct {
	// PerMinute is the rate at which a client address earns back denials.
	// Default 60.
	PerMinute float64
	// Burst is the number of denials a client address may have at once.
	// Default 20.
	Burst int
	// AuditInterval is the aggregation interval of denials in the audit
	// log. Default one minute.
	AuditInterval time.Duration
	// AuditEach is the number of denials of a client address written one
	// by one in an interval before the rest are counted. Default 5.
	AuditEach int
	// MaxClients bounds the client addresses tracked at once; beyond it,
	// further addresses share one budget and one audit counter (key "*").
	// Default 10000.
	MaxClients int
}

func (d DenialLimit) withDefaults() DenialLimit {
	if d.PerMinute <= 0 {
		d.PerMinute = 60
	}
	if d.Burst <= 0 {
		d.Burst = 20
	}
	if d.AuditInterval <= 0 {
		d.AuditInterval = time.Minute
	}
	if d.MaxClients <= 0 {
		d.MaxClients = 10000
	}
	if d.AuditEach <= 0 {
		d.AuditEach = 5
	}
	return d
}

// denialClient is one client address's budget and audit counter.
type denialClient struct {
	limiter *rate.Limiter
	// open is true while an interval runs: its first written denials
	// were written, count more have been counted since, and a timer will
	// write the summary at its end.
	open                bool
	written             int
	count, limited      int
	first               time.Time
	lastAction, lastRes string
	lastSeen            time.Time
}

// denials tracks denials per client address.
type denials struct {
	cfg     DenialLimit
	mu      sync.Mutex
	clients map[string]*denialClient
	write   func(audit.Event)
	// now and afterFunc are time.Now and time.AfterFunc (tests replace them).
	now       func() time.Time
	afterFunc func(time.Duration, func())
}

func newDenials(cfg DenialLimit, write func(audit.Event)) *denials {
	return &denials{cfg: cfg.withDefaults(), clients: map[string]*denialClient{}, write: write,
		now: time.Now, afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// clientLocked returns the entry of addr, making one (and evicting idle
// ones, or sharing "*", when the table is full).
func (d *denials) clientLocked(addr string, now time.Time) *denialClient {
	if c, ok := d.clients[addr]; ok {
		return c
	}
	if len(d.clients) >= d.cfg.MaxClients {
		for k, c := range d.clients {
			// An entry whose budget is full again and whose interval is
			// closed carries nothing worth keeping.
			if !c.open && now.Sub(c.lastSeen) > time.Duration(float64(d.cfg.Burst)/d.cfg.PerMinute*float64(time.Minute)) {
				delete(d.clients, k)
			}
		}
		if len(d.clients) >= d.cfg.MaxClients {
			addr = "*"
			if c, ok := d.clients[addr]; ok {
				return c
			}
		}
	}
	c := &denialClient{limiter: rate.NewLimiter(rate.Limit(d.cfg.PerMinute/60), d.cfg.Burst)}
	d.clients[addr] = c
	return c
}

// deny accounts one denial of addr. It reports whether the denial is
// within the budget (false: answer 429) and whether its audit event is to
// be written now (the first of an interval).
func (d *denials) deny(addr, action, resource string) (withinBudget, writeNow bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.clientLocked(addr, now)
	c.lastSeen = now
	withinBudget = c.limiter.AllowN(now, 1)
	if !c.open {
		c.open, c.written, c.count, c.limited, c.first = true, 0, 0, 0, now
		key := addr
		if _, ok := d.clients[key]; !ok {
			key = "*"
		}
		d.afterFunc(d.cfg.AuditInterval, func() { d.flush(key) })
	}
	if c.written < d.cfg.AuditEach {
		c.written++
		return withinBudget, true
	}
	c.count++
	if !withinBudget {
		c.limited++
	}
	c.lastAction, c.lastRes = action, resource
	return withinBudget, false
}

// flush closes addr's interval and writes its summary when denials were
// counted in it.
func (d *denials) flush(addr string) {
	d.mu.Lock()
	c, ok := d.clients[addr]
	if !ok || !c.open {
		d.mu.Unlock()
		return
	}
	count, limited, first, action, res := c.count, c.limited, c.first, c.lastAction, c.lastRes
	c.open = false
	d.mu.Unlock()
	if count == 0 {
		return
	}
	d.write(audit.Event{
		Time: d.now().UTC(), Action: "auth.denied_summary", Resource: "client/" + addr,
		Outcome: audit.OutcomeDenied, Status: http.StatusUnauthorized,
		Detail: fmt.Sprintf("%d more denied request(s) from %s since %s (%d answered 429 over the denial budget); last: %s %s",
			count, addr, first.UTC().Format(time.RFC3339), limited, action, res),
	})
}

// clientAddr is the address a request's denials are counted against: the
// connection's remote host (proxy headers are not trusted).
func clientAddr(c *gin.Context) string {
	if ip := c.RemoteIP(); ip != "" {
		return ip
	}
	return "unknown"
}

// overDenialBudget is called by writeProblem for a 401 or 403 answer: it
// accounts the denial and, beyond the client's budget, turns the answer
// into a 429.
func overDenialBudget(c *gin.Context, p Problem) Problem {
	v, ok := c.Get(keyDenials)
	if !ok {
		return p
	}
	d := v.(*denials)
	o, _ := c.Get(keyOperation)
	op, _ := o.(operation)
	within, writeNow := d.deny(clientAddr(c), op.action, c.Request.URL.Path)
	c.Set(keyDenialAudit, writeNow)
	if within {
		return p
	}
	wait := time.Duration(float64(time.Minute) / d.cfg.PerMinute)
	c.Header("Retry-After", strconv.Itoa(max(1, int(wait.Seconds()+0.5))))
	return Problem{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests,
		Detail: "too many refused requests from this client; retry later with valid credentials"}
}

// writeDenialSummary writes an aggregated denial event through the
// gateway's audit path (failures logged, fail-closed mode entered).
func (h *handler) writeDenialSummary(e audit.Event) {
	if h.opts.Audit != nil {
		h.writeAudit(context.Background(), e)
	}
}
