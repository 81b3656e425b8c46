// Package webui owns the appliance's web setup: the first-boot wizard, login
// and sessions, the dashboard, queue and quarantine, logs and settings pages,
// the admin certificate, the log ring buffer and the in-memory time series
// behind the charts. It reaches the running gateway only through the Backend
// interface, so it never opens the spool, edits the settings file or talks
// to the queue itself.
//
// Every page and form requires a session once an admin password exists;
// before that, every page leads to the setup wizard. Every state change
// (POST) carries a CSRF token tied to the session, or to a pre-session cookie
// for the login and setup forms.
package webui
