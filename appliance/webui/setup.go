package webui

import (
	"net/http"
	"strings"

	"github.com/lambgate/lambgate/appliance/settings"
)

// wizardKeys are the settings the setup wizard shows. Every other setting
// keeps its current value until the Settings page changes it.
var wizardKeys = map[string]bool{
	"hostname":                true,
	"domains.relay":           true,
	"internal.server":         true,
	"internal.source_address": true,
	"internal.tls":            true,
	"recipients.validation":   true,
	"recipients.static":       true,
	"recipients.file":         true,
	"recipients.unknown":      true,
	"bounce.helo":             true,
	"bounce.source_address":   true,
}

func wizardField(key string) bool {
	return wizardKeys[key] || strings.HasPrefix(key, "interface[")
}

// setupData is the data of the wizard template.
type setupData struct {
	Sections       []section
	Errors         []string
	PasswordError  string
	Records        []dnsRecord
	RecordsMissing string
	Transcript     string
	ProbeError     string
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	s.renderSetup(w, r, http.StatusOK, s.cfg.Backend.Settings(), nil, setupData{})
}

func (s *Server) renderSetup(w http.ResponseWriter, r *http.Request, status int, st *settings.Settings, err error, d setupData) {
	errs, other := errorMap(err, wizardField)
	d.Sections = formSections(st, errs, wizardField)
	d.Errors = append(d.Errors, other...)
	d.Records, d.RecordsMissing = bounceRecords(st)
	s.render(w, r, status, "setup", view{Title: "Setup", Data: d})
}

func (s *Server) setupSubmit(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Settings()
	var err error
	if errs := applyForm(st, r.PostForm); len(errs) > 0 {
		err = errs
	} else {
		err = st.Validate()
	}
	pwMsg := checkPasswordRules(r.PostFormValue("password"), r.PostFormValue("password_confirm"))
	if err != nil || pwMsg != "" {
		s.renderSetup(w, r, http.StatusUnprocessableEntity, st, err, setupData{PasswordError: pwMsg})
		return
	}

	// The settings go first: a password without applied settings would end
	// the wizard on a gateway that still runs the defaults.
	if err := s.cfg.Backend.ApplySettings(st); err != nil {
		s.log.Error("setup failed", "reason", err)
		s.renderSetup(w, r, http.StatusUnprocessableEntity, st, err, setupData{})
		return
	}
	if err := s.auth.setPassword(r.PostFormValue("password")); err != nil {
		s.log.Error("setup failed", "reason", err)
		s.renderSetup(w, r, http.StatusInternalServerError, st, nil,
			setupData{Errors: []string{"The password could not be saved: " + err.Error()}})
		return
	}
	s.log.Info("setup complete", "remote", clientIP(r), "hostname", st.Hostname)
	if err := s.startSession(w); err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/?done=setup", http.StatusSeeOther)
}

// setupProbe runs the "test connection" button and shows the wizard again
// with what was typed so far.
func (s *Server) setupProbe(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Settings()
	formErrs := applyForm(st, r.PostForm)
	d := s.probe(r, st)
	var err error
	if len(formErrs) > 0 {
		err = formErrs
	}
	s.renderSetup(w, r, http.StatusOK, st, err, d)
}

// probe runs the SMTP probe of the internal server st names.
func (s *Server) probe(r *http.Request, st *settings.Settings) setupData {
	var d setupData
	if st.Internal.Server == "" {
		d.ProbeError = "Enter the internal server (host:port) first."
		return d
	}
	rcpt := "postmaster"
	if len(st.Domains.Relay) > 0 {
		rcpt += "@" + st.Domains.Relay[0]
	}
	helo := st.Internal.HELO
	if helo == "" {
		helo = st.Hostname
	}
	transcript, err := ProbeInternal(r.Context(), st.Internal.Server, st.Internal.SourceAddress, helo, rcpt)
	d.Transcript = transcript
	if err != nil {
		d.ProbeError = "The test failed: " + err.Error()
		s.log.Info("internal server probe failed", "server", st.Internal.Server, "reason", err)
	}
	return d
}
