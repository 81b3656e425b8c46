package webui

import (
	"fmt"
	"math"
	"net/http"
	"time"
)

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if sessionFrom(r.Context()) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", view{Title: "Log in"})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	if wait := s.limiter.blocked(ip); wait > 0 {
		minutes := int(math.Ceil(wait.Minutes()))
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		s.log.Warn("login blocked", "remote", ip, "reason", "too many failed logins")
		s.render(w, r, http.StatusTooManyRequests, "login", view{Title: "Log in",
			Error: fmt.Sprintf("Too many failed logins from %s. Wait %d minute(s), then try again.", ip, minutes)})
		return
	}
	if !s.auth.checkPassword(r.PostFormValue("password")) {
		s.limiter.fail(ip)
		s.log.Warn("login failed", "remote", ip, "reason", "wrong password")
		s.render(w, r, http.StatusUnauthorized, "login", view{Title: "Log in",
			Error: "Wrong password."})
		return
	}
	s.limiter.succeed(ip)
	if err := s.startSession(w); err != nil {
		s.log.Error("login failed", "remote", ip, "reason", err)
		s.render(w, r, http.StatusInternalServerError, "login", view{Title: "Log in",
			Error: "The session could not be saved: " + err.Error()})
		return
	}
	s.log.Info("admin logged in", "remote", ip)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// startSession creates a session and sets its cookie: HttpOnly so scripts
// cannot read it, Secure so it never travels over plain HTTP, and
// SameSite=Strict so no other site's page can send it along.
func (s *Server) startSession(w http.ResponseWriter) error {
	token, _, err := s.auth.newSession()
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/",
		MaxAge: int(SessionMax / time.Second), HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
	return nil
}

// changePassword replaces the admin password after checking the current
// one. Every session ends with it, and this browser gets a new one.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	fail := func(status int, msg string) {
		s.renderSettings(w, r, status, s.cfg.Backend.Settings(), nil, settingsData{PasswordError: msg})
	}
	if wait := s.limiter.blocked(ip); wait > 0 {
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed password checks from %s. Wait %d minute(s).",
			ip, int(math.Ceil(wait.Minutes()))))
		return
	}
	if !s.auth.checkPassword(r.PostFormValue("current_password")) {
		s.limiter.fail(ip)
		s.log.Warn("password change rejected", "remote", ip, "reason", "wrong current password")
		fail(http.StatusUnauthorized, "The current password is wrong.")
		return
	}
	if msg := checkPasswordRules(r.PostFormValue("new_password"), r.PostFormValue("new_password_confirm")); msg != "" {
		fail(http.StatusUnprocessableEntity, msg)
		return
	}
	if err := s.auth.setPassword(r.PostFormValue("new_password")); err != nil {
		s.log.Error("password change failed", "remote", ip, "reason", err)
		fail(http.StatusInternalServerError, "The new password could not be saved: "+err.Error())
		return
	}
	s.log.Info("admin password changed", "remote", ip)
	if err := s.startSession(w); err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/settings?done=password", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.auth.endSession(cookieValue(r, sessionCookie)); err != nil {
		s.log.Error("saving sessions failed", "reason", err)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login?done=loggedout", http.StatusSeeOther)
}
