package model

import "time"

// AppSwitch is the answer to switchApp. It is a model of its own (gqlmodel.yml) because
// consentText takes the reader's language and so is resolved from the target's name, which the
// schema does not show.
type AppSwitch struct {
	ConsentRequired []string   `json:"consentRequired"`
	LaunchURL       *string    `json:"launchUrl,omitempty"`
	ExpiresAt       *time.Time `json:"expiresAt,omitempty"`
	Withheld        []string   `json:"withheld"`
	ConsentOptional []string   `json:"consentOptional"`
	// TargetName is the target app's display name, for consentText.
	TargetName string `json:"-"`
}
