package status

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
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
//	/                the web dashboard (and its files under /static/)
//	/api/v1/status   the Status document as JSON
//	/metrics         the Prometheus metrics, with Go and process metrics
//
// Methods other than GET and HEAD get 405. /healthz and /readyz are the daemon's.
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
	mux.HandleFunc("GET /api/v1/status", s.serveStatus)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, web, "index.html")
	})
	return readOnly(mux)
}

// serveStatus answers /api/v1/status.
func (s *Store) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.Status()); err != nil {
		s.log.Warn("status: writing /api/v1/status failed", "error", err)
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
