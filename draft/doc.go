// Package draft renders the postmortem draft of an incident as Markdown,
// in the structure DESIGN.md fixes: a "# Postmortem: <title>" heading,
// then Issue Summary, Timeline, Root Cause and Resolution, Corrective &
// Preventative Measures, and Detection and Response.
//
// What Hindsight knows is prefilled: duration, services, alerts and
// instances, the timeline with detection marked, hints such as a rollback
// that preceded resolution, suspected changes (always labelled as
// suspicions), suggested measures with the reason for each, and time to
// detect and resolve. What only a human can write comes from
// hindsight.PostmortemFields and replaces the matching "TODO:" marker.
//
//	r, err := draft.New(draft.Options{})
//	...
//	err = r.Render(w, inc, human, time.Now())
//
// Render reads no clock: an open incident's duration runs until the asOf
// argument, so the same arguments always give the same bytes.
//
// # Custom templates
//
// The built-in template is embedded from postmortem.md.tmpl; Default
// returns its source. To customise, copy it, edit it and pass it as
// Options.Template. It is a text/template executed with *Data, with
// missingkey=error, and may call these functions:
//
//	md x          escape text from alerts, deploys or notes for inline Markdown, on one line
//	oneline x     join lines with spaces, without escaping (for human text in a list item)
//	prose x       human Markdown after a bold label: same line if one line, else a new paragraph
//	paragraph x   the first paragraph of x
//	duration d    "45s", "4m30s", "1h13m", "2d3h" (time.Duration, hindsight.Seconds, or pointers)
//	time t        "2026-11-20 10:42 UTC" in Options.Location ("" for a nil or zero time)
//	clock t       "10:42"
//	date t        "2026-11-20"
//	link text url a Markdown link, or plain escaped text when url is not http(s)
//	url u         u made safe for a link destination, or "" when it is not http(s)
//	plural n noun "1 instance", "3 instances"
//	join list sep strings.Join
//
// New parses the template and executes it on sample incidents, so that a
// syntax error, an unknown function or a misspelt field is reported when
// the program starts rather than at the first render.
//
// # Caveats
//
// Escaping targets CommonMark and GitHub Flavored Markdown. It neutralises
// what would change the document's structure (headings, quotes, lists,
// tables, links, images, raw HTML, code spans, emphasis) and nothing else,
// so "v2.3.1" reads as is. It does not stop a renderer's own extensions:
// GitHub still turns @team into a mention and bare https URLs into links.
//
// The humans' fields are Markdown and are printed as written, raw HTML
// included: whatever turns the draft into HTML must sanitise it.
//
// The ready-made fields of Data are escaped; Data.Incident is not. A
// custom template that prints .Incident text without md lets alert
// labels write Markdown into the document.
//
// The draft is generated text: humans change it through their
// PostmortemFields, not by editing the Markdown, which the next
// regeneration replaces. Suggested measures are recomputed each time, and
// there is as yet no field to dismiss one, so a struck suggestion comes
// back.
//
// Durations are rounded to their smallest shown unit, so a time to detect
// of 12m30s reads "13m". An incident is open when it has no ResolvedAt,
// whatever its Status says.
package draft
