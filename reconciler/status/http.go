package status

import (
	"compress/gzip"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"meridian.dev/meridian/fleet"
)

//go:embed web
var webFiles embed.FS

// ContentSecurityPolicy is sent with every answer: the dashboard loads its script,
// its style and its data from the daemon itself and nothing from anywhere else,
// and may not be framed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves, read-only:
//
//	/                       the web dashboard (and its files under /static/)
//	/api/v1/status          the Status document as JSON (?tenant=&region=&app=&state=&kind=&q= filter its units)
//	/api/v1/summary         the Summary: counts and the tenants × regions heatmap (same filters; rows=false leaves the heatmap out)
//	/api/v1/units/<unit>    one unit's UnitDetail (404 for a unit the Store does not know)
//	/api/v1/events/<unit>   the Kubernetes events of a unit's objects (Options.Events)
//	/api/v1/apps            where every app and addon runs ([]AppView)
//	/api/v1/history         the last passes, newest first ([]PassRecord)
//	/metrics                the Prometheus metrics, with Go and process metrics
//
// The JSON answers are gzipped for clients that accept it. Methods other than
// GET and HEAD get 405. /healthz and /readyz are the daemon's.
func (s *Store) Handler() http.Handler {
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{
		ErrorLog:          slogErrorLog{s},
		Registry:          s.metrics.registry,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, r, http.StatusOK, s.StatusOf(FilterOf(r.URL.Query())))
	})
	mux.HandleFunc("GET /api/v1/summary", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, r, http.StatusOK, s.summary(FilterOf(r.URL.Query()), r.URL.Query().Get("rows") != "false"))
	})
	mux.HandleFunc("GET /api/v1/apps", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, r, http.StatusOK, s.Apps())
	})
	mux.HandleFunc("GET /api/v1/history", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, r, http.StatusOK, s.History())
	})
	mux.HandleFunc("GET /api/v1/units/{unit...}", s.serveUnit)
	mux.HandleFunc("GET /api/v1/events/{unit...}", s.serveEvents)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, web, "index.html")
	})
	return readOnly(mux)
}

// writeJSON answers with status code and v as indented JSON, gzipped when the
// client accepts it.
func (s *Store) writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept-Encoding")
	var out io.Writer = w
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		defer zw.Close()
		out = zw
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Warn("status: writing "+r.URL.Path+" failed", "error", err)
	}
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}

// unitOf reads the unit of a /api/v1/units/ or /api/v1/events/ path.
func unitOf(r *http.Request) (fleet.UnitID, error) {
	return fleet.ParseUnitID(r.PathValue("unit"))
}

// serveUnit answers /api/v1/units/<unit>.
func (s *Store) serveUnit(w http.ResponseWriter, r *http.Request) {
	unit, err := unitOf(r)
	if err != nil {
		s.writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	d, ok := s.Unit(unit)
	if !ok {
		s.writeJSON(w, r, http.StatusNotFound, map[string]string{"error": "unit " + unit.String() + ": " + ErrUnknownUnit.Error()})
		return
	}
	s.writeJSON(w, r, http.StatusOK, d)
}

// serveEvents answers /api/v1/events/<unit>: {"events": [...]}, or
// {"error": "..."} with 404 (unknown unit), 501 (no Options.Events), 503 (no
// Redactor yet), 429 (the region is read for too many units at once) or 502
// (the region could not be read).
func (s *Store) serveEvents(w http.ResponseWriter, r *http.Request) {
	unit, err := unitOf(r)
	if err != nil {
		s.writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	events, err := s.UnitEvents(ctx, unit)
	switch {
	case errors.Is(err, ErrUnknownUnit):
		s.writeJSON(w, r, http.StatusNotFound, map[string]string{"error": "unit " + unit.String() + ": " + err.Error()})
	case errors.Is(err, ErrNoEvents):
		s.writeJSON(w, r, http.StatusNotImplemented, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", "2")
		s.writeJSON(w, r, http.StatusTooManyRequests, map[string]string{"error": "unit " + unit.String() + ": " + err.Error()})
	case errors.Is(err, ErrNoRedactor):
		s.writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	case err != nil:
		s.writeJSON(w, r, http.StatusBadGateway, map[string]string{"error": "unit " + unit.String() + ": reading its events: " + err.Error()})
	default:
		s.writeJSON(w, r, http.StatusOK, map[string][]KubeEvent{"events": events})
	}
}

// readOnly refuses every method but GET and HEAD, and sets the headers that keep
// the dashboard to itself.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method "+r.Method+" not allowed: the status endpoints are read-only", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// slogErrorLog hands promhttp's errors to the Store's logger.
type slogErrorLog struct{ s *Store }

// Println logs one error of the metrics handler.
func (l slogErrorLog) Println(v ...any) {
	l.s.log.Warn("status: serving /metrics failed", "error", fmt.Sprint(v...))
}
