// Package web is Hindsight's review UI: server-rendered pages, from
// html/template, for the on-call engineer who reads an incident and
// finishes its postmortem. It reads incidents through the same
// api.Incidents the JSON API reads; every write (edits, notes, hidden
// entries, draft state, declared incidents) goes from the page's small
// script to the JSON API, so a write from the UI is an event on the
// stream like any other. Templates, the stylesheet and the script are
// embedded: no build step, nothing fetched from elsewhere.
//
// GET /events streams the correlator's lifecycle notices as server-sent
// events; the pages follow it and re-fetch the part of themselves that
// changed (GET /fragments/...).
//
// # Caveats
//
// Pages and fragments ask for the API's credentials (the same Authorize);
// /static/ does not: it holds only the stylesheet and the script.
//
// The severity and draft-state filters of the incidents page filter what
// the store lists (which filters by service and status only): the page
// fetches further store pages until it has a page's worth of rows, or has
// read maxFetches pages, so a rare value may show fewer rows than a page
// and a "next" link.
//
// A live stream stops at the server's shutdown; the browser reconnects
// (retry:) to whichever process serves next, and re-reads the page's
// live part, since it may have missed notices meanwhile.
package web
