// Package unitstatus is the terminal's view of a running daemon's status API
// (/api/v1/status, a status.Status), for `meridian status`: fetching it,
// selecting units by tenant, region, app, state and kind, and printing them as
// a table with a summary line counting them per state. It reads the document
// and never changes it; its errors name meridian status's flags (--server,
// --tenant, ...), which say where each value came from.
package unitstatus
