package clirt

import (
	"regexp"
	"strings"
)

// Class is one error class and the client's words for it.
type Class struct {
	Class error
	RE    *regexp.Regexp
}

// Classes sort a client's error output into the runtime's error classes,
// the first match winning: an unreachable engine hides every other
// failure, so its class goes first.
type Classes []Class

// Match returns the class of the first entry whose words text holds, or
// nil (always for blank text).
func (cs Classes) Match(text string) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	for _, c := range cs {
		if c.RE.MatchString(text) {
			return c.Class
		}
	}
	return nil
}
