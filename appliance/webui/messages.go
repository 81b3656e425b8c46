package webui

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/spool"
)

type messageListData struct {
	Area     string
	Query    string
	Messages []*envelope.Envelope
	Total    int
}

// maxListed caps one page of the queue list; the search narrows it.
const maxListed = 500

func (s *Server) messageList(area spool.Area) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		all, err := s.cfg.Backend.Messages(area)
		v := view{Title: titleOf(area), Nav: string(area)}
		if err != nil {
			s.log.Error("listing messages failed", "area", string(area), "reason", err)
			v.Error = "The spool could not be read: " + err.Error()
		}
		q := strings.TrimSpace(r.URL.Query().Get("q"))
		d := messageListData{Area: string(area), Query: q, Total: len(all)}
		for _, env := range all {
			if matches(env, q) && len(d.Messages) < maxListed {
				d.Messages = append(d.Messages, env)
			}
		}
		v.Data = d
		s.render(w, r, http.StatusOK, "messages", v)
	}
}

func titleOf(area spool.Area) string {
	if area == spool.AreaQuarantine {
		return "Quarantine"
	}
	return "Queue"
}

// matches reports whether q occurs in the queue id, the sender or a
// recipient, ignoring case.
func matches(env *envelope.Envelope, q string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	if strings.Contains(strings.ToLower(env.QueueID), q) || strings.Contains(strings.ToLower(env.From), q) {
		return true
	}
	for _, r := range env.Recipients {
		if strings.Contains(strings.ToLower(r.Address), q) {
			return true
		}
	}
	return false
}

type messageData struct {
	Area    string
	Env     *envelope.Envelope
	Headers string
	Log     []LogEntry
}

func (s *Server) messageView(area spool.Area) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		env, headers, err := s.cfg.Backend.Message(area, id)
		if errors.Is(err, spool.ErrNotFound) {
			s.render(w, r, http.StatusNotFound, "notfound", view{Title: "Not found", Nav: string(area),
				Error: "No message " + id + " in the " + string(area) + "; it may have been delivered or removed."})
			return
		}
		if err != nil {
			s.log.Error("reading message failed", "queue_id", id, "reason", err)
			s.render(w, r, http.StatusInternalServerError, "notfound", view{Title: "Error", Nav: string(area),
				Error: "The message could not be read: " + err.Error()})
			return
		}
		s.render(w, r, http.StatusOK, "message", view{Title: "Message " + id, Nav: string(area),
			Data: messageData{Area: string(area), Env: env, Headers: string(headers),
				Log: s.cfg.Ring.Entries(id, "", 200)}})
	}
}

func (s *Server) retryAll(w http.ResponseWriter, r *http.Request) {
	s.cfg.Backend.RetryNow()
	s.log.Info("retry requested by the administrator", "remote", clientIP(r))
	http.Redirect(w, r, "/queue?done=retried", http.StatusSeeOther)
}

// messageAction runs retry, bounce, delete (queue) or release, delete
// (quarantine) on one message.
func (s *Server) messageAction(area spool.Area) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, action := r.PathValue("id"), r.PathValue("action")
		var err error
		done := ""
		switch {
		case action == "delete":
			err, done = s.cfg.Backend.Delete(area, id), "deleted"
		case action == "retry" && area == spool.AreaQueue:
			err, done = s.cfg.Backend.Retry(id), "retried-one"
			if errors.Is(err, queue.ErrAttemptRunning) {
				// The message is being tried already, which is what the
				// administrator requested, so this is no failure.
				err, done = nil, "attempt-running"
			}
		case action == "bounce" && area == spool.AreaQueue:
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			err, done = s.cfg.Backend.Bounce(ctx, id), "bounced"
			cancel()
		case action == "release" && area == spool.AreaQuarantine:
			err, done = s.cfg.Backend.Release(id), "released"
		default:
			http.Error(w, "Not found: no action "+action+" on the "+string(area), http.StatusNotFound)
			return
		}
		if errors.Is(err, queue.ErrAttemptRunning) {
			// The message is not changed while its delivery attempt runs,
			// because that attempt's outcome would overwrite the change.
			s.log.Info("message action rejected: a delivery attempt is running", "queue_id", id,
				"action", action, "remote", clientIP(r))
			s.render(w, r, http.StatusConflict, "notfound", view{Title: "Action failed", Nav: string(area),
				Error: action + " of " + id + " failed: " + err.Error()})
			return
		}
		if err != nil {
			s.log.Error("message action failed", "queue_id", id, "action", action, "reason", err)
			status := http.StatusInternalServerError
			if errors.Is(err, spool.ErrNotFound) {
				status = http.StatusNotFound
			}
			s.render(w, r, status, "notfound", view{Title: "Action failed", Nav: string(area),
				Error: action + " of " + id + " failed: " + err.Error()})
			return
		}
		s.log.Info("message action by the administrator", "queue_id", id, "action", action,
			"remote", clientIP(r))
		http.Redirect(w, r, "/"+string(area)+"?done="+done, http.StatusSeeOther)
	}
}

type logsData struct {
	QueueID, Text string
	Entries       []LogEntry
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := logsData{QueueID: strings.TrimSpace(q.Get("queue_id")), Text: strings.TrimSpace(q.Get("text"))}
	d.Entries = s.cfg.Ring.Entries(d.QueueID, d.Text, 500)
	s.render(w, r, http.StatusOK, "logs", view{Title: "Logs", Nav: "logs", Data: d})
}
