package webui

import (
	"errors"
	"io"
	"net/http"

	"github.com/lambgate/lambgate/appliance/settings"
)

type settingsData struct {
	Sections      []section
	Errors        []string
	Transcript    string
	ProbeError    string
	PasswordError string
}

func allFields(string) bool { return true }

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request) {
	s.renderSettings(w, r, http.StatusOK, s.cfg.Backend.Settings(), nil, settingsData{})
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, status int, st *settings.Settings, err error, d settingsData) {
	errs, other := errorMap(err, allFields)
	d.Sections = formSections(st, errs, nil)
	d.Errors = append(d.Errors, other...)
	v := view{Title: "Settings", Nav: "settings", Data: d}
	if err != nil {
		v.Error = "Nothing was saved: fix the fields marked below."
	}
	s.render(w, r, status, "settings", v)
}

func (s *Server) settingsSubmit(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Settings()
	oldAdmin := st.Admin.Listen
	if errs := applyForm(st, r.PostForm); len(errs) > 0 {
		s.renderSettings(w, r, http.StatusUnprocessableEntity, st, errs, settingsData{})
		return
	}
	if err := s.cfg.Backend.ApplySettings(st); err != nil {
		s.log.Warn("settings not saved", "remote", clientIP(r), "reason", err)
		s.renderSettings(w, r, http.StatusUnprocessableEntity, st, err, settingsData{})
		return
	}
	s.log.Info("settings saved by the administrator", "remote", clientIP(r))
	// The old listener closes once this response is out, so the page links
	// to the new address. A redirect would not do: the Content Security
	// Policy's form-action 'self' stops a form post from leaving the origin.
	// NOTE: the session cookie follows only when the host stays the same
	// and only the port changes; a new address needs a new login.
	if st.Admin.Listen != oldAdmin {
		s.render(w, r, http.StatusOK, "moved", view{Title: "Web setup moved", Nav: "settings",
			Notice: "Settings saved and applied.", Data: "https://" + st.Admin.Listen + "/settings"})
		return
	}
	http.Redirect(w, r, "/settings?done=saved", http.StatusSeeOther)
}

func (s *Server) settingsProbe(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Settings()
	var err error
	if errs := applyForm(st, r.PostForm); len(errs) > 0 {
		err = errs
	}
	d := s.probe(r, st)
	s.renderSettings(w, r, http.StatusOK, st, err, settingsData{Transcript: d.Transcript, ProbeError: d.ProbeError})
}

// settingsExport downloads the settings in force as a TOML file. It holds
// no password hash or session: those live in the web UI's state directory.
func (s *Server) settingsExport(w http.ResponseWriter, r *http.Request) {
	data, err := s.cfg.Backend.Settings().Marshal()
	if err != nil {
		http.Error(w, "Internal error: the settings could not be encoded: "+err.Error(), http.StatusInternalServerError)
		return
	}
	name := "lambgate-" + s.cfg.Now().UTC().Format("20060102-150405") + ".toml"
	w.Header().Set("Content-Type", "application/toml")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(data)
}

// settingsImport applies an uploaded settings file after the same parsing
// and validation as the settings file on disk and the form.
func (s *Server) settingsImport(w http.ResponseWriter, r *http.Request) {
	f, _, err := r.FormFile("file")
	if err != nil {
		s.renderSettings(w, r, http.StatusBadRequest, s.cfg.Backend.Settings(),
			errors.New("choose a settings file (.toml) to import"), settingsData{})
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFormBytes))
	if err != nil {
		s.renderSettings(w, r, http.StatusBadRequest, s.cfg.Backend.Settings(), err, settingsData{})
		return
	}
	// Keys the file does not name keep their current values.
	st, err := settings.ParseOver(s.cfg.Backend.Settings(), data)
	if err != nil {
		s.log.Warn("settings import rejected", "remote", clientIP(r), "reason", err)
		s.renderSettings(w, r, http.StatusUnprocessableEntity, s.cfg.Backend.Settings(),
			importError(err), settingsData{})
		return
	}
	if err := s.cfg.Backend.ApplySettings(st); err != nil {
		s.renderSettings(w, r, http.StatusUnprocessableEntity, st, err, settingsData{})
		return
	}
	s.log.Info("settings imported by the administrator", "remote", clientIP(r))
	http.Redirect(w, r, "/settings?done=imported", http.StatusSeeOther)
}

// importError turns every failure into one message for the top of the
// page, because the form below still shows the settings in force, not the
// file's values.
func importError(err error) error {
	return errors.New("the imported file was rejected and nothing changed: " + err.Error())
}
