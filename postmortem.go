package hindsight

import "time"

// PostmortemFields are the parts of a postmortem only a human can write.
// They are stored apart from the generated text, so regenerating a draft
// never loses them. An empty field renders as a TODO.
type PostmortemFields struct {
	Summary     string       `json:"summary,omitempty"`
	Impact      string       `json:"impact,omitempty"`
	RootCause   string       `json:"root_cause,omitempty"`
	Resolution  string       `json:"resolution,omitempty"`
	ActionItems []ActionItem `json:"action_items,omitempty"`
	// ImpactStart corrects when impact really began, when the first alert
	// fired late.
	ImpactStart *time.Time `json:"impact_start,omitempty"`
}

// ActionItem is one corrective or preventative measure.
type ActionItem struct {
	Text  string     `json:"text"`
	Owner string     `json:"owner,omitempty"`
	Due   *time.Time `json:"due,omitempty"`
	Done  bool       `json:"done,omitempty"`
}
