package smtpd

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
)

// connState is the gateway's record of one client connection. It outlives
// go-smtp's sessions, which end at every STARTTLS.
type connState struct {
	srv    *Server
	raw    net.Conn    // the TCP connection, for Server.Close
	cfg    *Config     // the configuration the connection was accepted under
	gen    *generation // the go-smtp servers of cfg
	remote netip.AddrPort
	log    *slog.Logger
	start  time.Time
	// current is the strictConn serving the session: the plaintext one,
	// or after STARTTLS the one over TLS.
	current atomic.Pointer[strictConn]

	mu       sync.Mutex
	errors   int
	fconn    filter.Conn
	verdict  filter.Verdict // a final verdict of the connect or HELO phase
	messages int
	inData   bool // a Data call is running
	// transferReset makes the running BDAT transfer abort, because the
	// client reset it (see strictConn.finishTransfer).
	transferReset bool
}

// addError counts an error reply and returns the count so far.
func (st *connState) addError() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.errors++
	return st.errors
}

func (st *connState) setTransferReset() {
	st.mu.Lock()
	st.transferReset = true
	st.mu.Unlock()
}

// takeTransferReset reports whether the client reset the running transfer,
// and clears the mark.
func (st *connState) takeTransferReset() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	reset := st.transferReset
	st.transferReset = false
	return reset
}

// logReject logs one rejected command or transfer.
func (st *connState) logReject(phase, reason string, attrs ...any) {
	args := append([]any{"remote", st.remote.String(), "phase", phase, "reason", reason}, attrs...)
	st.log.Info("rejected", args...)
}

// closed releases the connection's limit slots and logs the disconnect.
func (st *connState) closed() {
	st.srv.untrack(st)
	st.srv.limits.release(st.remote.Addr())
	st.mu.Lock()
	errs, msgs := st.errors, st.messages
	st.mu.Unlock()
	st.log.Info("disconnect", "remote", st.remote.String(), "messages", msgs, "errors", errs,
		"duration", time.Since(st.start).Round(time.Millisecond).String())
}

// connLimits counts open connections in total and per client address.
type connLimits struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

// acquire takes a slot for ip, or returns the reason it cannot.
func (l *connLimits) acquire(ip netip.Addr, cfg *Config) (ok bool, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= cfg.MaxConnections {
		return false, "too many connections"
	}
	if l.perIP[ip] >= cfg.MaxConnectionsPerIP {
		return false, "too many connections from this address"
	}
	l.total++
	l.perIP[ip]++
	return true, ""
}

func (l *connLimits) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip] <= 1 {
		delete(l.perIP, ip)
	} else {
		l.perIP[ip]--
	}
}

// remoteAddrPort returns the client address of c with IPv4-mapped IPv6
// addresses unmapped, so that limits and logs see one form.
func remoteAddrPort(c net.Conn) netip.AddrPort {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// admit runs for every accepted connection in its own goroutine: it applies
// the connection limits and the connect phase of the filters, then hands
// the connection to go-smtp, or replies 421 or 5xx and closes it.
func (s *Server) admit(raw net.Conn) {
	cfg := s.cfg.Load()
	remote := remoteAddrPort(raw)

	if ok, reason := s.limits.acquire(remote.Addr(), cfg); !ok {
		s.log.Info("rejected", "remote", remote.String(), "phase", "connect", "reason", reason)
		_ = raw.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = raw.Write([]byte("421 4.7.0 " + cfg.Hostname + " Too many connections, try again later\r\n"))
		_ = raw.Close()
		return
	}

	st := &connState{srv: s, cfg: cfg, remote: remote, log: s.log, start: time.Now(), raw: raw}
	s.track(st)
	st.fconn = filter.Conn{ClientIP: remote.Addr(), ClientPort: remote.Port()}
	conn := newStrictConn(raw, st)
	s.log.Info("connect", "remote", remote.String())

	ctx, cancel := context.WithTimeout(s.ctx, cfg.CommandTimeout)
	fc := st.fconn
	v := s.deps.Filters.Connect(ctx, &fc)
	cancel()
	switch v.Action {
	case filter.Reject, filter.Tempfail:
		e := verdictError(v)
		// A 4xx greeting must be 421 (RFC 5321 section 3.8); a
		// rejected client gets 554 and is closed.
		code := 554
		if v.Action == filter.Tempfail {
			code = 421
		}
		st.logReject("connect", "filter", "plugin", v.Filter, "status", e.Error())
		_ = raw.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = raw.Write([]byte(formatReply(code, e.EnhancedCode, cfg.Hostname+" "+e.Message)))
		_ = conn.Close()
		return
	case filter.Continue:
	default:
		st.verdict = v
	}

	if !s.handOff(conn) {
		_ = conn.Close()
	}
}
