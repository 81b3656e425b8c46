package bounce

import (
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxTrackedDomains is the number of domains at which the limiter starts to
// drop the buckets that have refilled completely, since they behave like new
// ones. What remains is bounded by the DSNs of the last refill interval.
const maxTrackedDomains = 10000

// domainLimiter is a token bucket per destination domain: perHour DSNs at
// once, refilled evenly over an hour. It lives in memory, so a restart
// resets every domain's count.
type domainLimiter struct {
	perHour int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newDomainLimiter(perHour int) *domainLimiter {
	return &domainLimiter{perHour: perHour, buckets: map[string]*rate.Limiter{}}
}

// take takes one token for domain at now. It returns false when none was
// left, and otherwise a function that puts the token back, for a DSN that
// could not be spooled.
func (l *domainLimiter) take(domain string, now time.Time) (giveBack func(), ok bool) {
	domain = strings.ToLower(domain)

	l.mu.Lock()
	defer l.mu.Unlock()

	bucket, ok := l.buckets[domain]
	if !ok {
		if len(l.buckets) >= maxTrackedDomains {
			l.dropFull(now)
		}
		bucket = rate.NewLimiter(rate.Every(time.Hour/time.Duration(l.perHour)), l.perHour)
		l.buckets[domain] = bucket
	}
	reservation := bucket.ReserveN(now, 1)
	if reservation.DelayFrom(now) > 0 {
		reservation.CancelAt(now)
		return nil, false
	}
	return func() { reservation.CancelAt(now) }, true
}

func (l *domainLimiter) dropFull(now time.Time) {
	for domain, bucket := range l.buckets {
		if bucket.TokensAt(now) >= float64(l.perHour) {
			delete(l.buckets, domain)
		}
	}
}
