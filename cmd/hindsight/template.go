package main

import (
	"fmt"
	"io"
	"os"

	"github.com/hindsight-sre/hindsight/draft"
)

// templateCmd prints the built-in postmortem template, the example to
// start a custom one (serve --template) from, or checks a custom one the
// way serve would at startup: parsed, and executed on sample incidents.
func templateCmd(args []string, stdout io.Writer) error {
	switch {
	case len(args) == 0:
		_, err := io.WriteString(stdout, draft.Default())
		return err
	case len(args) == 2 && args[0] == "check":
		src, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		if _, err := draft.New(draft.Options{Template: string(src)}); err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		fmt.Fprintf(stdout, "%s: the template parses and renders the sample incidents\n", args[1])
		return nil
	}
	return usageError{fmt.Errorf("usage: hindsight template [check FILE]")}
}
